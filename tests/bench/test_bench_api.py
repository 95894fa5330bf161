"""The API benchmark's reading of wrk output (the load itself runs in bench/, not here)."""

from __future__ import annotations

import pytest

from bench.bench_api import _lua_string, parse_wrk, recent_media_query

WRK_OUTPUT = """\
Running 20s test @ http://127.0.0.1:41234/graphql
  2 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    31.05ms   12.80ms 276.33ms   91.03%
    Req/Sec   130.35     35.74   190.00     70.00%
  Latency Distribution
     50%   28.45ms
     75%   34.12ms
     90%  412.00us
     99%    1.21s
  5213 requests in 20.02s, 60.27MB read
  Socket errors: connect 0, read 0, write 0, timeout 2
  Non-2xx or 3xx responses: 3
Requests/sec:    260.39
Transfer/sec:      3.01MB
STATUS 200 5210
STATUS 503 3
GRAPHQL_ERRORS 1
"""


def test_parse_wrk_reads_percentiles_in_ms_and_the_lua_counts() -> None:
    result = parse_wrk(WRK_OUTPUT)
    assert result.p50 == pytest.approx(28.45)
    assert result.p75 == pytest.approx(34.12)
    assert result.p90 == pytest.approx(0.412)
    assert result.p99 == pytest.approx(1210.0)
    assert result.requests == 5213
    assert result.seconds == pytest.approx(20.02)
    assert result.rps == pytest.approx(260.39)
    assert result.statuses == {200: 5210, 503: 3}
    assert result.answered == 5213
    assert result.graphql_errors == 1
    assert result.socket_errors == "connect 0, read 0, write 0, timeout 2"


def test_parse_wrk_refuses_output_without_a_latency_distribution() -> None:
    with pytest.raises(ValueError, match="latency distribution"):
        parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_lua_string_cannot_be_closed_by_its_content() -> None:
    assert _lua_string("plain") == "[[plain]]"
    assert _lua_string("a]]b]=]c") == "[==[a]]b]=]c]==]"
    assert "recentMedia(first: 20)" in recent_media_query("first: 20")
