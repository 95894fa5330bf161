"""One HTTP/1.1 GET to a pinned address, with Host and TLS bound to the real hostname."""

from __future__ import annotations

import http.client
import io
import socket
import ssl
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Final

from mediamill.net.addresses import IPAddress
from mediamill.net.deadline import Deadline
from mediamill.net.errors import FetchRefused, TransientFetchError
from mediamill.net.urls import Target

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

BUFFER_SIZE: Final = 64 * 1024


@contextmanager
def open_response(
    target: Target,
    address: IPAddress,
    *,
    user_agent: str,
    deadline: Deadline,
    connect_timeout: float,
    tls_context: ssl.SSLContext,
) -> Iterator[http.client.HTTPResponse]:
    """Connect to the pinned address, send one GET, and yield the parsed response head."""
    with ExitStack() as resources:
        with translated_errors():
            sock = resources.enter_context(_dial(address, target.port, connect_timeout, deadline))
            if target.scheme == "https":
                sock = resources.enter_context(_secure(sock, target.host, tls_context, deadline))
            sock.settimeout(deadline.remaining())
            sock.sendall(_request_head(target, user_agent))
            response = _DeadlineResponse(sock, deadline)
            resources.callback(response.close)
            response.begin()
        yield response


def read_chunk(response: http.client.HTTPResponse, limit: int) -> bytes:
    """Read up to limit body bytes; empty at the end, an error if the body was cut short."""
    with translated_errors():
        chunk = response.read(min(limit, BUFFER_SIZE))
    if not chunk and limit and response.length:
        raise TransientFetchError("incomplete", f"body ended {response.length} bytes early")
    return chunk


@contextmanager
def translated_errors() -> Iterator[None]:
    """Map socket, TLS and parser failures to fetch errors that say whether to retry."""
    try:
        yield
    except TimeoutError as error:
        raise TransientFetchError("timeout", f"network timeout: {error}") from error
    except ssl.SSLCertVerificationError as error:
        raise FetchRefused("certificate_error", error.verify_message or str(error)) from error
    except ssl.SSLError as error:
        raise TransientFetchError("tls_error", str(error)) from error
    except http.client.IncompleteRead as error:
        raise TransientFetchError("incomplete", repr(error)) from error
    except ConnectionError as error:
        raise TransientFetchError("connection_failed", str(error) or repr(error)) from error
    except http.client.HTTPException as error:
        raise FetchRefused("bad_response", str(error) or repr(error)) from error
    except OSError as error:
        raise TransientFetchError("connection_failed", str(error)) from error


def _dial(
    address: IPAddress, port: int, connect_timeout: float, deadline: Deadline
) -> socket.socket:
    """Open TCP to the already-checked address; no name is looked up here."""
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(min(connect_timeout, deadline.remaining()))
        sock.connect((str(address), port))
    except BaseException:
        sock.close()
        raise
    return sock


def _secure(
    sock: socket.socket, hostname: str, context: ssl.SSLContext, deadline: Deadline
) -> ssl.SSLSocket:
    """Start TLS with SNI and certificate checks on the URL's hostname, not the pinned IP."""
    sock.settimeout(deadline.remaining())
    return context.wrap_socket(sock, server_hostname=hostname)


def _request_head(target: Target, user_agent: str) -> bytes:
    """A minimal GET: no cookies, no credentials, no compression, one request per connection."""
    lines = (
        f"GET {target.request_target} HTTP/1.1",
        f"Host: {target.authority}",
        f"User-Agent: {user_agent}",
        "Accept: */*",
        "Accept-Encoding: identity",
        "Connection: close",
    )
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


class _DeadlineReader(io.RawIOBase):
    """A socket reader whose every recv may wait only for what is left of the budget."""

    def __init__(self, sock: socket.socket, deadline: Deadline) -> None:
        super().__init__()
        self._sock = sock
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        self._sock.settimeout(self._deadline.remaining())
        return self._sock.recv_into(buffer)


class _DeadlineResponse(http.client.HTTPResponse):
    """An HTTPResponse that reads through the deadline, so trickling bytes cannot stall it."""

    def __init__(self, sock: socket.socket, deadline: Deadline) -> None:
        super().__init__(sock, method="GET")
        self.fp.close()
        self.fp = io.BufferedReader(_DeadlineReader(sock, deadline), BUFFER_SIZE)
