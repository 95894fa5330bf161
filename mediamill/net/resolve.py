"""Resolve a host once, check every answer, and pin the address the connection will use."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable, Sequence

from mediamill.net.addresses import IPAddress, IPNetwork, is_public, parse_ip
from mediamill.net.errors import FetchRefused, TransientFetchError

Resolver = Callable[[str, int], Iterable[str]]
"""Maps (host, port) to IP address strings; injectable so tests can play a hostile DNS."""


def system_resolver(host: str, port: int) -> list[str]:
    """Ask the OS for TCP addresses, exactly the answers a normal connect would have used."""
    answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [str(sockaddr[0]) for *_, sockaddr in answers]


def pin_address(
    host: str,
    port: int,
    *,
    allowed_networks: Sequence[IPNetwork] = (),
    resolver: Resolver = system_resolver,
) -> IPAddress:
    """Return the one address to dial; refuse if any answer is non-public, so rebinding fails."""
    literal = parse_ip(host)
    answers = [literal] if literal is not None else _lookup(host, port, resolver)
    for address in answers:
        if not is_public(address, allowed_networks):
            raise FetchRefused("forbidden_address", f"{host} resolves to non-public {address}")
    return answers[0]


def _lookup(host: str, port: int, resolver: Resolver) -> list[IPAddress]:
    """Call the resolver exactly once and parse its answers, mapping failures to fetch errors."""
    try:
        raw = list(resolver(host, port))
    except socket.gaierror as error:
        if error.errno == socket.EAI_AGAIN:
            raise TransientFetchError("dns_failure", f"{host}: {error}") from error
        raise FetchRefused("unresolvable", f"{host}: {error}") from error
    except (OSError, UnicodeError) as error:
        raise FetchRefused("unresolvable", f"{host}: {error}") from error
    answers = [parse_ip(answer) for answer in raw]
    if not answers or None in answers:
        raise FetchRefused("unresolvable", f"{host} has no usable address: {raw!r}")
    return [address for address in answers if address is not None]
