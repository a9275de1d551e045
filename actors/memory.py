"""Memory housekeeping: hands the C allocator's free memory back to the operating system.

glibc's ``malloc`` keeps memory that was freed in the middle of its heap (SQLite's page cache of
a closed connection, the buffers of a client that went away) for later use, so the process's
resident size stays at its high-water mark.  :func:`release_free_memory` asks it to return
whole free pages (``malloc_trim(0)``); the trimmer actor does that every ``interval`` seconds,
so resident memory follows what is in use.  Where the C library is not glibc, it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable

import trio

from supervision import ActorContext


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        trim = getattr(libc, "malloc_trim", None)
    except OSError:
        return None
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim  # type: ignore[no-any-return]


def resident_memory(status_path: str = "/proc/self/status") -> tuple[int | None, int | None]:
    """This process's resident and peak resident size in bytes (``VmRSS``, ``VmHWM``); None for
    what the system does not report (no ``/proc``)."""
    found: dict[str, int] = {}
    try:
        with open(status_path, encoding="ascii", errors="replace") as status:
            for line in status:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    found[key] = int(value.split()[0]) * 1024  # "  123456 kB"
    except (OSError, ValueError, IndexError):
        pass
    return found.get("VmRSS"), found.get("VmHWM")


def release_free_memory() -> bool | None:
    """``malloc_trim(0)``: True if memory went back to the OS, False if none could, None
    where there is no ``malloc_trim`` (not glibc)."""
    trim = _malloc_trim()
    return None if trim is None else bool(trim(0))


def memory_trimmer(interval: float, release: Callable[[], bool | None] = release_free_memory):  # noqa: ANN201 - an actor body
    """An actor that calls ``release()`` every ``interval`` seconds, in the trio thread (a trim
    that gave back 75 MB of a 150 MB heap took 5 ms here; one with nothing to give, 0.03 ms).

    Cancellation: it holds no state; a stop request ends it at once.  Errors: none expected
    (``release`` does not raise); if there is no ``malloc_trim`` the actor just waits.
    """

    async def run(ctx: ActorContext, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        with ctx.stop_scope():
            while True:
                await trio.sleep(interval)
                result = release()
                if result is None:
                    ctx.log.debug("no malloc_trim in this C library: nothing to do")
                    await trio.sleep_forever()

    return run


__all__ = ["memory_trimmer", "release_free_memory", "resident_memory"]
