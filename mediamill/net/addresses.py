"""Which IP addresses an untrusted URL may reach: globally routable unicast only."""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from typing import Final

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_REFUSED_V4: Final[tuple[ipaddress.IPv4Network, ...]] = tuple(
    ipaddress.IPv4Network(cidr)
    for cidr in (
        "0.0.0.0/8",  # "this network"; 0.0.0.0 reaches the local host
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, including the 169.254.169.254 metadata service
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",
        "192.88.99.0/24",  # deprecated 6to4 relay anycast
        "192.168.0.0/16",
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, including 255.255.255.255
    )
)

_GLOBAL_UNICAST_V6: Final = ipaddress.IPv6Network("2000::/3")
_REFUSED_V6: Final[tuple[ipaddress.IPv6Network, ...]] = tuple(
    ipaddress.IPv6Network(cidr)
    for cidr in (
        "2001::/23",  # IETF protocol assignments, including Teredo
        "2001:db8::/32",
        "3fff::/20",  # documentation
    )
)
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")
_LEGACY_V4: Final = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}", re.I)


def parse_ip(text: str) -> IPAddress | None:
    """Read a host as an IP literal the way the OS would, so no spelling slips past the check."""
    host = text.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if not _LEGACY_V4.fullmatch(host):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def parse_networks(cidrs: Iterable[str | IPNetwork]) -> tuple[IPNetwork, ...]:
    """Parse an allow-list strictly, so a mistyped CIDR fails at configuration time."""
    return tuple(ipaddress.ip_network(cidr, strict=True) for cidr in cidrs)


def is_public(ip: str | IPAddress, allowed_networks: Iterable[IPNetwork] = ()) -> bool:
    """True only for globally routable unicast addresses, or ones deliberately allow-listed."""
    address = parse_ip(ip) if isinstance(ip, str) else ip
    if address is None:
        return False
    address = _unmapped(address)
    if any(net.version == address.version and address in net for net in allowed_networks):
        return True
    if isinstance(address, ipaddress.IPv4Address):
        return _is_global_v4(address)
    embedded = _embedded_v4(address)
    if embedded is not None:
        return _is_global_v4(embedded)
    return _is_global_v6(address)


def _unmapped(address: IPAddress) -> IPAddress:
    """Treat ::ffff:a.b.c.d as a.b.c.d, because a socket to it is an IPv4 connection."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _embedded_v4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address a NAT64 or 6to4 gateway would forward this IPv6 address to."""
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def _is_global_v4(address: ipaddress.IPv4Address) -> bool:
    """Refuse the special-purpose ranges, and anything the stdlib also calls non-global."""
    if any(address in net for net in _REFUSED_V4):
        return False
    return address.is_global and not address.is_multicast


def _is_global_v6(address: ipaddress.IPv6Address) -> bool:
    """Only 2000::/3 is global unicast; inside it, refuse the special-purpose blocks."""
    if address not in _GLOBAL_UNICAST_V6 or any(address in net for net in _REFUSED_V6):
        return False
    return address.is_global and not address.is_multicast
