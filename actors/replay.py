"""Replay actor: runs the service on a recorded feed file instead of the live feeds.

Every recorded frame goes through the same ingest objects (and so the same parsers) as the
live feeds: RTDS frames to :class:`~actors.rtds.RtdsIngest`, CLOB frames to
:class:`~actors.clob.ClobIngest`, Gamma responses to the catalog, Data API responses to the
trade merger.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import attrs
import trio

from protocols.polymarket import MalformedFrame, PageStats, Trade, parse_trades_page
from protocols.recording import RecordedFrame, RecordingReader
from supervision import ActorContext

from .catalog import IngestGammaPage
from .clob import ClobIngest
from .rtds import RtdsIngest


@attrs.define
class ReplayState:
    """Survives restarts, so a killed replay resumes where it stopped."""

    path: Path
    speed: float
    lines_done: int = 0
    frames_total: int = 0
    bad_lines: int = 0
    first_t: float | None = None
    clock_start: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    size_bytes: int = 0
    position_bytes: int = 0
    done: trio.Event = attrs.field(factory=trio.Event)

    @property
    def running(self) -> bool:
        return self.started_at is not None and not self.done.is_set()


class _Progress:
    """A progress line on a terminal (rewritten in place), plain log lines otherwise."""

    def __init__(self, state: ReplayState, stream: TextIO | None, interval: float) -> None:
        self.state = state
        self.stream = stream
        self.tty = bool(stream is not None and getattr(stream, "isatty", lambda: False)())
        self.interval = interval
        self._next = 0.0
        self._t0 = time.monotonic()

    def line(self) -> str:
        s = self.state
        elapsed = max(1e-9, time.monotonic() - self._t0)
        fraction = (s.position_bytes / s.size_bytes) if s.size_bytes else 0.0
        rate = s.frames_total / elapsed
        left = (elapsed / fraction - elapsed) if fraction > 0.001 else float("nan")
        left_text = f"{left:5.0f} s left" if left == left else "   ? s left"
        return f"replay {s.frames_total:>9,} frames  {fraction * 100:5.1f}%  {rate:>9,.0f} frames/s  {left_text}"

    def update(self, log: Any, *, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now < self._next:
            return
        self._next = now + self.interval
        if self.tty and self.stream is not None:
            self.stream.write("\r" + self.line() + ("\n" if final else ""))
            self.stream.flush()
        else:
            log.info(self.line())


def replay_actor(
    state: ReplayState,
    rtds: RtdsIngest,
    clob: ClobIngest,
    catalog: trio.MemorySendChannel[Any],
    trades: trio.MemorySendChannel[Trade],
    *,
    progress_stream: TextIO | None = sys.stderr,
    progress_interval: float = 1.0,
    wall_clock: Callable[[], float] = time.time,
) -> Callable[..., Any]:
    """The replay actor body.

    With ``speed > 0`` the gaps between recorded arrival times are kept, divided by
    ``speed``; ``speed == 0`` replays as fast as the pipeline takes it (backpressure from
    the bounded inboxes paces it).  When the file ends, ``state.done`` is set and the actor
    idles (the service keeps serving clients) until stopped.

    Cancellation and restarts: the number of lines done is kept in ``state``; a restarted
    replay resumes after them (the line in flight is replayed again; the merger drops a
    repeated trade).
    Errors: unreadable lines are counted and skipped; an unreadable file fails the actor.
    """

    async def run(ctx: ActorContext, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        reader = RecordingReader(state.path, skip=state.lines_done)
        reader.open()
        progress = _Progress(state, progress_stream, progress_interval)
        page_stats = PageStats()
        try:
            task_status.started()
            if state.done.is_set():
                await ctx.stopping.wait()
                return
            if state.started_at is None:
                state.started_at = wall_clock()
                ctx.log.info("replaying {path} at {speed}", path=str(state.path),
                             speed="full speed" if state.speed == 0 else f"{state.speed:g}x")
            state.size_bytes = reader.size_bytes
            rtds.health.connected = True
            rtds.health.connected_since = rtds.health.connected_since or wall_clock()
            with ctx.stop_scope():   # a stop request ends the replay at once (resumable: lines_done)
                await _replay_lines(ctx, reader, state, rtds, clob, catalog, trades, progress, page_stats, wall_clock)
            if ctx.stopping.is_set():
                return
            state.bad_lines = reader.bad_lines
            state.position_bytes = state.size_bytes
            state.finished_at = wall_clock()
            progress.update(ctx.log, final=True)
            ctx.log.info("replay finished: {n} frames in {s:.1f} s ({bad} unreadable lines{last})",
                         n=state.frames_total, s=state.finished_at - state.started_at, bad=reader.bad_lines,
                         last=f", last: {reader.last_error}" if reader.last_error else "")
            state.done.set()
            rtds.health.connected = False
            await ctx.stopping.wait()  # idle (the service keeps serving) until asked to stop
        finally:
            reader.close()

    return run


async def _replay_lines(ctx: ActorContext, reader: RecordingReader, state: ReplayState, rtds: RtdsIngest,
                        clob: ClobIngest, catalog: trio.MemorySendChannel[Any], trades: trio.MemorySendChannel[Trade],
                        progress: _Progress, page_stats: PageStats, wall_clock: Callable[[], float]) -> None:
    count = 0
    for line in reader:
        if state.first_t is None:
            state.first_t, state.clock_start = line.t, trio.current_time()
        if state.speed > 0 and state.clock_start is not None:
            await trio.sleep_until(state.clock_start + (line.t - state.first_t) / state.speed)
        else:
            count += 1
            if count % 64 == 0:
                await trio.lowlevel.checkpoint()
        if isinstance(line, RecordedFrame):
            rtds.health.last_frame_at = wall_clock()
            ingest = rtds if line.feed == "rtds" else clob
            ingest.health.frames_total += 1  # as a live connection counts them (/status, /metrics)
            await ingest.handle_text(line.frame, ctx.log)
        elif line.status == 200:
            if line.feed == "gamma":
                done = trio.Event()
                await catalog.send(IngestGammaPage(line.request, line.body, done))
                await done.wait()
            else:
                try:
                    page = parse_trades_page(line.body, stats=page_stats)
                except MalformedFrame:
                    page = []
                for trade in sorted(page, key=lambda t: t.timestamp):
                    await trades.send(trade)
        state.frames_total += 1
        state.lines_done = reader.lines_read
        state.position_bytes = reader.position_bytes()
        progress.update(ctx.log)
