"""URL validation: schemes, credentials, hosts, and the normalised form each hop uses."""

from __future__ import annotations

import pytest

from mediamill.net import FetchRefused
from mediamill.net.urls import follow, parse_target


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "gopher://127.0.0.1:70/_GET%20/",
        "ftp://example.com/a.jpg",
        "dict://127.0.0.1:11211/stat",
        "javascript:alert(1)",
        "data:image/png;base64,iVBORw0KGgo=",
        "example.com/a.jpg",
        "//example.com/a.jpg",
    ],
)
def test_only_http_and_https_are_accepted(url: str) -> None:
    with pytest.raises(FetchRefused) as caught:
        parse_target(url)
    assert caught.value.code == "unsupported_scheme"


@pytest.mark.parametrize(
    "url",
    [
        "http://user:pass@example.com/a.jpg",
        "http://user@example.com/",
        "https://:token@example.com/",
        "http://example.com\\@127.0.0.1/",
        "http://example.com@169.254.169.254/",
    ],
)
def test_credentials_in_urls_are_refused(url: str) -> None:
    with pytest.raises(FetchRefused) as caught:
        parse_target(url)
    assert caught.value.code == "credentials_in_url"


@pytest.mark.parametrize(
    "url",
    [
        "http:///a.jpg",
        "http://exa mple.com/",
        "http://example.com:0/",
        "http://example.com:99999/",
        "http://example.com:port/",
        "http://[::1/",
        "http://[fe80::1%25eth0]/",
        "http://[not-v6]/",
        "http://a..b/",
        "http://.example.com/",
        "http://exa%6dple.com/",
        "http://example.com/\x00.jpg",
        "http://example.com/a\r\nX-Injected: 1",
        "http://" + "a" * 9000 + ".com/",
    ],
)
def test_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(FetchRefused) as caught:
        parse_target(url)
    assert caught.value.code == "bad_url"


def test_url_is_normalised_and_fragment_dropped() -> None:
    target = parse_target("HTTP://Example.COM/a b/%7E/ü.jpg?q=ü&x=1#frag")
    assert (target.scheme, target.host, target.port) == ("http", "example.com", 80)
    assert target.request_target == "/a%20b/%7E/%C3%BC.jpg?q=%C3%BC&x=1"
    assert target.url == "http://example.com/a%20b/%7E/%C3%BC.jpg?q=%C3%BC&x=1"
    assert target.authority == "example.com"


def test_internationalised_hosts_become_ascii() -> None:
    assert parse_target("https://bücher.example/").host == "xn--bcher-kva.example"


def test_ports_and_ipv6_literals_shape_the_authority() -> None:
    assert parse_target("https://example.com:443/").authority == "example.com"
    assert parse_target("http://example.com:8080").url == "http://example.com:8080/"
    v6 = parse_target("http://[2606:4700::1]:8080/x")
    assert (v6.host, v6.authority) == ("2606:4700::1", "[2606:4700::1]:8080")


@pytest.mark.parametrize(
    ("url", "hint"),
    [
        ("https://cdn.example/images/red%20flower.jpg?w=1", "red flower.jpg"),
        ("https://cdn.example/a/b/c.png", "c.png"),
        ("https://cdn.example/", None),
        ("https://cdn.example", None),
        ("https://cdn.example/dir/", None),
    ],
)
def test_filename_hint_is_the_decoded_last_segment(url: str, hint: str | None) -> None:
    assert parse_target(url).filename_hint == hint


def test_redirects_resolve_relative_to_the_current_hop() -> None:
    base = parse_target("https://shop.example/products/1/image")
    assert follow(base, "/cdn/a.jpg").url == "https://shop.example/cdn/a.jpg"
    assert follow(base, "b.jpg").url == "https://shop.example/products/1/b.jpg"
    assert follow(base, "//169.254.169.254/latest").host == "169.254.169.254"
    with pytest.raises(FetchRefused) as caught:
        follow(base, "file:///etc/passwd")
    assert caught.value.code == "unsupported_scheme"
