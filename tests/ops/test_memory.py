"""The memory trimmer: its schedule under MockClock, and that malloc_trim and the pinned mmap
threshold really give memory back."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
import trio
import trio.testing

from actors.memory import MMAP_THRESHOLD, memory_trimmer, release_free_memory, resident_memory
from supervision import ChildSpec, SupervisorSpec, run_supervisor
from tests._logs import capture_logs


async def _run_for(seconds: float, child: ChildSpec) -> None:
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(functools.partial(run_supervisor, SupervisorSpec(), [child], stop=stop))
        await trio.sleep(seconds)
        stop.set()


async def test_it_pins_the_threshold_then_trims_every_interval(autojump_clock: trio.testing.MockClock) -> None:
    calls: list[tuple[str, float]] = []

    def release() -> bool:
        calls.append(("trim", trio.current_time()))
        return True

    def pin() -> bool:
        calls.append(("pin", trio.current_time()))
        return True

    await _run_for(95, ChildSpec(id="memory", run=memory_trimmer(30, release, pin), shutdown=0))
    assert calls == [("pin", 0), ("trim", 30), ("trim", 60), ("trim", 90)]


async def test_a_refused_pin_is_logged_and_trimming_goes_on(autojump_clock: trio.testing.MockClock) -> None:
    calls: list[float] = []

    def release() -> bool:
        calls.append(trio.current_time())
        return True

    with capture_logs("WARNING") as records:
        await _run_for(65, ChildSpec(id="memory", run=memory_trimmer(30, release, lambda: False), shutdown=0))
    assert calls == [30, 60]
    assert [r["message"] for r in records] == [
        "glibc refused mallopt(M_MMAP_THRESHOLD): large blocks may stay in the heap"]


async def test_without_malloc_trim_it_asks_once_then_waits(autojump_clock: trio.testing.MockClock) -> None:
    calls: list[float] = []

    def release() -> None:
        calls.append(trio.current_time())

    await _run_for(500, ChildSpec(id="memory", run=memory_trimmer(30, release, lambda: None), shutdown=0))
    assert calls == [30]


def _glibc_only() -> None:
    """glibc only: elsewhere the trimmer does nothing; in CI (Debian) a missing glibc fails."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        if os.environ.get("CI"):
            pytest.fail("CI runs on glibc (Debian): malloc_trim and mallopt must be there")
        pytest.skip("glibc only")


def test_release_gives_freed_heap_memory_back() -> None:
    """64 MiB in 4 KiB blocks (under the mmap threshold: in the heap), all freed but one block in
    a hundred, which keeps glibc from trimming the heap's top by itself."""
    _glibc_only()
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


#: In a fresh interpreter: a 4 MiB block mapped and freed (glibc then raises its threshold to
#: 4 MiB unless it is pinned), another one filled and freed; prints what that left resident.
_BIG_BLOCK_SCRIPT = """
import ctypes, ctypes.util, sys
from actors.memory import pin_mmap_threshold, resident_memory
if sys.argv[1] == "pinned":
    assert pin_mmap_threshold() is True
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
libc.free(libc.malloc(4 << 20))
before = resident_memory()[0]
block = libc.malloc(4 << 20)
libc.memset(block, 1, 4 << 20)
libc.free(block)
print(resident_memory()[0] - before)
"""


def _left_resident(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", _BIG_BLOCK_SCRIPT, mode], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[2], timeout=60, check=True)
    return int(done.stdout)


def test_pinned_threshold_unmaps_a_big_block_when_it_is_freed() -> None:
    """Unpinned, glibc serves the second 4 MiB block from the heap and keeps it resident after
    ``free`` (the control: this is what the pin is for); pinned, it is unmapped at once."""
    _glibc_only()
    assert MMAP_THRESHOLD < 4 << 20
    assert _left_resident("default") >= 3 << 20
    assert _left_resident("pinned") < 1 << 20


def test_resident_memory_reads_proc_status(tmp_path: Path) -> None:
    status = tmp_path / "status"
    status.write_text("Name:\tpython\nVmHWM:\t  150000 kB\nVmRSS:\t  120000 kB\nThreads:\t3\n")
    assert resident_memory(str(status)) == (120000 * 1024, 150000 * 1024)
    assert resident_memory(str(tmp_path / "missing")) == (None, None)
    status.write_text("VmRSS:\tgarbage kB\n")
    assert resident_memory(str(status)) == (None, None)
