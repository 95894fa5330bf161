"""fetch_to_file against a real loopback server: refusals, caps, redirects, timeouts, pinning."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mediamill.net import (
    FetchPolicy,
    FetchRefused,
    TransientFetchError,
    fetch_to_file,
)
from tests.net.conftest import Handler, Server, send

LOOPBACK = ("127.0.0.1/32",)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40


def _policy(**overrides: object) -> FetchPolicy:
    """The loopback test server made reachable, with short timeouts."""
    options: dict[str, object] = {"allowed_networks": LOOPBACK, "timeout_seconds": 5.0}
    options.update(overrides)
    return FetchPolicy(**options)  # type: ignore[arg-type]


def _serve(server: Server, path: str, body: bytes, content_type: str = "image/png") -> None:
    server.routes[path] = lambda h: send(h, 200, body, {"Content-Type": content_type})


def _redirect(server: Server, path: str, location: str, status: int = 302) -> None:
    server.routes[path] = lambda h: send(h, status, b"", {"Location": location})


def _refusal(url: str, destination: Path, policy: FetchPolicy) -> FetchRefused:
    with pytest.raises(FetchRefused) as caught:
        fetch_to_file(url, destination, policy)
    return caught.value


def _transient(url: str, destination: Path, policy: FetchPolicy) -> TransientFetchError:
    with pytest.raises(TransientFetchError) as caught:
        fetch_to_file(url, destination, policy)
    return caught.value


class _Rebinder:
    """A hostile DNS: a fresh answer on every call, counting how often it is asked."""

    def __init__(self, *answers: str) -> None:
        self._answers: Iterator[str] = iter(answers)
        self.calls: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        return [next(self._answers)]


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "localhost", "2130706433", "0x7f000001", "127.1", "0.0.0.0", "[::1]"]
)
def test_default_policy_refuses_loopback_before_connecting(
    server: Server, out: Path, connects: list[tuple[str, int]], host: str
) -> None:
    _serve(server, "/a.png", PNG)
    error = _refusal(server.url("/a.png", host), out / "a.png", FetchPolicy())
    assert error.code == "forbidden_address"
    assert connects == []
    assert server.connections == 0
    assert list(out.iterdir()) == []


def test_allowed_download_writes_the_exact_bytes(server: Server, out: Path) -> None:
    _serve(server, "/images/red%20flower.png", PNG, "Image/PNG; charset=binary")
    result = fetch_to_file(server.url("/images/red%20flower.png"), out / "x", _policy())
    assert (out / "x").read_bytes() == PNG
    assert result.status == 200
    assert result.size == len(PNG)
    assert result.content_type == "image/png"
    assert result.filename_hint == "red flower.png"
    assert result.final_url == server.url("/images/red%20flower.png")
    assert result.address == "127.0.0.1"
    assert list(out.iterdir()) == [out / "x"]


def test_request_carries_no_cookies_or_credentials(server: Server, out: Path) -> None:
    server.routes["/login"] = lambda h: send(
        h, 302, b"", {"Location": "/a.png", "Set-Cookie": "session=secret; Path=/"}
    )
    _serve(server, "/a.png", PNG)
    fetch_to_file(server.url("/login"), out / "a.png", _policy())
    final = server.requests[-1].headers
    assert "cookie" not in final
    assert "authorization" not in final
    assert final["accept-encoding"] == "identity"
    assert final["user-agent"].startswith("mediamill/")
    assert final["host"] == f"127.0.0.1:{server.port}"


def test_redirect_to_metadata_service_is_refused_without_connecting(
    server: Server, out: Path, connects: list[tuple[str, int]]
) -> None:
    _redirect(server, "/hop", "http://169.254.169.254/latest/meta-data")
    error = _refusal(server.url("/hop"), out / "a", _policy())
    assert error.code == "forbidden_address"
    assert connects == [("127.0.0.1", server.port)]
    assert list(out.iterdir()) == []


def test_redirect_to_a_refused_scheme_is_refused(server: Server, out: Path) -> None:
    _redirect(server, "/hop", "file:///etc/passwd")
    assert _refusal(server.url("/hop"), out / "a", _policy()).code == "unsupported_scheme"


def test_redirect_chain_is_followed_within_the_cap(server: Server, out: Path) -> None:
    _redirect(server, "/1", "/2", 301)
    _redirect(server, "/2", server.url("/3"), 307)
    _redirect(server, "/3", "4.png", 308)
    _serve(server, "/4.png", PNG)
    result = fetch_to_file(server.url("/1"), out / "a", _policy(max_redirects=3))
    assert result.final_url == server.url("/4.png")
    assert [seen.path for seen in server.requests] == ["/1", "/2", "/3", "/4.png"]


def test_redirect_loop_hits_the_hop_cap(server: Server, out: Path) -> None:
    _redirect(server, "/loop", "/loop")
    error = _refusal(server.url("/loop"), out / "a", _policy(max_redirects=2))
    assert error.code == "too_many_redirects"
    assert len(server.requests) == 3
    assert list(out.iterdir()) == []


def test_zero_redirects_allowed_refuses_the_first(server: Server, out: Path) -> None:
    _redirect(server, "/hop", "/a.png")
    _serve(server, "/a.png", PNG)
    error = _refusal(server.url("/hop"), out / "a", _policy(max_redirects=0))
    assert error.code == "too_many_redirects"
    assert len(server.requests) == 1


def test_redirect_without_location_is_refused(server: Server, out: Path) -> None:
    server.routes["/hop"] = lambda h: send(h, 302)
    error = _refusal(server.url("/hop"), out / "a", _policy())
    assert (error.code, error.status) == ("http_error", 302)


def test_body_at_the_cap_is_accepted(server: Server, out: Path) -> None:
    _serve(server, "/a.png", PNG)
    assert fetch_to_file(server.url("/a.png"), out / "a", _policy(max_bytes=len(PNG))).size == len(
        PNG
    )


@pytest.mark.parametrize("length", [None, -1], ids=["content-length", "no-length"])
def test_body_over_the_cap_is_refused_and_leaves_no_file(
    server: Server, out: Path, length: int | None
) -> None:
    server.routes["/big"] = lambda h: send(h, 200, PNG, length=length)
    error = _refusal(server.url("/big"), out / "big", _policy(max_bytes=len(PNG) - 1))
    assert error.code == "too_large"
    assert list(out.iterdir()) == []


def test_chunked_body_over_the_cap_is_refused_while_streaming(server: Server, out: Path) -> None:
    def chunked(h: Handler) -> None:
        h.send_response(200)
        h.send_header("Transfer-Encoding", "chunked")
        h.send_header("Connection", "close")
        h.end_headers()
        for _ in range(64):
            h.wfile.write(b"400\r\n" + b"x" * 0x400 + b"\r\n")
        h.wfile.write(b"0\r\n\r\n")

    server.routes["/chunked"] = chunked
    error = _refusal(server.url("/chunked"), out / "c", _policy(max_bytes=10_000))
    assert error.code == "too_large"
    assert list(out.iterdir()) == []
    assert fetch_to_file(server.url("/chunked"), out / "c", _policy()).size == 64 * 0x400


def test_declared_oversize_is_refused_before_the_body_arrives(server: Server, out: Path) -> None:
    def promise(h: Handler) -> None:
        send(h, 200, b"", length=10**12)
        server.stop.wait(10)

    server.routes["/huge"] = promise
    started = time.monotonic()
    error = _refusal(server.url("/huge"), out / "h", _policy(max_bytes=1000))
    assert error.code == "too_large"
    assert time.monotonic() - started < 5  # the server holds the body back for 10 s


def test_understated_length_never_reads_past_it(server: Server, out: Path) -> None:
    server.routes["/liar"] = lambda h: send(h, 200, PNG, length=10)
    result = fetch_to_file(server.url("/liar"), out / "l", _policy(max_bytes=100))
    assert (out / "l").read_bytes() == PNG[:10]
    assert result.size == 10


def test_truncated_body_is_transient_and_leaves_no_file(server: Server, out: Path) -> None:
    server.routes["/cut"] = lambda h: send(h, 200, PNG[:100], length=len(PNG))
    assert _transient(server.url("/cut"), out / "c", _policy()).code == "incomplete"
    assert list(out.iterdir()) == []


def test_compressed_body_is_refused(server: Server, out: Path) -> None:
    server.routes["/gz"] = lambda h: send(h, 200, b"\x1f\x8b", {"Content-Encoding": "gzip"})
    assert _refusal(server.url("/gz"), out / "g", _policy()).code == "unsupported_encoding"


def test_silent_server_times_out_within_the_budget(server: Server, out: Path) -> None:
    server.routes["/sleep"] = lambda h: server.stop.wait(10)
    started = time.monotonic()
    error = _transient(server.url("/sleep"), out / "s", _policy(timeout_seconds=0.5))
    assert error.code == "timeout"
    assert time.monotonic() - started < 4  # the server would go on for 10 s or more
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("stage", ["head", "body"])
def test_trickling_server_cannot_stretch_the_budget(server: Server, out: Path, stage: str) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\nConnection: close\r\n\r\n"

    def trickle(h: Handler) -> None:
        if stage == "body":
            h.wfile.write(head)
        while not server.stop.wait(0.05):
            h.wfile.write(b"x")
            h.wfile.flush()

    server.routes["/trickle"] = trickle
    started = time.monotonic()
    error = _transient(server.url("/trickle"), out / "t", _policy(timeout_seconds=0.6))
    assert error.code == "timeout"
    assert time.monotonic() - started < 4  # the server would go on for 10 s or more
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 451, 304])
def test_client_errors_are_refused(server: Server, out: Path, status: int) -> None:
    server.routes["/s"] = lambda h: send(h, status, b"nope")
    error = _refusal(server.url("/s"), out / "s", _policy())
    assert (error.code, error.status) == ("http_error", status)
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429, 408])
def test_server_errors_are_transient(server: Server, out: Path, status: int) -> None:
    server.routes["/s"] = lambda h: send(h, status, b"later")
    error = _transient(server.url("/s"), out / "s", _policy())
    assert (error.code, error.status) == ("http_error", status)


def test_closed_port_is_transient(out: Path) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    error = _transient(f"http://127.0.0.1:{port}/", out / "x", _policy())
    assert error.code == "connection_failed"


def test_garbage_response_is_refused(server: Server, out: Path) -> None:
    server.routes["/junk"] = lambda h: h.wfile.write(b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 200)
    assert _refusal(server.url("/junk"), out / "j", _policy()).code == "bad_response"


def test_failed_fetch_leaves_an_existing_destination_alone(server: Server, out: Path) -> None:
    (out / "keep").write_bytes(b"old")
    _serve(server, "/a.png", PNG)
    _refusal(server.url("/a.png"), out / "keep", _policy(max_bytes=10))
    assert (out / "keep").read_bytes() == b"old"


def test_rebinding_resolver_is_asked_once_and_the_pinned_answer_is_dialled(
    server: Server, out: Path, connects: list[tuple[str, int]]
) -> None:
    _serve(server, "/a.png", PNG)
    dns = _Rebinder("127.0.0.1", "127.0.0.2", "169.254.169.254")
    result = fetch_to_file(server.url("/a.png", "shop.test"), out / "a", _policy(resolver=dns))
    assert dns.calls == ["shop.test"]
    assert connects == [("127.0.0.1", server.port)]
    assert result.address == "127.0.0.1"
    assert server.requests[0].headers["host"] == f"shop.test:{server.port}"
    assert (out / "a").read_bytes() == PNG


def test_each_redirect_hop_is_resolved_once_and_rechecked(
    server: Server, out: Path, connects: list[tuple[str, int]]
) -> None:
    _redirect(server, "/hop", server.url("/a.png", "shop.test"))
    _serve(server, "/a.png", PNG)
    dns = _Rebinder("127.0.0.1", "169.254.169.254", "127.0.0.1")
    error = _refusal(server.url("/hop", "shop.test"), out / "a", _policy(resolver=dns))
    assert error.code == "forbidden_address"
    assert dns.calls == ["shop.test", "shop.test"]
    assert connects == [("127.0.0.1", server.port)]
    assert [seen.path for seen in server.requests] == ["/hop"]


def test_resolutions_match_hops_exactly(server: Server, out: Path) -> None:
    _redirect(server, "/1", "/2")
    _redirect(server, "/2", "/3")
    _serve(server, "/3", PNG)
    dns = _Rebinder(*["127.0.0.1"] * 10)
    fetch_to_file(server.url("/1", "cdn.test"), out / "a", _policy(resolver=dns))
    assert len(dns.calls) == len(server.requests) == 3
