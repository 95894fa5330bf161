"""Download an untrusted URL to a file without letting it reach non-public addresses."""

from __future__ import annotations

import http.client
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

from mediamill.net.addresses import IPAddress
from mediamill.net.connection import open_response, read_chunk
from mediamill.net.deadline import Deadline
from mediamill.net.errors import FetchRefused, TransientFetchError
from mediamill.net.policy import FetchPolicy
from mediamill.net.resolve import pin_address
from mediamill.net.urls import Target, follow, parse_target

REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})
RETRYABLE_STATUSES: Final = frozenset({408, 429})


@dataclass(frozen=True)
class FetchResult:
    """What the download produced; the content itself is sniffed by the caller afterwards."""

    final_url: str
    status: int
    content_type: str | None
    size: int
    filename_hint: str | None
    address: str


def fetch_to_file(url: str, destination: Path, policy: FetchPolicy) -> FetchResult:
    """Fetch url into destination, re-checking every hop; destination appears only on success."""
    deadline = Deadline(policy.timeout_seconds)
    target = parse_target(url)
    for _ in range(policy.max_redirects + 1):
        address = pin_address(
            target.host, target.port, allowed_networks=policy.networks, resolver=policy.resolver
        )
        deadline.remaining()
        with open_response(
            target,
            address,
            user_agent=policy.user_agent,
            deadline=deadline,
            connect_timeout=policy.connect_timeout,
            tls_context=policy.tls,
        ) as response:
            location = _redirect_location(response)
            if location is None:
                return _save(response, target, address, destination, policy.max_bytes)
        target = follow(target, location)
    raise FetchRefused("too_many_redirects", f"more than {policy.max_redirects} redirects")


def _redirect_location(response: http.client.HTTPResponse) -> str | None:
    """The Location to follow, or None when this response is the final one."""
    if response.status not in REDIRECT_STATUSES:
        return None
    location = response.getheader("Location")
    if not location:
        raise FetchRefused("http_error", "redirect without a Location", status=response.status)
    return location


def _save(
    response: http.client.HTTPResponse,
    target: Target,
    address: IPAddress,
    destination: Path,
    max_bytes: int,
) -> FetchResult:
    """Check the final response's head, then stream its body into destination."""
    _check_status(response.status)
    _check_head(response, max_bytes)
    size = _write_atomically(response, destination, max_bytes)
    return FetchResult(
        final_url=target.url,
        status=response.status,
        content_type=_media_type(response.getheader("Content-Type")),
        size=size,
        filename_hint=target.filename_hint,
        address=str(address),
    )


def _check_status(status: int) -> None:
    """Only 2xx is content; 5xx, 408 and 429 may clear up, any other status will not."""
    if 200 <= status < 300:
        return
    if status >= 500 or status in RETRYABLE_STATUSES:
        raise TransientFetchError("http_error", f"server answered {status}", status=status)
    raise FetchRefused("http_error", f"server answered {status}", status=status)


def _check_head(response: http.client.HTTPResponse, max_bytes: int) -> None:
    """Refuse before reading the body when the headers already break the rules."""
    encoding = (response.getheader("Content-Encoding") or "identity").strip().lower()
    if encoding != "identity":
        raise FetchRefused("unsupported_encoding", f"body is {encoding}-encoded")
    if response.length is not None and response.length > max_bytes:
        raise FetchRefused("too_large", f"declared {response.length} bytes, cap is {max_bytes}")


def _write_atomically(response: http.client.HTTPResponse, destination: Path, max_bytes: int) -> int:
    """Stream into a hidden sibling and rename it, so no partial file is ever visible."""
    descriptor, temporary = tempfile.mkstemp(
        dir=destination.parent, prefix=".mediamill-fetch-", suffix=".part"
    )
    try:
        with os.fdopen(descriptor, "wb") as sink:
            size = _copy_body(response, sink, max_bytes)
        os.replace(temporary, destination)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return size


def _copy_body(response: http.client.HTTPResponse, sink: BinaryIO, max_bytes: int) -> int:
    """Copy the body, stopping as soon as it passes max_bytes whatever the headers said."""
    size = 0
    while chunk := read_chunk(response, max_bytes + 1 - size):
        size += len(chunk)
        if size > max_bytes:
            raise FetchRefused("too_large", f"body passed the {max_bytes}-byte cap")
        sink.write(chunk)
    return size


def _media_type(header: str | None) -> str | None:
    """The declared media type without parameters; only a hint, since callers sniff."""
    media_type = (header or "").split(";", 1)[0].strip().lower()
    return media_type or None
