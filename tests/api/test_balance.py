"""Keep-alive connections spread evenly over ``mediamill api``'s worker processes."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mediamill.api import balance
from mediamill.api.balance import ConnectionBoard, connection_board
from tests.services.objectstores import free_port

CLIENTS = 8
BALANCE_DEADLINE_S = 60.0


def test_each_process_takes_its_own_slot_and_frees_it_at_close() -> None:
    with connection_board(2) as folder:
        first, second = ConnectionBoard(folder), ConnectionBoard(folder)
        assert {first.slot, second.slot} == {0, 1}
        with pytest.raises(RuntimeError, match="slots is taken"):
            ConnectionBoard(folder)
        first.close()
        replacement = ConnectionBoard(folder)  # a restarted worker
        assert replacement.slot == first.slot
        second.close()
        replacement.close()


def test_a_worker_over_its_even_share_is_told_so() -> None:
    with connection_board(2) as folder:
        busy, idle = ConnectionBoard(folder), ConnectionBoard(folder)
        for _ in range(3):
            busy.joined()
        idle.joined()
        assert (busy.over_share(), idle.over_share()) == (True, False)  # 3 of 4
        busy.left()
        assert (busy.over_share(), idle.over_share()) == (False, False)  # 2 of 3
        for _ in range(3):
            idle.left()  # more departures than arrivals never go below zero
        assert idle.held == 0
        busy.close()
        idle.close()


def test_a_restarted_worker_starts_from_zero() -> None:
    with connection_board(2) as folder:
        dead = ConnectionBoard(folder)
        for _ in range(5):
            dead.joined()
        dead.close()
        other, replacement = ConnectionBoard(folder), ConnectionBoard(folder)
        other.joined()
        assert replacement.held == 0
        assert (other.over_share(), replacement.over_share()) == (False, False)  # 1 of 1
        other.close()
        replacement.close()


def test_boards_of_processes_that_are_gone_are_removed_at_start(tmp_path: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # reaped: its id names no process now
    stale = tmp_path / f"{balance.BOARD_PREFIX}{gone.pid}-x1"
    live = tmp_path / f"{balance.BOARD_PREFIX}{os.getpid()}-x2"
    unrelated = tmp_path / "mediamill-api-board-notes"
    for folder in (stale, live, unrelated):
        folder.mkdir()
        (folder / balance.COUNTS_FILE).write_bytes(bytes(16))
    with connection_board(2, parent=tmp_path) as folder:
        assert folder.parent == tmp_path
        assert folder.name.startswith(f"{balance.BOARD_PREFIX}{os.getpid()}-")
        assert not stale.exists()
        assert live.exists()
        assert unrelated.exists()
    assert not folder.exists()


def test_a_board_that_cannot_be_opened_leaves_the_worker_serving_unbalanced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(balance, "_board", None)
    monkeypatch.setattr(balance, "_board_opened", False)
    monkeypatch.setenv(balance.BOARD_ENV, str(tmp_path / "removed"))
    assert balance._this_workers_board() is None
    assert "not balanced" in caplog.text
    caplog.clear()
    assert balance._this_workers_board() is None
    assert caplog.text == ""  # tried once per process, not once per connection


@pytest.fixture
def two_worker_api(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """``mediamill api --workers 2`` on a fresh home, as an operator starts it."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEDIAMILL_", "PREFECT_"))}
    env.update(
        MEDIAMILL_HOME=str(tmp_path / "home"),
        MEDIAMILL_DISPATCH="deployments",  # no run is started here: no Prefect server needed
        PREFECT_API_URL="http://127.0.0.1:9/api",
    )
    command = [sys.executable, "-m", "mediamill", "api", "--workers", "2", "--port", str(port)]
    server = subprocess.Popen(
        [*command, "--no-access-log", "--log-level", "warning"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_until_both_workers_answer(server, port)
        yield server, port
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def _wait_until_both_workers_answer(server: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server.poll() is None, "the API exited while starting"
        if len(_workers(server.pid)) == 2:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
        time.sleep(0.2)
    raise AssertionError("the API did not start within 60 s")


def _workers(supervisor: int) -> list[int]:
    """uvicorn's worker processes: the supervisor's children started by spawn."""
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    return sorted(
        int(pid) for pid in children if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    )


def _connections_per_worker(port: int, workers: list[int]) -> list[int]:
    """Established connections to ``port`` each worker holds, read from ``/proc``."""
    established = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "01":  # 01: ESTABLISHED
                established.add(int(fields[9]))  # the socket's inode
    counts = []
    for pid in workers:
        held = 0
        for descriptor in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(descriptor)
            except OSError:
                continue
            if target.startswith("socket:[") and int(target[8:-1]) in established:
                held += 1
        counts.append(held)
    return sorted(counts)


def test_connections_all_taken_by_one_worker_end_up_split_evenly(
    two_worker_api: tuple[subprocess.Popen[bytes], int],
) -> None:
    server, port = two_worker_api
    workers = _workers(server.pid)
    # The second worker is paused while the clients connect, so the first accepts them all:
    # the worst spread a burst of clients can get from a shared listening socket.
    os.kill(workers[1], signal.SIGSTOP)
    try:
        clients = [
            http.client.HTTPConnection("127.0.0.1", port, timeout=30) for _ in range(CLIENTS)
        ]
        for client in clients:
            client.connect()
        deadline = time.monotonic() + 10
        while _connections_per_worker(port, workers) != [0, CLIENTS]:
            assert time.monotonic() < deadline, _connections_per_worker(port, workers)
            time.sleep(0.05)
    finally:
        os.kill(workers[1], signal.SIGCONT)

    stop = threading.Event()
    statuses: list[int] = []
    failures: list[BaseException] = []

    def keep_asking(client: http.client.HTTPConnection) -> None:
        # http.client reconnects by itself after an answer that said Connection: close.
        try:
            while not stop.is_set():
                client.request("GET", "/healthz")
                response = client.getresponse()
                response.read()
                statuses.append(response.status)
        except BaseException as error:  # reported by the test below
            failures.append(error)

    threads = [threading.Thread(target=keep_asking, args=(c,), daemon=True) for c in clients]
    for thread in threads:
        thread.start()
    spread: list[int] = []
    deadline = time.monotonic() + BALANCE_DEADLINE_S
    try:
        while time.monotonic() < deadline and not failures:
            spread = _connections_per_worker(port, workers)
            if spread == [CLIENTS // 2, CLIENTS // 2]:
                break
            time.sleep(0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        for client in clients:
            client.close()
    assert failures == []
    assert spread == [CLIENTS // 2, CLIENTS // 2]
    assert set(statuses) == {200}


def _board_counts(worker: int) -> list[int]:
    """The counts a worker publishes, read from the board its environment names."""
    environment = Path(f"/proc/{worker}/environ").read_bytes().split(b"\0")
    prefix = balance.BOARD_ENV.encode() + b"="
    (folder,) = [entry[len(prefix) :].decode() for entry in environment if entry.startswith(prefix)]
    raw = (Path(folder) / balance.COUNTS_FILE).read_bytes()
    return [held for (held,) in balance.SLOT.iter_unpack(raw)]


def test_a_connection_upgraded_to_a_websocket_leaves_the_count(
    two_worker_api: tuple[subprocess.Popen[bytes], int],
) -> None:
    # uvicorn hands an upgraded connection to its WebSocket protocol, and the HTTP protocol
    # that counted it never hears of it again: counted still, it would skew the shares.
    server, port = two_worker_api
    worker = _workers(server.pid)[0]
    upgrade = (
        "GET /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n"
    )
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
            client.sendall(upgrade.encode())
            assert client.recv(4096).startswith(b"HTTP/1.1 ")  # the server answered the upgrade
    deadline = time.monotonic() + 10
    while sum(_board_counts(worker)) != 0:
        assert time.monotonic() < deadline, _board_counts(worker)
        time.sleep(0.05)
