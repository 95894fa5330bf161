"""Resolution: one lookup, every answer checked, the first answer pinned."""

from __future__ import annotations

import socket
from collections.abc import Iterable

import pytest

from mediamill.net import FetchRefused, TransientFetchError, parse_networks, pin_address


def _never(host: str, port: int) -> Iterable[str]:
    raise AssertionError(f"literal host {host} must not be looked up")


@pytest.mark.parametrize(
    "host", ["2130706433", "0x7f000001", "127.1", "0177.0.0.1", "::1", "0.0.0.0", "169.254.169.254"]
)
def test_literal_hosts_are_checked_without_a_lookup(host: str) -> None:
    with pytest.raises(FetchRefused) as caught:
        pin_address(host, 80, resolver=_never)
    assert caught.value.code == "forbidden_address"


def test_public_literal_is_pinned_without_a_lookup() -> None:
    assert str(pin_address("93.184.216.34", 80, resolver=_never)) == "93.184.216.34"


def test_one_non_public_answer_refuses_the_host() -> None:
    def mixed(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "10.0.0.1"]

    with pytest.raises(FetchRefused) as caught:
        pin_address("mixed.example", 443, resolver=mixed)
    assert caught.value.code == "forbidden_address"


def test_first_answer_is_pinned_after_a_single_lookup() -> None:
    asked: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        asked.append(host)
        return ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]

    assert str(pin_address("shop.example", 443, resolver=resolve)) == "93.184.216.34"
    assert asked == ["shop.example"]


def test_allow_list_lets_a_deliberate_private_range_through() -> None:
    def internal(host: str, port: int) -> list[str]:
        return ["10.1.2.3"]

    allowed = parse_networks(["10.1.0.0/16"])
    assert str(pin_address("assets.internal", 80, allowed_networks=allowed, resolver=internal))


@pytest.mark.parametrize("answers", [[], ["not-an-address"]])
def test_empty_or_garbage_answers_are_unresolvable(answers: list[str]) -> None:
    def resolve(host: str, port: int) -> list[str]:
        return answers

    with pytest.raises(FetchRefused) as caught:
        pin_address("odd.example", 80, resolver=resolve)
    assert caught.value.code == "unresolvable"


def test_missing_name_is_refused_but_temporary_dns_failure_is_transient() -> None:
    def missing(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    def flaky(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    with pytest.raises(FetchRefused) as refused:
        pin_address("nope.invalid", 80, resolver=missing)
    assert refused.value.code == "unresolvable"
    with pytest.raises(TransientFetchError) as transient:
        pin_address("flaky.example", 80, resolver=flaky)
    assert transient.value.code == "dns_failure"


def test_system_resolver_refuses_localhost() -> None:
    with pytest.raises(FetchRefused) as caught:
        pin_address("localhost", 80)
    assert caught.value.code == "forbidden_address"
