"""Recorder actor: writes every raw upstream frame and REST body to a recording file."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import attrs
import trio

from protocols import recording
from supervision import ActorContext, Inbox


@attrs.frozen(slots=True)
class _Line:
    data: bytes


class Recorder:
    """The tap feed actors call for each raw frame (``await recorder.frame("rtds", text)``).

    Lines go through the recorder actor's inbox (bounded: a slow disk slows the feeds rather
    than losing lines) and are written in arrival order with their wall-clock arrival time.
    """

    def __init__(self, path: str | Path, inbox: Inbox[_Line], *, wall_clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self.inbox = inbox
        self.wall_clock = wall_clock
        self.lines_total = 0
        self.bytes_total = 0

    async def frame(self, feed: str, text: str) -> None:
        await self.inbox.send_channel.send(_Line(recording.encode_frame(self.wall_clock(), feed, text)))

    async def response(self, feed: str, request: str, status: int, body: str) -> None:
        await self.inbox.send_channel.send(
            _Line(recording.encode_response(self.wall_clock(), feed, request, status, body)))

    def actor(self) -> Callable[..., object]:
        """The actor body: opens the file (appending a header the first time), writes lines.

        Cancellation: lines already written are flushed on exit; the file is closed.
        Errors: an unwritable file fails the actor (restart with backoff); a restart appends.
        """
        recorder = self
        started = False

        async def run(ctx: ActorContext, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            nonlocal started
            mode_new = not started
            out = recording.open_for_writing(recorder.path) if mode_new else _reopen(recorder.path)
            try:
                if mode_new:
                    out.write(recording.encode_header(recorder.wall_clock()))
                    started = True
                    ctx.log.info("recording upstream frames to {path}", path=str(recorder.path))
                task_status.started()
                assert ctx.inbox is not None
                while True:
                    try:
                        batch = await ctx.inbox.receive_batch(512, 0.2)
                    except trio.EndOfChannel:
                        break
                    for line in batch:
                        out.write(line.data)
                        recorder.lines_total += 1
                        recorder.bytes_total += len(line.data)
                    out.flush()
                ctx.inbox.ack()
            finally:
                out.close()

        return run


def _reopen(path: Path):  # noqa: ANN202
    import gzip

    if str(path).endswith(".gz"):
        return gzip.open(path, "ab")  # a new gzip member: readers see one stream
    return open(path, "ab")
