"""The memory trimmer: its schedule under MockClock, and that malloc_trim really gives memory back."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import platform
from pathlib import Path

import pytest
import trio
import trio.testing

from actors.memory import memory_trimmer, release_free_memory, resident_memory
from supervision import ChildSpec, SupervisorSpec, run_supervisor


async def _run_for(seconds: float, child: ChildSpec) -> None:
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(functools.partial(run_supervisor, SupervisorSpec(), [child], stop=stop))
        await trio.sleep(seconds)
        stop.set()


async def test_it_trims_every_interval(autojump_clock: trio.testing.MockClock) -> None:
    calls: list[float] = []

    def release() -> bool:
        calls.append(trio.current_time())
        return True

    await _run_for(95, ChildSpec(id="memory", run=memory_trimmer(30, release), shutdown=0))
    assert calls == [30, 60, 90]


async def test_without_malloc_trim_it_asks_once_then_waits(autojump_clock: trio.testing.MockClock) -> None:
    calls: list[float] = []

    def release() -> None:
        calls.append(trio.current_time())

    await _run_for(500, ChildSpec(id="memory", run=memory_trimmer(30, release), shutdown=0))
    assert calls == [30]


def test_release_gives_freed_heap_memory_back() -> None:
    """64 MiB in 4 KiB blocks (under the mmap threshold: in the heap), all freed but one block in
    a hundred, which keeps glibc from trimming the heap's top by itself.  glibc only: elsewhere
    the trimmer does nothing; in CI (Debian) a missing glibc fails the test."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        if os.environ.get("CI"):
            pytest.fail("CI runs on glibc (Debian): malloc_trim must be there")
        pytest.skip("glibc only")
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
    blocks = []
    for _ in range(16_384):
        block = libc.malloc(4096)
        libc.memset(block, 1, 4096)  # resident
        blocks.append(block)
    kept = blocks[::100]
    for i, block in enumerate(blocks):
        if i % 100:
            libc.free(block)
    before, _ = resident_memory()
    assert release_free_memory() is True
    after, _ = resident_memory()
    for block in kept:
        libc.free(block)
    assert before is not None and after is not None
    assert before - after > 32 << 20, (before, after)


def test_resident_memory_reads_proc_status(tmp_path: Path) -> None:
    status = tmp_path / "status"
    status.write_text("Name:\tpython\nVmHWM:\t  150000 kB\nVmRSS:\t  120000 kB\nThreads:\t3\n")
    assert resident_memory(str(status)) == (120000 * 1024, 150000 * 1024)
    assert resident_memory(str(tmp_path / "missing")) == (None, None)
    status.write_text("VmRSS:\tgarbage kB\n")
    assert resident_memory(str(status)) == (None, None)
