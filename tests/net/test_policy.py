"""FetchPolicy validation and FetchError behaviour callers rely on."""

from __future__ import annotations

import pickle
import ssl
from typing import Any

import pytest

from mediamill.net import FetchError, FetchPolicy, FetchRefused, TransientFetchError
from mediamill.net.errors import REFUSAL_CODES, TRANSIENT_CODES


@pytest.mark.parametrize(
    "options",
    [
        {"max_bytes": 0},
        {"timeout_seconds": 0},
        {"connect_timeout": -1},
        {"max_redirects": -1},
        {"allowed_networks": ("10.0.0.1/8",)},
        {"allowed_networks": ("everything",)},
        {"user_agent": "mediamill\r\nX-Injected: 1"},
        {"user_agent": ""},
    ],
)
def test_bad_settings_fail_at_construction(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"."):
        FetchPolicy(**options)


def test_tls_context_without_verification_is_rejected() -> None:
    lax = ssl.create_default_context()
    lax.check_hostname = False
    with pytest.raises(ValueError, match="verify"):
        FetchPolicy(tls_context=lax)
    lax.verify_mode = ssl.CERT_NONE
    with pytest.raises(ValueError, match="verify"):
        FetchPolicy(tls_context=lax)


def test_defaults_match_the_settings_and_allow_nothing_private() -> None:
    policy = FetchPolicy()
    assert (policy.max_bytes, policy.timeout_seconds, policy.max_redirects) == (200 << 20, 60, 5)
    assert policy.networks == ()
    assert policy.tls.check_hostname


def test_allowed_networks_from_a_settings_list_are_parsed_once() -> None:
    policy = FetchPolicy(allowed_networks=["10.1.0.0/16"])  # type: ignore[arg-type]
    assert policy.allowed_networks == ("10.1.0.0/16",)
    assert [str(net) for net in policy.networks] == ["10.1.0.0/16"]
    assert hash(policy) == hash(FetchPolicy(allowed_networks=("10.1.0.0/16",)))


@pytest.mark.parametrize(
    "error",
    [
        FetchRefused("too_large", "body passed the cap"),
        TransientFetchError("http_error", "server answered 503", status=503),
    ],
)
def test_errors_survive_pickling_for_worker_processes(error: FetchError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert (copy.code, copy.message, copy.status) == (error.code, error.message, error.status)
    assert str(copy) == str(error)


def test_the_two_code_sets_share_only_http_error() -> None:
    shared = REFUSAL_CODES & TRANSIENT_CODES
    assert shared == {"http_error"}
