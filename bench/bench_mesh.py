"""Four previews of a 100k-face GLB: the time per preview and the peak memory.

Measures, each in a fresh process, on the same textured 100k-face GLB:
- ``render_model`` asked for the four preview views only (7 image variants each), per
  preview: sandbox start-up, header checks, parse, facts, the renders and the encodes;
- the baseline: a bare pyvista render of the same mesh from the same four angles (trimesh
  load, one plotter, four screenshots), per preview, timed from after its imports;
- the peak RSS (VmHWM) of the sandboxed child that parses and renders (sampled every
  20 ms until it exits) against the bare process's, and of the worker that encodes;
- the full ``render_model`` (previews, contact sheet and web GLB), for reference.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.corpus import CACHE
from bench.rows import report

FACES = 100_000
# The issue that asked for these figures (time per preview, peak memory), with no goal.
ISSUE = 3
ROOT = Path(__file__).resolve().parent.parent

_PIPELINE = """
import json, sys, threading, time
from pathlib import Path
import multiprocessing
from mediamill.media.limits import ImageLimits
from mediamill.media.mesh_specs import DEFAULT_GLB_SPEC, MeshLimits, planned_model_variants
from mediamill.media.meshes import render_model
from mediamill.media.specs import DEFAULT_IMAGE_SPECS

def vmhwm(pid="self"):
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return int(next(l.split()[1] for l in text.splitlines() if l.startswith("VmHWM:"))) * 1024

peak = 0
done = threading.Event()

def watch():
    global peak
    while not done.wait(0.02):
        for child in multiprocessing.active_children():
            peak = max(peak, vmhwm(child.pid))

planned = planned_model_variants(DEFAULT_IMAGE_SPECS)
only = None if sys.argv[2] == "full" else {
    v for v in planned if v[0] != "contact-sheet" and v != DEFAULT_GLB_SPEC.variant_id
}
watcher = threading.Thread(target=watch, daemon=True)
watcher.start()
started = time.perf_counter()
rendition = render_model(
    Path(sys.argv[1]), "glb", DEFAULT_IMAGE_SPECS, ImageLimits(), MeshLimits(), only=only
)
seconds = time.perf_counter() - started
done.set()
watcher.join()
print(json.dumps({
    "seconds": seconds,
    "variants": len(rendition.variants),
    "sandbox_peak": peak,
    "worker_peak": vmhwm(),
}))
"""

_BARE = """
import json, math, sys, time
from pathlib import Path
import numpy as np
import pyvista as pv
import trimesh
from vtkmodules.vtkCommonCore import vtkLogger
vtkLogger.SetStderrVerbosity(vtkLogger.VERBOSITY_ERROR)
VIEWS = [(40.0, 25.0), (0.0, 10.0), (90.0, 10.0), (180.0, 10.0)]

started = time.perf_counter()
scene = trimesh.load_scene(sys.argv[1], file_type="glb")
(mesh,) = scene.geometry.values()
surface = pv.PolyData.from_regular_faces(mesh.vertices, mesh.faces)
surface.active_texture_coordinates = np.asarray(mesh.visual.uv, dtype=np.float32)
texture = pv.Texture(np.asarray(mesh.visual.material.baseColorTexture.convert("RGB")))
plotter = pv.Plotter(off_screen=True, window_size=[1200, 1200])
plotter.add_mesh(surface, texture=texture, smooth_shading=True)
for azimuth, elevation in VIEWS:
    a, e = math.radians(azimuth), math.radians(elevation)
    direction = (math.cos(e) * math.sin(a), math.sin(e), math.cos(e) * math.cos(a))
    plotter.camera.position = direction
    plotter.camera.focal_point = (0.0, 0.0, 0.0)
    plotter.camera.up = (0.0, 1.0, 0.0)
    plotter.reset_camera()
    plotter.screenshot(return_img=True)
seconds = time.perf_counter() - started
plotter.close()
status = Path("/proc/self/status").read_text()
peak = int(next(l.split()[1] for l in status.splitlines() if l.startswith("VmHWM:"))) * 1024
print(json.dumps({"seconds": seconds, "peak": peak}))
"""


def model_path() -> Path:
    """The textured 100k-face GLB, generated once and cached like the other corpora."""
    path = CACHE / f"sphere-{FACES // 1000}k.glb"
    if not path.exists():
        from mediamill.media.mesh_samples import textured_sphere_glb

        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(textured_sphere_glb(FACES))
        tmp.rename(path)
    return path


def _python(code: str, *args: str) -> dict[str, Any]:
    output = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    result: dict[str, Any] = json.loads(output.stdout.strip().splitlines()[-1])
    return result


def run(repeats: int = 3) -> list[dict[str, Any]]:
    """Rows shaped like bench_backfill's; every goal here is "report"."""
    path = model_path()
    previews, bare = [], []
    for _ in range(repeats):  # interleaved, so drift on this shared machine hits both
        previews.append(_python(_PIPELINE, str(path), "previews"))
        bare.append(_python(_BARE, str(path)))
    full = _python(_PIPELINE, str(path), "full")
    ours = statistics.median(p["seconds"] for p in previews) / 4
    base = statistics.median(b["seconds"] for b in bare) / 4
    sandbox_peak = max(p["sandbox_peak"] for p in previews)
    bare_peak = max(b["peak"] for b in bare)
    worker_peak = max(p["worker_peak"] for p in previews)
    return [
        {
            "name": f"model preview, {FACES // 1000}k-face GLB: s per view (7 variants each)",
            "value": round(ours, 3),
            "baseline": round(base, 3),
            "baseline_name": "bare pyvista: load + 4 offscreen renders, same angles",
            "ratio": round(ours / base, 3),
            "goal": "report",
            "issue": ISSUE,
            "ok": None,
        },
        {
            "name": "peak RSS of the sandboxed parse+render process (MB)",
            "value": round(sandbox_peak / 1e6, 1),
            "baseline": round(bare_peak / 1e6, 1),
            "baseline_name": "bare pyvista process (VmHWM)",
            "ratio": round(sandbox_peak / bare_peak, 3),
            "goal": "report",
            "issue": ISSUE,
            "ok": None,
        },
        {
            "name": "peak RSS of the worker encoding the previews (MB)",
            "value": round(worker_peak / 1e6, 1),
            "baseline": round(bare_peak / 1e6, 1),
            "baseline_name": "bare pyvista process (VmHWM)",
            "ratio": round(worker_peak / bare_peak, 3),
            "goal": "report",
            "issue": ISSUE,
            "ok": None,
        },
        {
            "name": f"full render_model ({full['variants']} variants incl. sheet and GLB) (s)",
            "value": round(full["seconds"], 2),
            "baseline": round(4 * base, 2),
            "baseline_name": "bare pyvista: load + 4 offscreen renders, same angles",
            "ratio": round(full["seconds"] / (4 * base), 3),
            "goal": "report",
            "issue": ISSUE,
            "ok": None,
        },
    ]


def main() -> None:
    """``python -m bench.bench_mesh [--repeats N] [--json rows.json]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    rows = run(args.repeats)
    report(rows, args.json)


if __name__ == "__main__":
    main()
