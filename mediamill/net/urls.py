"""Turn an untrusted URL, or a redirect's Location, into one validated request target."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote, unquote, urljoin, urlsplit

from mediamill.net.addresses import parse_ip
from mediamill.net.errors import FetchRefused

MAX_URL_LENGTH: Final = 8192
DEFAULT_PORTS: Final = {"http": 80, "https": 443}

_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
_HOSTNAME: Final = re.compile(r"(?=.{1,253}\.?$)[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?")
_PATH_SAFE: Final = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE: Final = _PATH_SAFE + "?"


@dataclass(frozen=True)
class Target:
    """One validated hop: the name to verify and send as Host, the port, and what to ask for."""

    scheme: str
    host: str
    port: int
    path: str
    query: str

    @property
    def authority(self) -> str:
        """The Host header value, with the port only when it is not the scheme's default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if DEFAULT_PORTS[self.scheme] == self.port else f"{host}:{self.port}"

    @property
    def request_target(self) -> str:
        """The origin-form target for the request line; always ASCII without spaces."""
        return f"{self.path}?{self.query}" if self.query else self.path

    @property
    def url(self) -> str:
        """The normalised URL, as reported back and used as the base for redirects."""
        return f"{self.scheme}://{self.authority}{self.request_target}"

    @property
    def filename_hint(self) -> str | None:
        """The last path segment, percent-decoded; untrusted text for the caller to escape."""
        segment = self.path.rsplit("/", 1)[-1]
        return unquote(segment, errors="replace") or None


def parse_target(url: str) -> Target:
    """Validate an untrusted URL: http(s) only, no credentials, a well-formed host and port."""
    if len(url) > MAX_URL_LENGTH or _CONTROL.search(url):
        raise FetchRefused("bad_url", "URL is too long or contains control characters")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as error:
        raise FetchRefused("bad_url", f"URL cannot be parsed: {error}") from error
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise FetchRefused("unsupported_scheme", f"scheme {scheme or '(none)'!r} is not http(s)")
    if "@" in parts.netloc:
        raise FetchRefused("credentials_in_url", "URLs with user info are refused")
    if port == 0:
        raise FetchRefused("bad_url", "port 0 is not a destination")
    return Target(
        scheme=scheme,
        host=_normalise_host(parts.hostname or "", bracketed="[" in parts.netloc),
        port=DEFAULT_PORTS[scheme] if port is None else port,
        path=quote(parts.path or "/", safe=_PATH_SAFE),
        query=quote(parts.query, safe=_QUERY_SAFE),
    )


def follow(base: Target, location: str) -> Target:
    """Resolve a redirect's Location against the current hop and validate it from scratch."""
    return parse_target(urljoin(base.url, location.strip()))


def _normalise_host(host: str, *, bracketed: bool) -> str:
    """Return the ASCII host to resolve, verify and send, or refuse a malformed one."""
    if bracketed:
        address = parse_ip(host)
        if address is None or address.version != 6 or "%" in host:
            raise FetchRefused("bad_url", "bracketed host is not an IPv6 address")
        return str(address)
    try:
        ascii_host = host if host.isascii() else host.encode("idna").decode("ascii")
    except UnicodeError as error:
        raise FetchRefused("bad_url", "host is not a valid internationalised name") from error
    if not _HOSTNAME.fullmatch(ascii_host):
        raise FetchRefused("bad_url", f"host {ascii_host!r} is not a valid name")
    return ascii_host
