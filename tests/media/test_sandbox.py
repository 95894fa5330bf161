"""Isolated decodes: results and validation errors come back, hangs, crashes and balloons don't."""

from __future__ import annotations

import os
import signal
import time

import pytest

from mediamill.media.errors import ProcessingError, ValidationError
from mediamill.media.sandbox import MIB, SandboxLimits, run_isolated

QUICK = SandboxLimits(seconds=20, memory_bytes=512 * MIB)


def double(value: int) -> int:
    return value * 2


def refuse() -> None:
    raise ValidationError("corrupt", "the test input is corrupt")


def hang() -> None:
    time.sleep(600)


def segfault() -> None:
    os.kill(os.getpid(), signal.SIGSEGV)


def balloon() -> int:
    hoard = []
    for _ in range(64):
        hoard.append(bytearray(64 * MIB))
        time.sleep(0.02)
    return len(hoard)


def bug() -> None:
    raise KeyError("a bug, not the input's fault")


def test_returns_the_result_of_the_call() -> None:
    assert run_isolated(double, 21, limits=QUICK) == 42


def test_a_validation_error_keeps_its_code_and_message() -> None:
    with pytest.raises(ValidationError) as caught:
        run_isolated(refuse, limits=QUICK)
    assert caught.value.code == "corrupt"
    assert str(caught.value) == "the test input is corrupt"


def test_a_hang_is_killed_at_the_time_limit() -> None:
    started = time.monotonic()
    with pytest.raises(ValidationError) as caught:
        run_isolated(hang, limits=SandboxLimits(seconds=2, memory_bytes=512 * MIB), what="x.glb")
    assert caught.value.code == "timed_out"
    assert "x.glb" in str(caught.value)
    assert time.monotonic() - started < 20


def test_a_crash_fails_the_input_not_the_caller() -> None:
    with pytest.raises(ValidationError) as caught:
        run_isolated(segfault, limits=QUICK)
    assert caught.value.code == "decoder_crashed"
    assert "signal 11" in str(caught.value)


def test_memory_past_the_cap_is_killed() -> None:
    with pytest.raises(ValidationError) as caught:
        run_isolated(balloon, limits=SandboxLimits(seconds=30, memory_bytes=300 * MIB))
    assert caught.value.code == "out_of_memory"


def test_an_address_space_cap_turns_a_huge_allocation_into_out_of_memory() -> None:
    limits = SandboxLimits(seconds=30, memory_bytes=4096 * MIB, address_space_bytes=1024 * MIB)
    with pytest.raises(ValidationError) as caught:
        run_isolated(balloon, limits=limits)
    assert caught.value.code == "out_of_memory"


def test_other_errors_are_processing_errors() -> None:
    with pytest.raises(ProcessingError, match="KeyError"):
        run_isolated(bug, limits=QUICK)
