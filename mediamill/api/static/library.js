/* The mediamill media picker: browse, upload and select media through /graphql only.
 *
 * The token arrives in the URL fragment (#token=...&origin=...), is kept in sessionStorage
 * and removed from the address bar. Every string the server sends goes into the DOM through
 * textContent or setAttribute, never as markup: filenames are user input.
 */
"use strict";

(() => {
  const PAGE_SIZE = 20;
  const POLL_MS = 1000;
  const POLL_RETRIES = 5;
  const PARALLEL_UPLOADS = 3;
  const SEARCH_DELAY_MS = 250;
  const TOKEN_KEY = "mediamill.token";
  const ORIGIN_KEY = "mediamill.origin";
  const TYPE_LABELS = { IMAGE: "Image", VIDEO: "Video", MODEL: "3D model", DOCUMENT: "Document" };
  const STATUS_LABELS = { PENDING: "Pending", PROCESSING: "Processing", READY: "Ready", FAILED: "Failed" };
  const DONE = new Set(["READY", "FAILED"]);

  // The server prices a query by the objects it may return (variants count 40 each, and a
  // page size given as a variable counts as the largest page): keep this lean, `first` literal.
  const MEDIA = `id status mediaType filename alt mimeType size width height placeholder
    error { code message }
    preview(name: "thumb") { mimeType width height url }
    variants { name mimeType width height url }`;
  const RECENT = `query Recent($after: String, $mediaType: MediaType, $search: String) {
    recentMedia(first: ${PAGE_SIZE}, after: $after, mediaType: $mediaType, search: $search) {
      nodes { ${MEDIA} }
      pageInfo { hasNextPage endCursor }
    }
  }`;
  const ONE = `query One($id: ID!) { media(id: $id) { ${MEDIA} } }`;
  const STAGE = `mutation Stage($input: [StagedUploadInput!]!) {
    stagedUploadsCreate(input: $input) {
      stagedTargets { url method resourceUrl headers { name value } }
      userErrors { field code message }
    }
  }`;
  const CREATE = `mutation Create($input: MediaCreateInput!) {
    mediaCreate(input: $input) { media { ${MEDIA} } userErrors { field code message } }
  }`;

  const $ = (id) => document.getElementById(id);
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function announce(text) {
    $("announcer").textContent = text;
  }

  // --- Token and target origin ----------------------------------------------------------

  const memory = new Map(); // when storage is blocked (e.g. a third-party iframe)

  function recall(key) {
    try {
      return sessionStorage.getItem(key) ?? memory.get(key) ?? null;
    } catch {
      return memory.get(key) ?? null;
    }
  }

  function keep(key, value) {
    if (value === null) memory.delete(key);
    else memory.set(key, value);
    try {
      if (value === null) sessionStorage.removeItem(key);
      else sessionStorage.setItem(key, value);
    } catch {
      /* storage blocked: the in-memory copy will do for this page */
    }
  }

  function originOf(text) {
    try {
      const url = new URL(text);
      return url.protocol === "https:" || url.protocol === "http:" ? url.origin : null;
    } catch {
      return null;
    }
  }

  function readFragment() {
    const params = new URLSearchParams(location.hash.slice(1));
    if (!params.has("token") && !params.has("origin")) return;
    const token = params.get("token");
    if (token) {
      keep(TOKEN_KEY, token);
      keep(ORIGIN_KEY, null); // a new hand-over: an earlier embedder's origin no longer applies
    }
    if (params.has("origin")) keep(ORIGIN_KEY, originOf(params.get("origin")));
    history.replaceState(history.state, "", location.pathname + location.search);
  }

  // Never "*": the selection goes to the origin the embedder named, else to our own.
  const targetOrigin = () => recall(ORIGIN_KEY) || location.origin;

  // --- GraphQL --------------------------------------------------------------------------

  class AuthError extends Error {}

  async function gql(query, variables) {
    const token = recall(TOKEN_KEY);
    if (!token) throw new AuthError("no token");
    const response = await fetch("/graphql", {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
      body: JSON.stringify({ query, variables }),
      credentials: "omit",
      cache: "no-store",
    });
    if (response.status === 401) {
      signOut("That token was refused. Paste a valid API token.");
      throw new AuthError("the token was refused");
    }
    let body = null;
    try {
      body = await response.json();
    } catch {
      body = null;
    }
    if (body && Array.isArray(body.errors) && body.errors.length) {
      throw new Error(body.errors.map((error) => String(error.message)).join("; "));
    }
    if (!response.ok || !body || !body.data) throw new Error(`the server answered ${response.status}`);
    return body.data;
  }

  const userErrorText = (errors) => errors.map((error) => String(error.message)).join("; ");

  // --- ThumbHash placeholders -----------------------------------------------------------

  /* thumbHashToRGBA and thumbHashToApproximateAspectRatio: ported from the reference
   * decoder of https://github.com/evanw/thumbhash, Copyright (c) 2023 Evan Wallace, MIT
   * licence. Only change: the pixels land in a Uint8ClampedArray, ready for ImageData. */
  function thumbHashToRGBA(hash) {
    const { PI, min, max, cos, round } = Math;
    const header24 = hash[0] | (hash[1] << 8) | (hash[2] << 16);
    const header16 = hash[3] | (hash[4] << 8);
    const lDc = (header24 & 63) / 63;
    const pDc = ((header24 >> 6) & 63) / 31.5 - 1;
    const qDc = ((header24 >> 12) & 63) / 31.5 - 1;
    const lScale = ((header24 >> 18) & 31) / 31;
    const hasAlpha = header24 >> 23;
    const pScale = ((header16 >> 3) & 63) / 63;
    const qScale = ((header16 >> 9) & 63) / 63;
    const isLandscape = header16 >> 15;
    const lx = max(3, isLandscape ? (hasAlpha ? 5 : 7) : header16 & 7);
    const ly = max(3, isLandscape ? header16 & 7 : hasAlpha ? 5 : 7);
    const aDc = hasAlpha ? (hash[5] & 15) / 15 : 1;
    const aScale = (hash[5] >> 4) / 15;

    // The varying factors (saturation boosted 1.25x to make up for quantisation).
    const acStart = hasAlpha ? 6 : 5;
    let acIndex = 0;
    const decodeChannel = (nx, ny, scale) => {
      const ac = [];
      for (let cy = 0; cy < ny; cy++) {
        for (let cx = cy ? 0 : 1; cx * ny < nx * (ny - cy); cx++, acIndex++) {
          const nibble = (hash[acStart + (acIndex >> 1)] >> ((acIndex & 1) << 2)) & 15;
          ac.push((nibble / 7.5 - 1) * scale);
        }
      }
      return ac;
    };
    const lAc = decodeChannel(lx, ly, lScale);
    const pAc = decodeChannel(3, 3, pScale * 1.25);
    const qAc = decodeChannel(3, 3, qScale * 1.25);
    const aAc = hasAlpha && decodeChannel(5, 5, aScale);

    // Back through the DCT to RGBA, at most 32 pixels on the long side.
    const ratio = thumbHashToApproximateAspectRatio(hash);
    const w = round(ratio > 1 ? 32 : 32 * ratio);
    const h = round(ratio > 1 ? 32 / ratio : 32);
    const rgba = new Uint8ClampedArray(w * h * 4);
    const fx = [];
    const fy = [];
    for (let y = 0, i = 0; y < h; y++) {
      for (let x = 0; x < w; x++, i += 4) {
        let l = lDc;
        let p = pDc;
        let q = qDc;
        let a = aDc;
        for (let cx = 0, n = max(lx, hasAlpha ? 5 : 3); cx < n; cx++) fx[cx] = cos((PI / w) * (x + 0.5) * cx);
        for (let cy = 0, n = max(ly, hasAlpha ? 5 : 3); cy < n; cy++) fy[cy] = cos((PI / h) * (y + 0.5) * cy);
        for (let cy = 0, j = 0; cy < ly; cy++) {
          for (let cx = cy ? 0 : 1, fy2 = fy[cy] * 2; cx * ly < lx * (ly - cy); cx++, j++) l += lAc[j] * fx[cx] * fy2;
        }
        for (let cy = 0, j = 0; cy < 3; cy++) {
          for (let cx = cy ? 0 : 1, fy2 = fy[cy] * 2; cx < 3 - cy; cx++, j++) {
            const f = fx[cx] * fy2;
            p += pAc[j] * f;
            q += qAc[j] * f;
          }
        }
        if (hasAlpha) {
          for (let cy = 0, j = 0; cy < 5; cy++) {
            for (let cx = cy ? 0 : 1, fy2 = fy[cy] * 2; cx < 5 - cy; cx++, j++) a += aAc[j] * fx[cx] * fy2;
          }
        }
        const b = l - (2 / 3) * p;
        const r = (3 * l - b + q) / 2;
        const g = r - q;
        rgba[i] = max(0, 255 * min(1, r));
        rgba[i + 1] = max(0, 255 * min(1, g));
        rgba[i + 2] = max(0, 255 * min(1, b));
        rgba[i + 3] = max(0, 255 * min(1, a));
      }
    }
    return { w, h, rgba };
  }

  function thumbHashToApproximateAspectRatio(hash) {
    const header = hash[3];
    const hasAlpha = hash[2] & 0x80;
    const isLandscape = hash[4] & 0x80;
    const lx = isLandscape ? (hasAlpha ? 5 : 7) : header & 7;
    const ly = isLandscape ? header & 7 : hasAlpha ? 5 : 7;
    return lx / ly;
  }

  const placeholders = new Map();

  /* A PNG data URL of the decoded ThumbHash (standard base64, as mediamill stores it). */
  function placeholderUrl(text) {
    if (!text) return null;
    if (placeholders.has(text)) return placeholders.get(text);
    let url = null;
    try {
      const hash = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
      const ratio = hash.length >= 5 ? thumbHashToApproximateAspectRatio(hash) : 0;
      if (ratio > 0 && Number.isFinite(ratio)) {
        const { w, h, rgba } = thumbHashToRGBA(hash);
        const canvas = document.createElement("canvas");
        canvas.width = w;
        canvas.height = h;
        canvas.getContext("2d").putImageData(new ImageData(rgba, w, h), 0, 0);
        url = canvas.toDataURL("image/png");
      }
    } catch {
      url = null; // not a ThumbHash: the tile keeps its plain background
    }
    placeholders.set(text, url);
    return url;
  }

  // --- The grid -------------------------------------------------------------------------

  const state = {
    type: "",
    search: "",
    cursor: null,
    hasNext: false,
    loading: false,
    generation: 0,
    moreVisible: false,
    media: new Map(), // id -> latest media seen
    tiles: new Map(), // id -> <li> in the grid
    selected: new Map(), // id -> media, in selection order
  };

  const statusText = (media) =>
    media.status === "FAILED"
      ? `Failed: ${media.error?.message || "unknown reason"}`
      : STATUS_LABELS[media.status] || String(media.status);

  function thumbOf(media) {
    const thumbs = (media.variants || []).filter((v) => v.name === "thumb");
    return thumbs.find((v) => v.mimeType === "image/webp") || media.preview || thumbs[0] || null;
  }

  function describe(media) {
    const parts = [TYPE_LABELS[media.mediaType] || "Unknown type"];
    if (media.width && media.height) parts.push(`${media.width}×${media.height}`);
    return parts.join(" · ");
  }

  function matchesFilters(media) {
    if (state.type && media.mediaType !== state.type) return false;
    const name = (media.filename || "").toLowerCase();
    return !state.search || name.includes(state.search.toLowerCase());
  }

  function renderTile(media, tile) {
    tile.dataset.id = media.id;
    tile.dataset.status = media.status;
    tile.setAttribute("aria-selected", String(state.selected.has(media.id)));
    if (media.status === "READY") tile.removeAttribute("aria-disabled");
    else tile.setAttribute("aria-disabled", "true");

    const frame = el("div", "frame");
    const placeholder = placeholderUrl(media.placeholder);
    if (placeholder) {
      const img = el("img", "placeholder");
      img.alt = "";
      img.src = placeholder;
      frame.append(img);
    }
    const thumb = media.status === "READY" ? thumbOf(media) : null;
    if (thumb) {
      const img = el("img", "thumb");
      img.alt = "";
      img.decoding = "async";
      img.width = thumb.width;
      img.height = thumb.height;
      img.addEventListener("load", () => img.classList.add("loaded"), { once: true });
      img.src = thumb.url;
      frame.append(img);
    } else if (!placeholder) {
      frame.append(el("span", "glyph", TYPE_LABELS[media.mediaType] || "File"));
    }
    if (media.status !== "READY") {
      const badge = el("span", "badge", statusText(media));
      badge.title = statusText(media);
      frame.append(badge);
    }

    const name = el("span", "name", media.filename || "Untitled");
    name.title = media.filename || "";
    tile.replaceChildren(frame, name, el("span", "meta", describe(media)));
  }

  /* Show a media in the grid, or refresh its tile; `fromPage` media already match the filters. */
  function upsert(media, { prepend = false, fromPage = false } = {}) {
    state.media.set(media.id, media);
    if (state.selected.has(media.id)) state.selected.set(media.id, media);
    let tile = state.tiles.get(media.id);
    if (!fromPage && !matchesFilters(media)) {
      if (tile) removeTile(media.id);
      return;
    }
    if (tile && tile.dataset.status === media.status) return;
    if (!tile) {
      tile = el("li", "tile");
      tile.setAttribute("role", "option");
      tile.tabIndex = -1;
      state.tiles.set(media.id, tile);
      if (prepend) $("grid").prepend(tile);
      else $("grid").append(tile);
    }
    renderTile(media, tile);
    rovingFallback();
  }

  function removeTile(id) {
    const tile = state.tiles.get(id);
    state.tiles.delete(id);
    if (tile) tile.remove();
    rovingFallback();
  }

  function rovingFallback() {
    const grid = $("grid");
    if (!grid.querySelector('[tabindex="0"]') && grid.firstElementChild) grid.firstElementChild.tabIndex = 0;
  }

  function showGridStatus() {
    const count = state.tiles.size;
    let text = "";
    if (state.loading) text = "Loading…";
    else if (!count) text = state.type || state.search ? "No media match these filters." : "No media yet.";
    else text = `${count} shown${state.hasNext ? ", more available" : ""}.`;
    $("grid-status").textContent = text;
  }

  async function loadPage(reset) {
    if (reset) {
      state.generation += 1;
      state.cursor = null;
      state.hasNext = false;
      state.loading = false;
      state.tiles.clear();
      $("grid").replaceChildren();
    }
    if (state.loading) return;
    const generation = state.generation;
    state.loading = true;
    $("load-more").disabled = true;
    showGridStatus();
    let problem = null;
    try {
      const data = await gql(RECENT, {
        after: state.cursor,
        mediaType: state.type || null,
        search: state.search || null,
      });
      if (generation !== state.generation) return;
      const page = data.recentMedia;
      for (const media of page.nodes) {
        upsert(media, { fromPage: true });
        if (!DONE.has(media.status)) follow(media);
      }
      state.cursor = page.pageInfo.endCursor;
      state.hasNext = page.pageInfo.hasNextPage;
    } catch (error) {
      problem = error instanceof AuthError ? null : error;
    } finally {
      if (generation === state.generation) {
        state.loading = false;
        const more = $("load-more");
        more.hidden = !state.hasNext;
        more.disabled = false;
        showGridStatus();
        if (problem) $("grid-status").textContent = `Could not load media: ${problem.message}`;
        else if (state.hasNext && state.moreVisible) setTimeout(() => loadPage(false), 0);
      }
    }
  }

  function columnCount(tiles) {
    const top = tiles[0]?.offsetTop;
    const count = tiles.filter((tile) => tile.offsetTop === top).length;
    return Math.max(1, count);
  }

  function focusTile(tile) {
    for (const other of $("grid").children) other.tabIndex = other === tile ? 0 : -1;
    tile.focus();
  }

  function onGridKey(event) {
    const tile = event.target.closest(".tile");
    if (!tile) return;
    if (event.key === " " || event.key === "Enter") {
      event.preventDefault();
      toggle(tile.dataset.id);
      return;
    }
    const tiles = [...$("grid").children];
    const index = tiles.indexOf(tile);
    const columns = columnCount(tiles);
    const moves = {
      ArrowRight: index + 1,
      ArrowLeft: index - 1,
      ArrowDown: index + columns,
      ArrowUp: index - columns,
      Home: 0,
      End: tiles.length - 1,
    };
    const target = Object.prototype.hasOwnProperty.call(moves, event.key) ? moves[event.key] : null;
    if (target === null) return;
    event.preventDefault();
    focusTile(tiles[Math.max(0, Math.min(tiles.length - 1, target))]);
  }

  // --- Selection ------------------------------------------------------------------------

  function toggle(id) {
    const media = state.media.get(id);
    if (!media) return;
    if (state.selected.has(id)) state.selected.delete(id);
    else if (media.status === "READY") state.selected.set(id, media);
    else return;
    state.tiles.get(id)?.setAttribute("aria-selected", String(state.selected.has(id)));
    renderSelection();
  }

  function renderSelection() {
    const items = [];
    for (const [id, media] of state.selected) {
      const remove = el("button", "remove", "Remove");
      remove.type = "button";
      remove.setAttribute("aria-label", `Remove ${media.filename || id} from the selection`);
      remove.addEventListener("click", () => toggle(id));
      const item = el("li");
      item.append(el("code", "id", id), el("span", "name", media.filename || ""), remove);
      items.push(item);
    }
    $("selected-ids").replaceChildren(...items);
    const count = state.selected.size;
    $("selected-count").textContent = String(count);
    $("use-selected").disabled = count === 0;
    $("clear-selected").disabled = count === 0;
    $("send-status").textContent = "";
    announce(`${count} selected`);
  }

  function clearSelection() {
    for (const id of state.selected.keys()) state.tiles.get(id)?.setAttribute("aria-selected", "false");
    state.selected.clear();
    renderSelection();
  }

  const copyVariant = (v) => ({ name: v.name, mimeType: v.mimeType, width: v.width, height: v.height, url: v.url });

  function summary(media) {
    return {
      id: media.id,
      filename: media.filename,
      alt: media.alt,
      mediaType: media.mediaType,
      mimeType: media.mimeType,
      size: media.size,
      width: media.width,
      height: media.height,
      placeholder: media.placeholder,
      variants: (media.variants || []).map(copyVariant),
    };
  }

  function useSelected() {
    const media = [...state.selected.values()].map(summary);
    const message = { type: "mediamill:selected", ids: media.map((m) => m.id), media };
    const origin = targetOrigin();
    const receivers = [];
    if (window.parent !== window) receivers.push(window.parent);
    if (window.opener && !window.opener.closed) receivers.push(window.opener);
    for (const receiver of receivers) receiver.postMessage(message, origin);
    $("send-status").textContent = receivers.length
      ? `Sent ${media.length} to ${origin}.`
      : "No embedding page to send to; the ids are listed above.";
  }

  // --- Uploads --------------------------------------------------------------------------

  const queue = [];
  let active = 0;

  function uploadRow(file) {
    const row = el("li", "upload");
    const bar = el("progress");
    bar.max = 100;
    bar.value = 0;
    bar.setAttribute("aria-label", `Upload of ${file.name}`);
    const percent = el("span", "percent", "0%");
    const status = el("span", "state", "Queued");
    row.dataset.state = "queued";
    row.append(el("span", "name", file.name), bar, percent, status);
    $("uploads").append(row);
    return {
      progress(fraction) {
        const value = Math.round(Math.min(1, Math.max(0, fraction)) * 100);
        bar.value = value;
        percent.textContent = `${value}%`;
      },
      set(kind, text) {
        if (row.dataset.state === kind && status.textContent === text) return;
        row.dataset.state = kind;
        status.textContent = text;
        if (kind === "ready" || kind === "failed") announce(`${file.name}: ${text}`);
      },
    };
  }

  function addFiles(files) {
    for (const file of files) queue.push({ file, row: uploadRow(file) });
    pump();
  }

  function pump() {
    while (active < PARALLEL_UPLOADS && queue.length) {
      const job = queue.shift();
      active += 1;
      upload(job).finally(() => {
        active -= 1;
        pump();
      });
    }
  }

  function put(target, file, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open(target.method || "PUT", target.url);
      for (const header of target.headers || []) xhr.setRequestHeader(header.name, header.value);
      xhr.upload.onprogress = (event) => {
        if (event.lengthComputable && event.total) onProgress(event.loaded / event.total);
      };
      xhr.onload = () => {
        if (xhr.status >= 200 && xhr.status < 300) return resolve();
        let detail = "";
        try {
          detail = String(JSON.parse(xhr.responseText).detail || "");
        } catch {
          detail = "";
        }
        reject(new Error(`upload refused (${xhr.status})${detail ? `: ${detail}` : ""}`));
      };
      xhr.onerror = () => reject(new Error("the upload failed (network error)"));
      xhr.onabort = () => reject(new Error("the upload was cancelled"));
      xhr.send(file);
    });
  }

  async function upload({ file, row }) {
    try {
      row.set("uploading", "Uploading");
      const staged = (
        await gql(STAGE, { input: [{ filename: file.name, fileSize: file.size, mimeType: file.type || null }] })
      ).stagedUploadsCreate;
      if (staged.userErrors.length) throw new Error(userErrorText(staged.userErrors));
      const target = staged.stagedTargets[0];
      await put(target, file, (fraction) => row.progress(fraction));
      row.progress(1);
      row.set("processing", "Pending");
      const created = (await gql(CREATE, { input: { originalSource: target.resourceUrl, filename: file.name } }))
        .mediaCreate;
      if (created.userErrors.length || !created.media) throw new Error(userErrorText(created.userErrors));
      await follow(created.media, row);
    } catch (error) {
      row.set("failed", `Failed: ${error.message}`);
    }
  }

  const following = new Set();
  const uploadRows = new Map(); // media id -> its row in the upload list

  /* Poll media(id) about every second until the media is READY or FAILED, keeping its grid
   * tile and upload row (if any) current. One poller per media, whoever asks first. */
  async function follow(media, row = null) {
    if (row) uploadRows.set(media.id, row);
    if (following.has(media.id)) return;
    following.add(media.id);
    let misses = 0;
    try {
      for (;;) {
        const kind = media.status === "READY" ? "ready" : media.status === "FAILED" ? "failed" : "processing";
        uploadRows.get(media.id)?.set(kind, statusText(media));
        upsert(media, { prepend: true });
        if (DONE.has(media.status)) return;
        await sleep(POLL_MS);
        try {
          const next = (await gql(ONE, { id: media.id })).media;
          if (!next) throw new Error("the media is gone");
          media = next;
          misses = 0;
        } catch (error) {
          misses += 1;
          if (error instanceof AuthError || misses > POLL_RETRIES) throw error;
        }
      }
    } catch (error) {
      uploadRows.get(media.id)?.set("failed", `Failed: ${error.message}`);
      const tile = state.tiles.get(media.id);
      if (tile) tile.title = `Status unknown: ${error.message}`;
    } finally {
      following.delete(media.id);
      uploadRows.delete(media.id);
    }
  }

  // --- Wiring ---------------------------------------------------------------------------

  function showTokenForm(message) {
    $("app").hidden = true;
    $("token-form").hidden = false;
    $("token-message").textContent = message;
    $("token-input").focus();
  }

  function signOut(message) {
    keep(TOKEN_KEY, null);
    showTokenForm(message);
  }

  function start() {
    if (!recall(TOKEN_KEY)) {
      showTokenForm("Paste an API token to open the library.");
      return;
    }
    $("token-form").hidden = true;
    $("app").hidden = false;
    loadPage(true);
  }

  function wire() {
    $("token-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const token = $("token-input").value.trim();
      if (!token) return;
      $("token-input").value = "";
      keep(TOKEN_KEY, token);
      start();
    });

    const zone = $("drop-zone");
    const hasFiles = (event) => Boolean(event.dataTransfer) && [...event.dataTransfer.types].includes("Files");
    let depth = 0;
    zone.addEventListener("dragenter", (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      depth += 1;
      zone.classList.add("over");
    });
    zone.addEventListener("dragover", (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
    });
    zone.addEventListener("dragleave", () => {
      depth = Math.max(0, depth - 1);
      if (!depth) zone.classList.remove("over");
    });
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      depth = 0;
      zone.classList.remove("over");
      if (event.dataTransfer?.files.length) addFiles(event.dataTransfer.files);
    });
    // A drop that misses the zone must not navigate away from the picker.
    window.addEventListener("dragover", (event) => event.preventDefault());
    window.addEventListener("drop", (event) => event.preventDefault());

    const input = $("file-input");
    input.addEventListener("change", () => {
      addFiles(input.files);
      input.value = "";
    });

    let searchTimer = 0;
    const applyFilters = () => {
      clearTimeout(searchTimer);
      const type = $("type-filter").value;
      const search = $("search-input").value.trim();
      if (type === state.type && search === state.search) return;
      state.type = type;
      state.search = search;
      loadPage(true);
    };
    $("filters").addEventListener("submit", (event) => {
      event.preventDefault();
      applyFilters();
    });
    $("type-filter").addEventListener("change", applyFilters);
    $("search-input").addEventListener("input", () => {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(applyFilters, SEARCH_DELAY_MS);
    });

    const grid = $("grid");
    grid.addEventListener("click", (event) => {
      const tile = event.target.closest(".tile");
      if (!tile) return;
      focusTile(tile);
      toggle(tile.dataset.id);
    });
    grid.addEventListener("keydown", onGridKey);

    const more = $("load-more");
    more.addEventListener("click", () => loadPage(false));
    new IntersectionObserver((entries) => {
      state.moreVisible = entries.some((entry) => entry.isIntersecting);
      if (state.moreVisible && state.hasNext && !state.loading) loadPage(false);
    }).observe(more);

    $("use-selected").addEventListener("click", useSelected);
    $("clear-selected").addEventListener("click", clearSelection);
  }

  readFragment();
  wire();
  start();
})();
