"""A local append-only journal of rows not yet in the database.

One JSON object per line: the row's fields, ``"t"`` (its table) and ``"at"`` (when it was
received, epoch seconds).  Lines are appended in the order rows were received and replayed in
the same order, from a read offset kept in memory; once the whole file is replayed it is
removed.  Appends are flushed and fsynced before :meth:`Journal.append` returns.

A line cut short by a crash (the file does not end with a newline) is terminated before the
next append, and lines that do not parse are skipped with a warning on replay.

File I/O runs on worker threads; operations are serialized by a lock, so an append never
interleaves with a replay read or the removal.  All methods must be called from one trio run.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import attrs
import orjson
import trio
from loguru import logger

from ._rows import Row, row_from_json, row_to_json


@attrs.frozen
class JournalChunk:
    """Rows read from the journal, to be acknowledged with :meth:`Journal.advance`."""

    rows: list[Row]
    #: Receive time of the first and last row (epoch seconds), None if unknown.
    first_at: float | None
    last_at: float | None
    start: int
    end: int
    skipped: int = 0


class Journal:
    """The journal at ``path`` (it need not exist yet)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = trio.Lock()
        self._offset = 0
        self._scanned = False
        #: Rows appended and not yet replayed (lines, after :meth:`scan`).
        self.rows = 0
        #: Size of the file in bytes (0 when it does not exist).
        self.size = 0
        #: Receive time of the oldest row not yet replayed, if known.
        self.oldest_at: float | None = None
        #: Lines skipped because they did not parse.
        self.corrupt_lines = 0

    @property
    def pending(self) -> bool:
        """Rows are waiting to be replayed."""
        return self.size > self._offset

    async def scan(self) -> None:
        """Count the rows of a journal left by an earlier run (once; appends keep count after)."""
        async with self._lock:
            if self._scanned:
                return

            def count() -> tuple[int, int, float | None]:
                try:
                    with self.path.open("rb") as f:
                        first = f.readline()
                        lines = (1 if first.strip() else 0) + sum(1 for line in f if line.strip())
                        size = f.tell()
                except FileNotFoundError:
                    return 0, 0, None
                try:
                    first_at = orjson.loads(first).get("at")
                except (orjson.JSONDecodeError, AttributeError):
                    first_at = None
                return lines, size, first_at

            lines, size, first_at = await trio.to_thread.run_sync(count)
            self.rows, self.size, self.oldest_at = lines, size, first_at
            self._offset = 0
            self._scanned = True

    async def append(self, rows: Sequence[tuple[Row, float]]) -> int:
        """Append ``(row, received_at)`` pairs durably; returns the bytes written.

        Cancellation: the write completes (it runs on a thread) before a cancellation is
        delivered, so either every row is in the file or, if the process dies meanwhile, the
        tail is cut short at a line boundary or mid-line (skipped on replay).
        """
        if not rows:
            return 0
        await self.scan()
        data = b"".join(orjson.dumps({**row_to_json(row), "at": at}) + b"\n" for row, at in rows)

        def write() -> int:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a+b") as f:
                end = f.seek(0, os.SEEK_END)
                prefix = b""
                if end > 0:
                    f.seek(end - 1)
                    if f.read(1) != b"\n":
                        prefix = b"\n"  # terminate a line cut short by a crash
                f.write(prefix + data)
                f.flush()
                os.fsync(f.fileno())
                return f.tell()

        async with self._lock:
            size = await trio.to_thread.run_sync(write)
            written = size - self.size
            self.size = size
            if self.rows == 0:
                self.oldest_at = rows[0][1]
            self.rows += len(rows)
        return written

    async def read(self, max_rows: int) -> JournalChunk:
        """Up to ``max_rows`` rows from the replay offset (an empty chunk at the end)."""
        await self.scan()
        async with self._lock:
            start = self._offset

            def read() -> JournalChunk:
                rows: list[Row] = []
                first_at = last_at = None
                skipped = 0
                try:
                    f = self.path.open("rb")
                except FileNotFoundError:
                    return JournalChunk([], None, None, start, start)
                with f:
                    f.seek(start)
                    position = start
                    while len(rows) < max_rows:
                        line = f.readline()
                        if not line:
                            break
                        position += len(line)
                        if not line.strip():
                            continue
                        try:
                            data = orjson.loads(line)
                            row = row_from_json(data)
                        except Exception as exc:  # noqa: BLE001 - a damaged line must not stop the replay
                            skipped += 1
                            logger.warning("journal {path}: skipping a line that does not parse ({err}): {line!r:.200}",
                                           path=str(self.path), err=exc, line=line)
                            continue
                        at = data.get("at")
                        if first_at is None:
                            first_at = at
                        last_at = at
                        rows.append(row)
                    return JournalChunk(rows, first_at, last_at, start, position, skipped)

            return await trio.to_thread.run_sync(read)

    def advance(self, chunk: JournalChunk) -> None:
        """Mark ``chunk`` as written to the database."""
        if chunk.start != self._offset:
            return  # stale (the journal was reset meanwhile)
        self._offset = chunk.end
        self.rows = max(0, self.rows - len(chunk.rows) - chunk.skipped)
        self.corrupt_lines += chunk.skipped
        self.oldest_at = chunk.last_at if self.rows else None

    async def remove_if_replayed(self) -> bool:
        """Remove the file if every row in it was replayed; True if it is gone."""
        async with self._lock:
            if self._offset < self.size:
                return False

            def remove() -> None:
                self.path.unlink(missing_ok=True)

            await trio.to_thread.run_sync(remove)
            self._offset = self.size = self.rows = 0
            self.oldest_at = None
            return True

    async def compact(self) -> None:
        """Drop the replayed head of the file (atomically), so a later run does not replay it."""
        async with self._lock:
            if self._offset == 0:
                return
            offset = self._offset

            def rewrite() -> int:
                tmp = self.path.with_name(self.path.name + ".tmp")
                with self.path.open("rb") as src, tmp.open("wb") as dst:
                    src.seek(offset)
                    while block := src.read(1 << 20):
                        dst.write(block)
                    dst.flush()
                    os.fsync(dst.fileno())
                    size = dst.tell()
                os.replace(tmp, self.path)
                return size

            self.size = await trio.to_thread.run_sync(rewrite)
            self._offset = 0
