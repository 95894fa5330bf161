"""A real threaded HTTP server on 127.0.0.1 and a spy on outgoing connects."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

Route = Callable[["Handler"], object]


@dataclass(frozen=True)
class Seen:
    """One request as the server received it."""

    path: str
    headers: dict[str, str]


@dataclass
class Server:
    """The test server's address, its routes, and everything it observed."""

    port: int
    stop: threading.Event
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)
    connections: int = 0

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


class Handler(BaseHTTPRequestHandler):
    """Dispatches to the route registered for the path, after recording the request."""

    protocol_version = "HTTP/1.1"
    server: LoopbackServer

    def do_GET(self) -> None:
        state = self.server.state
        state.requests.append(Seen(self.path, {k.lower(): v for k, v in self.headers.items()}))
        route = state.routes.get(self.path.split("?", 1)[0])
        if route is None:
            send(self, 404, b"missing")
        else:
            route(self)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class LoopbackServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.state = Server(port=int(self.server_address[1]), stop=threading.Event())

    def verify_request(self, request: Any, client_address: Any) -> bool:
        self.state.connections += 1
        return True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


def send(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    *,
    length: int | None = None,
) -> None:
    """Write a complete response; length overrides Content-Length, -1 omits it."""
    handler.send_response(status)
    declared = len(body) if length is None else length
    if declared >= 0:
        handler.send_header("Content-Length", str(declared))
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.send_header("Connection", "close")
    handler.end_headers()
    handler.wfile.write(body)
    handler.wfile.flush()
    handler.close_connection = True


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """An empty directory to download into, so leftovers are easy to spot."""
    path = tmp_path / "out"
    path.mkdir()
    return path
