"""Spread keep-alive connections evenly over the API's worker processes.

uvicorn's workers share one listening socket, and the first to wake accepts every
connection waiting, so a burst of clients that keep their connections (a webhook sender's
pool, a proxy, a load tool) can leave one process with most of them: it queues their
requests on one core while the other idles.

Each worker here publishes how many connections it holds on a board the ``mediamill api``
process shares with them: a small file of counts, one slot per worker, each slot held
with a file lock for the worker's life so a restarted worker takes the slot of the one
that died. A worker holding more than its even share answers the next request with
``Connection: close``; the client opens a new connection, and the less busy worker, more
often the first to wake, accepts it. HTTP/1.1 clients reconnect on their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import math
import mmap
import os
import shutil
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from mediamill.processes import pid_running

logger = logging.getLogger(__name__)
# Where the ``mediamill api`` process tells its workers the board's folder.
BOARD_ENV = "MEDIAMILL_API_CONNECTION_BOARD"
COUNTS_FILE = "connections"
# A board's folder: this prefix, the id of the process that made it, a random part.
BOARD_PREFIX = "mediamill-api-board-"
SLOT = struct.Struct("<q")


class ConnectionBoard:
    """One worker's view of the board: its own slot to write, every slot to read."""

    def __init__(self, folder: Path) -> None:
        counts = folder / COUNTS_FILE
        self.workers = counts.stat().st_size // SLOT.size
        self._lock: IO[bytes] | None = None
        self.slot = self._claim_slot(folder)
        with counts.open("r+b") as handle:
            self._counts = mmap.mmap(handle.fileno(), 0)
        self.held = 0
        self._publish()

    def _claim_slot(self, folder: Path) -> int:
        for slot in range(self.workers):
            handle = (folder / f"slot-{slot}.lock").open("ab")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            self._lock = handle  # held open, so the slot stays this process's until exit
            return slot
        raise RuntimeError(f"every one of the {self.workers} slots is taken")

    def _publish(self) -> None:
        SLOT.pack_into(self._counts, self.slot * SLOT.size, self.held)

    def joined(self) -> None:
        self.held += 1
        self._publish()

    def left(self) -> None:
        self.held = max(0, self.held - 1)
        self._publish()

    def over_share(self) -> bool:
        """Whether this worker holds more than an even share of every worker's connections."""
        total: int = sum(held for (held,) in SLOT.iter_unpack(self._counts))
        return self.held > math.ceil(total / self.workers)

    def close(self) -> None:
        self._counts.close()
        if self._lock is not None:
            self._lock.close()
            self._lock = None


@contextlib.contextmanager
def connection_board(workers: int, parent: Path | None = None) -> Iterator[Path]:
    """A board for ``workers`` processes, in a private folder removed when the block ends.

    A ``mediamill api`` that was killed could not remove its board: the folder's name
    carries the process id, and boards whose process is gone are removed here first.
    """
    parent = parent or Path(tempfile.gettempdir())
    remove_stale_boards(parent)
    prefix = f"{BOARD_PREFIX}{os.getpid()}-"
    with tempfile.TemporaryDirectory(prefix=prefix, dir=parent) as folder:
        (Path(folder) / COUNTS_FILE).write_bytes(bytes(SLOT.size * workers))
        yield Path(folder)


def remove_stale_boards(parent: Path) -> list[Path]:
    """Remove the boards in ``parent`` whose process no longer runs; returns them."""
    removed = []
    for folder in parent.glob(f"{BOARD_PREFIX}*-*"):
        pid = folder.name.removeprefix(BOARD_PREFIX).partition("-")[0]
        if pid.isdigit() and not pid_running(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


_board: ConnectionBoard | None = None
_board_opened = False


def _this_workers_board() -> ConnectionBoard | None:
    """The board named by the environment, opened once per process; None without one.

    A board that cannot be opened (its folder removed, no slot free) costs the balance,
    not the requests: the worker serves its connections as plain uvicorn would.
    """
    global _board, _board_opened
    if not _board_opened:
        _board_opened = True
        if folder := os.environ.get(BOARD_ENV):
            try:
                _board = ConnectionBoard(Path(folder))
            except (OSError, RuntimeError, ValueError) as error:
                logger.warning("connections are not balanced in this process: %s", error)
    return _board


class BalancedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, counting its connections and closing one over its share."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._board = _this_workers_board()
        self._on_board = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if self._board is not None:
            self._board.joined()
            self._on_board = True

    def connection_lost(self, exc: Exception | None) -> None:
        self._leave_board()
        super().connection_lost(exc)

    def handle_websocket_upgrade(self) -> None:
        # The connection passes to uvicorn's WebSocket protocol, which keeps no count, and
        # this protocol hears nothing more of it: it leaves the board now.
        self._leave_board()
        super().handle_websocket_upgrade()

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        board, cycle = self._board, self.cycle
        if self._on_board and board is not None and cycle is not None and board.over_share():
            # Counted as gone now, so the next request here sees the share restored
            # instead of closing a second connection for the same excess.
            self._leave_board()
            cycle.keep_alive = False

    def _leave_board(self) -> None:
        if self._on_board and self._board is not None:
            self._board.left()
            self._on_board = False
