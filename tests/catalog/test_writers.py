from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from mediamill.catalog.engine import make_engine
from mediamill.catalog.writers import LOCK_FILE_SUFFIX, WriterTurns

# Takes the turn on the lock file named by argv[1], says so, and keeps it until stdin closes.
HOLDER = """
import sys
from pathlib import Path
from mediamill.catalog.writers import WriterTurns

turns = WriterTurns(Path(sys.argv[1]))
with turns:
    print("held", flush=True)
    sys.stdin.read()
"""

needs_flock = pytest.mark.skipif(
    sys.platform == "win32", reason="turns between processes use flock(2), which Windows lacks"
)


@needs_flock
def test_a_writer_waits_for_another_process_s_turn_to_end(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db-writers"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    turns = WriterTurns(path)
    mine = threading.Event()

    def write() -> None:
        with turns:
            mine.set()

    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "held\n"
        writer = threading.Thread(target=write)
        writer.start()
        assert not mine.wait(timeout=0.5)  # the other process still holds the turn
        assert holder.stdin is not None
        holder.stdin.close()  # its turn ends
        writer.join(timeout=30)
        assert mine.is_set()
    finally:
        holder.kill()
        holder.wait()
        turns.close()


def test_threads_take_turns_and_a_turn_can_nest(tmp_path: Path) -> None:
    turns = WriterTurns(tmp_path / "catalog.db-writers")
    inside: list[int] = []
    overlaps: list[int] = []

    def write(n: int) -> None:
        for _ in range(200):
            with turns, turns:  # nested: a write inside a write of the same thread
                inside.append(n)
                if len(inside) > 1:
                    overlaps.append(n)
                inside.remove(n)

    writers = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=60)
    turns.close()
    assert overlaps == []
    assert inside == []


def test_a_failed_turn_lets_the_next_writer_in(tmp_path: Path) -> None:
    turns = WriterTurns(tmp_path / "catalog.db-writers")
    with pytest.raises(RuntimeError), turns:
        raise RuntimeError("the write failed")
    taken = threading.Event()

    def take() -> None:
        with turns:
            taken.set()

    other = threading.Thread(target=take)
    other.start()
    other.join(timeout=30)
    assert taken.is_set()


def _take_a_turn(url: str) -> bool:
    """Whether the catalog at ``url`` has writer turns; takes one if it does."""
    engine = make_engine(url)
    try:
        turns = WriterTurns.for_engine(engine)
        if turns is None:
            return False
        with turns:
            pass
        turns.close()
        return True
    finally:
        engine.dispose()


def test_a_file_catalog_keeps_its_turns_beside_the_database(tmp_path: Path) -> None:
    assert _take_a_turn(f"sqlite:///{tmp_path / 'catalog.db'}")
    assert (tmp_path / f"catalog.db{LOCK_FILE_SUFFIX}").exists()


def test_an_in_memory_catalog_takes_turns_within_the_process() -> None:
    assert _take_a_turn("sqlite://")


def test_postgresql_needs_no_turns() -> None:
    assert not _take_a_turn("postgresql+psycopg://user@127.0.0.1:1/catalog")
