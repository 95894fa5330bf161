"""The limits one URL download runs under, fixed by the caller from its settings."""

from __future__ import annotations

import functools
import re
import ssl
from dataclasses import dataclass, field
from typing import Final

from mediamill.net.addresses import IPNetwork, parse_networks
from mediamill.net.resolve import Resolver, system_resolver

DEFAULT_USER_AGENT: Final = "mediamill/0.1 (url-ingest)"
_HEADER_TEXT: Final = re.compile(r"[\x20-\x7e]+")


@functools.cache
def default_tls_context() -> ssl.SSLContext:
    """The system trust store with hostname checks, built once because loading CAs is slow."""
    return ssl.create_default_context()


@dataclass(frozen=True)
class FetchPolicy:
    """Caps and knobs for fetch_to_file; validated up front so a bad setting fails loudly."""

    max_bytes: int = 200 * 1024 * 1024
    timeout_seconds: float = 60.0
    connect_timeout: float = 10.0
    max_redirects: int = 5
    allowed_networks: tuple[str, ...] = ()
    resolver: Resolver = system_resolver
    user_agent: str = DEFAULT_USER_AGENT
    tls_context: ssl.SSLContext | None = None
    networks: tuple[IPNetwork, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        if self.timeout_seconds <= 0 or self.connect_timeout <= 0:
            raise ValueError("timeouts must be positive")
        if self.max_redirects < 0:
            raise ValueError("max_redirects must not be negative")
        if not _HEADER_TEXT.fullmatch(self.user_agent):
            raise ValueError("user_agent must be printable ASCII")
        if self.tls_context is not None and not _verifies(self.tls_context):
            raise ValueError("tls_context must verify certificates and hostnames")
        object.__setattr__(self, "allowed_networks", tuple(self.allowed_networks))
        object.__setattr__(self, "networks", parse_networks(self.allowed_networks))

    @property
    def tls(self) -> ssl.SSLContext:
        """The TLS context to use: the caller's, or the verifying system default."""
        return self.tls_context or default_tls_context()


def _verifies(context: ssl.SSLContext) -> bool:
    """A context that skips verification would let any pinned IP impersonate the host."""
    return context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
