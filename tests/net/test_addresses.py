"""is_public over the THREATS.md SSRF inputs and every way of wrapping them."""

from __future__ import annotations

import ipaddress

import pytest

from mediamill.net import is_public, parse_ip, parse_networks

REFUSED = [
    "127.0.0.1",
    "127.255.255.254",
    "0.0.0.0",
    "0.1.2.3",
    "10.0.0.1",
    "10.255.255.255",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.169.254",
    "169.254.0.1",
    "100.64.0.1",
    "100.127.255.254",
    "192.0.0.9",
    "192.0.2.1",
    "198.18.0.1",
    "198.51.100.1",
    "203.0.113.1",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "::1",
    "[::1]",
    "::",
    "fd00::",
    "fd00::1",
    "fc00::1",
    "fe80::1",
    "fe80::1%eth0",
    "fec0::1",
    "ff02::1",
    "ff0e::1",
    "100::1",
    "2001::1",
    "2001:db8::1",
    "3fff::1",
    "2130706433",
    "0x7f000001",
    "0x7f.1",
    "127.1",
    "0177.0.0.1",
    "017700000001",
    "0",
    "::ffff:127.0.0.1",
    "::ffff:7f00:1",
    "[::ffff:169.254.169.254]",
    "::ffff:10.0.0.1",
    "::127.0.0.1",
    "64:ff9b::7f00:1",
    "64:ff9b::a9fe:a9fe",
    "64:ff9b::10.0.0.1",
    "64:ff9b:1::1",
    "2002:7f00:1::1",
    "2002:a9fe:a9fe::1",
    "2002:c0a8:101::",
    "localhost",
    "example.com",
    "",
    "1.2.3.4.5",
    "1.2.3.4 junk",
]

PUBLIC = [
    "93.184.216.34",
    "8.8.8.8",
    "1.1.1.1",
    "[2606:4700:4700::1111]",
    "2a00:1450:4001:80b::200e",
    "::ffff:93.184.216.34",
    "64:ff9b::5db8:d822",
    "2002:5db8:d822::1",
]


@pytest.mark.parametrize("ip", REFUSED)
def test_non_global_addresses_are_refused(ip: str) -> None:
    assert not is_public(ip)


@pytest.mark.parametrize("ip", PUBLIC)
def test_global_unicast_addresses_are_allowed(ip: str) -> None:
    assert is_public(ip)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("[::1]", "::1"),
        ("93.184.216.34", "93.184.216.34"),
        ("example.com", None),
        ("1.2.3.4.5", None),
        ("08.0.0.1", None),
        ("cafe", None),
    ],
)
def test_parse_ip_reads_every_spelling_the_os_accepts(text: str, expected: str | None) -> None:
    parsed = parse_ip(text)
    assert (None if parsed is None else str(parsed)) == expected


def test_allow_list_permits_only_the_listed_range() -> None:
    allowed = parse_networks(["127.0.0.1/32", "fd12:3456::/32"])
    assert is_public("127.0.0.1", allowed)
    assert is_public("::ffff:127.0.0.1", allowed)
    assert is_public("fd12:3456::9", allowed)
    assert not is_public("127.0.0.2", allowed)
    assert not is_public("169.254.169.254", allowed)
    assert not is_public("fd12:3457::1", allowed)


def test_allow_list_never_matches_across_ip_versions() -> None:
    assert not is_public("::1", parse_networks(["0.0.0.0/0"]))
    assert not is_public("127.0.0.1", parse_networks(["::/0"]))


@pytest.mark.parametrize("cidr", ["10.0.0.1/8", "not-a-network", "300.0.0.0/8"])
def test_malformed_allow_list_entries_fail_loudly(cidr: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_networks([cidr])


def _wrappings(v4: ipaddress.IPv4Address) -> list[ipaddress.IPv6Address]:
    """Every IPv6 form that carries v4: mapped, NAT64 and 6to4."""
    value = int(v4)
    return [
        ipaddress.IPv6Address((0xFFFF << 32) | value),
        ipaddress.IPv6Address((0x64FF9B << 96) | value),
        ipaddress.IPv6Address((0x2002 << 112) | (value << 80) | 1),
    ]


def _samples(network: str) -> list[ipaddress.IPv4Address]:
    """First, last and middle addresses of a network: the edges are where masks go wrong."""
    net = ipaddress.IPv4Network(network)
    return [net[0], net[-1], net[net.num_addresses // 2]]


REFUSED_V4_RANGES = [
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "224.0.0.0/4",
    "240.0.0.0/4",
]

JUST_OUTSIDE = [
    "9.255.255.255",
    "11.0.0.0",
    "100.63.255.255",
    "100.128.0.0",
    "172.15.255.255",
    "172.32.0.0",
    "169.253.255.255",
    "169.255.0.0",
    "192.167.255.255",
    "192.169.0.0",
]


@pytest.mark.parametrize("network", REFUSED_V4_RANGES)
def test_every_wrapping_of_a_refused_ipv4_range_is_refused(network: str) -> None:
    for v4 in _samples(network):
        assert not is_public(v4)
        for v6 in _wrappings(v4):
            assert not is_public(v6), v6


@pytest.mark.parametrize("ip", ["93.184.216.34", "8.8.8.8", "1.0.0.1", "223.255.255.254"])
def test_every_wrapping_of_a_public_ipv4_address_is_allowed(ip: str) -> None:
    for v6 in _wrappings(ipaddress.IPv4Address(ip)):
        assert is_public(v6), v6


@pytest.mark.parametrize("edge", JUST_OUTSIDE)
def test_addresses_just_outside_refused_ranges_are_allowed(edge: str) -> None:
    assert is_public(edge)
