"""Errors raised by a URL download.

Callers branch on the class to decide about retries, and on ``code`` to report why::

    FetchError                   .code (stable, machine-readable), .status (HTTP status or None)
    ├── FetchRefused             the URL or its answer is unacceptable; retrying cannot help
    │     .code: "bad_url" | "unsupported_scheme" | "credentials_in_url" | "forbidden_address"
    │            | "unresolvable" | "too_many_redirects" | "too_large" | "http_error"
    │            | "unsupported_encoding" | "bad_response" | "certificate_error"
    └── TransientFetchError      the network or the server failed this time; retry with backoff
          .code: "timeout" | "connection_failed" | "dns_failure" | "incomplete" | "tls_error"
                 | "http_error"
"""

from __future__ import annotations

from typing import Final, Literal, get_args

RefusalCode = Literal[
    "bad_url",
    "unsupported_scheme",
    "credentials_in_url",
    "forbidden_address",  # some resolved or literal address is not globally routable
    "unresolvable",  # the name does not exist (a temporary DNS failure is transient)
    "too_many_redirects",
    "too_large",
    "http_error",  # a 4xx other than 408 and 429, or a 3xx that cannot be followed
    "unsupported_encoding",  # a compressed body although identity was asked for
    "bad_response",  # a response http.client cannot parse: long lines, too many headers
    "certificate_error",
]

TransientCode = Literal[
    "timeout",  # the wall-clock budget or the connect timeout ran out
    "connection_failed",
    "dns_failure",
    "incomplete",  # the body ended before its declared length
    "tls_error",  # a TLS failure other than certificate verification
    "http_error",  # 5xx, 408 or 429
]

REFUSAL_CODES: Final[frozenset[str]] = frozenset(get_args(RefusalCode))
TRANSIENT_CODES: Final[frozenset[str]] = frozenset(get_args(TransientCode))


class FetchError(Exception):
    """A download failed; ``code`` lets callers record the reason without parsing text."""

    def __init__(self, code: str, message: str, *, status: int | None = None) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message
        self.status = status

    def __str__(self) -> str:
        return f"{self.message} [{self.code}]"


class FetchRefused(FetchError):  # noqa: N818 - the name callers were promised
    """The URL or its answer is unacceptable, so a retry would be refused the same way."""

    def __init__(self, code: RefusalCode, message: str, *, status: int | None = None) -> None:
        super().__init__(code, message, status=status)


class TransientFetchError(FetchError):
    """The network or server failed this attempt; the same URL may work later."""

    def __init__(self, code: TransientCode, message: str, *, status: int | None = None) -> None:
        super().__init__(code, message, status=status)
