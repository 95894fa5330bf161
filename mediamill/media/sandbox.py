"""Run an untrusted decode in a throwaway process with a wall-clock and a memory limit.

Parsers of meshes, documents and containers can crash, hang or balloon on hostile bytes.
Inside a child process that only costs the child: it is killed at its limit and the caller
gets a ``ValidationError`` naming the reason, while the worker and the batch go on.
"""

from __future__ import annotations

import multiprocessing
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Final, TypeVar

from mediamill.media.errors import ProcessingError, ValidationError

R = TypeVar("R")

MIB: Final = 1024 * 1024
_POLL_SECONDS: Final = 0.05


@dataclass(frozen=True)
class SandboxLimits:
    """How long and how much memory one isolated call may take.

    ``memory_bytes`` caps the child's resident memory (a watchdog samples it); the optional
    ``address_space_bytes`` also sets RLIMIT_AS, which stops a runaway allocation at once
    but must leave room for libraries that reserve large virtual ranges (OpenGL, BLAS).
    """

    seconds: float = 60.0
    memory_bytes: int = 2048 * MIB
    address_space_bytes: int | None = None

    def __post_init__(self) -> None:
        if self.seconds <= 0 or self.memory_bytes <= 0:
            raise ValueError("sandbox limits must be positive")


def resident_bytes(pid: int) -> int:
    """VmRSS of a live process, 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return 0
    return 0


def _child(
    conn: Connection,
    address_space_bytes: int | None,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
) -> None:
    """Runs in the sandbox: report the result or the error, never raise."""
    if address_space_bytes is not None:
        resource.setrlimit(resource.RLIMIT_AS, (address_space_bytes, address_space_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    try:
        message: tuple[Any, ...] = ("ok", fn(*args))
    except ValidationError as error:
        message = ("invalid", error.code, error.message)
    except MemoryError:
        message = ("invalid", "out_of_memory", "the decoder ran out of memory")
    except Exception as error:  # everything else is reported, the parent decides
        message = ("error", f"{type(error).__name__}: {error}")
    conn.send(message)
    conn.close()


def run_isolated(
    fn: Callable[..., R], *args: Any, limits: SandboxLimits, what: str = "the input"
) -> R:
    """``fn(*args)`` in a fresh process; its exceptions come back, its crashes do not.

    ``fn`` and its arguments and result must pickle. ValidationError from ``fn`` is raised
    here as is; a timeout, the memory cap or a dying child become ValidationErrors
    (``timed_out``, ``out_of_memory``, ``decoder_crashed``); any other error becomes a
    ProcessingError.
    """
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(
        target=_child, args=(sender, limits.address_space_bytes, fn, args), daemon=True
    )
    process.start()
    sender.close()
    try:
        message = _wait(process, receiver, limits, what)
    finally:
        receiver.close()
        if process.is_alive():
            process.kill()
        process.join()
    status = message[0]
    if status == "ok":
        return message[1]  # type: ignore[no-any-return]
    if status == "invalid":
        raise ValidationError(message[1], message[2])
    raise ProcessingError(f"decoding {what} failed: {message[1]}")


def _wait(process: Any, receiver: Connection, limits: SandboxLimits, what: str) -> tuple[Any, ...]:
    deadline = time.monotonic() + limits.seconds
    while True:
        if receiver.poll(_POLL_SECONDS):
            try:
                return tuple(receiver.recv())
            except EOFError:
                return _died(process, what)
        if not process.is_alive() and not receiver.poll(0):
            return _died(process, what)
        if resident_bytes(process.pid) > limits.memory_bytes:
            process.kill()
            cap = limits.memory_bytes // MIB
            return ("invalid", "out_of_memory", f"decoding {what} went over {cap} MiB")
        if time.monotonic() > deadline:
            process.kill()
            return (
                "invalid",
                "timed_out",
                f"decoding {what} took longer than {limits.seconds:g} s",
            )


def _died(process: Any, what: str) -> tuple[Any, ...]:
    process.join(1)
    code = process.exitcode
    signal_note = f" (signal {-code})" if code is not None and code < 0 else f" (exit {code})"
    return ("invalid", "decoder_crashed", f"the decoder died on {what}{signal_note}")
