"""Memory housekeeping: hands the C allocator's free memory back to the operating system.

glibc's ``malloc`` keeps memory that was freed in the middle of its heap (SQLite's page cache of
a closed connection, the buffers of a client that went away) for later use, so the process's
resident size stays at its high-water mark.  :func:`release_free_memory` asks it to return
whole free pages (``malloc_trim(0)``); the trimmer actor does that every ``interval`` seconds,
so resident memory follows what is in use.

Large blocks are the other half.  glibc serves a block of 128 KiB or more with its own ``mmap``
and unmaps it when freed, but by default it raises that threshold to the size of each such block
freed (up to 32 MiB), so after the first few the big blocks come from the heap: the table of a
set or dict with 100,000 keys (4 MiB), rebuilt now and then as keys churn, then leaves 4 MiB of
free heap behind, resident until the next trim.  :func:`pin_mmap_threshold` keeps the threshold
at 128 KiB (``mallopt(M_MMAP_THRESHOLD)``), which also turns that adjustment off.  The trimmer
does it when it starts.  Where the C library is not glibc, both do nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable

import trio

from supervision import ActorContext


#: glibc's ``mallopt`` parameter number for the mmap threshold (``<malloc.h>``).
_M_MMAP_THRESHOLD = -3
#: Blocks this large or larger get their own mapping (glibc's initial threshold).
MMAP_THRESHOLD = 128 * 1024


@functools.cache
def _libc_function(name: str, argtypes: tuple[type, ...]) -> Callable[..., int] | None:
    """A glibc allocator function (returning int), or None where the C library has none."""
    library = ctypes.util.find_library("c")
    try:
        function = getattr(ctypes.CDLL(library), name, None) if library else None
    except OSError:
        return None
    if function is None:
        return None
    function.argtypes = list(argtypes)
    function.restype = ctypes.c_int
    return function  # type: ignore[no-any-return]


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
    trim = _libc_function("malloc_trim", (ctypes.c_size_t,))
    return None if trim is None else bool(trim(0))


def pin_mmap_threshold(threshold: int = MMAP_THRESHOLD) -> bool | None:
    """``mallopt(M_MMAP_THRESHOLD, threshold)`` for this process: blocks of ``threshold`` bytes
    or more are mapped on their own and unmapped when freed, whatever was freed before.  True if
    glibc took it, None where there is no ``mallopt`` (not glibc)."""
    mallopt = _libc_function("mallopt", (ctypes.c_int, ctypes.c_int))
    return None if mallopt is None else bool(mallopt(_M_MMAP_THRESHOLD, threshold))


def memory_trimmer(interval: float, release: Callable[[], bool | None] = release_free_memory,  # noqa: ANN201 - an actor body
                   pin: Callable[[], bool | None] = pin_mmap_threshold):
    """An actor that calls ``pin()`` once when it starts, then ``release()`` every ``interval``
    seconds, in the trio thread (a trim that gave back 75 MB of a 150 MB heap took 5 ms here;
    one with nothing to give, 0.03 ms).

    Cancellation: it holds no state; a stop request ends it at once.  Errors: none expected
    (``release`` does not raise); if there is no ``malloc_trim`` the actor just waits.
    """

    async def run(ctx: ActorContext, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        if pin() is False:
            ctx.log.warning("glibc refused mallopt(M_MMAP_THRESHOLD): large blocks may stay in the heap")
        task_status.started()
        with ctx.stop_scope():
            while True:
                await trio.sleep(interval)
                result = release()
                if result is None:
                    ctx.log.debug("no malloc_trim in this C library: nothing to do")
                    await trio.sleep_forever()

    return run


__all__ = ["MMAP_THRESHOLD", "memory_trimmer", "pin_mmap_threshold", "release_free_memory", "resident_memory"]
