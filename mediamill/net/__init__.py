"""SSRF-safe download of untrusted URLs; a bottom layer that imports nothing else from mediamill."""

from mediamill.net.addresses import IPAddress, IPNetwork, is_public, parse_ip, parse_networks
from mediamill.net.errors import FetchError, FetchRefused, TransientFetchError
from mediamill.net.fetch import FetchResult, fetch_to_file
from mediamill.net.policy import DEFAULT_USER_AGENT, FetchPolicy
from mediamill.net.resolve import Resolver, pin_address, system_resolver

__all__ = [
    "DEFAULT_USER_AGENT",
    "FetchError",
    "FetchPolicy",
    "FetchRefused",
    "FetchResult",
    "IPAddress",
    "IPNetwork",
    "Resolver",
    "TransientFetchError",
    "fetch_to_file",
    "is_public",
    "parse_ip",
    "parse_networks",
    "pin_address",
    "system_resolver",
]
