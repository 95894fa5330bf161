"""The API benchmark's reading of wrk output (the load itself runs in bench/, not here)."""

from __future__ import annotations

import pytest

from bench.bench_api import (
    _lua_string,
    established_inodes,
    parse_wrk,
    recent_media_query,
    spread_text,
)

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


# /proc/net/tcp as Linux prints it: a header, then one socket per row (ports in hex).
PROC_NET_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1111 1
   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 2222 1
   2: 0100007F:C350 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 3333 1
   3: 0100007F:1F90 0100007F:C351 06 00000000:00000000 00:00000000 00000000     0        0 0 1
   4: 0100007F:1F90 0100007F:C352 01 00000000:00000000 00:00000000 00000000     0        0 4444 1
"""


def test_established_inodes_keeps_established_connections_to_the_port_only() -> None:
    # 0x1F90 is 8080: the listener (0A), the client's own end (local port 50000) and a
    # TIME_WAIT socket (06) are not connections a server process holds.
    assert established_inodes(8080, PROC_NET_TCP) == {2222, 4444}
    assert established_inodes(50000, PROC_NET_TCP) == {3333}
    assert established_inodes(9999, PROC_NET_TCP) == set()


def test_spread_text_lists_connections_per_process_fewest_first() -> None:
    assert spread_text([5, 3]) == "3/5"
    assert spread_text([0, 8]) == "0/8"
    assert spread_text([]) == "?"
