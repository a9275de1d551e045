"""The recorded-feed file format (``run.py --record`` / ``--replay``).

JSON lines, gzip-compressed when the file name ends in ``.gz``. The first line is a header::

    {"format": "polymarket-insights-recording", "version": 1, "started_at": 1760000000.0}

then one line per upstream frame or REST response, in arrival order::

    {"t": 1760000001.25, "feed": "rtds", "frame": "<the raw text frame>"}
    {"t": 1760000001.30, "feed": "clob", "frame": "<the raw text frame>"}
    {"t": 1760000000.10, "feed": "gamma", "request": "/events?limit=100&offset=0", "status": 200, "body": "<raw body>"}
    {"t": 1760000000.20, "feed": "data_api", "request": "/trades?...", "status": 200, "body": "<raw body>"}

``t`` is the wall-clock arrival time in epoch seconds; replay keeps the gaps between
consecutive ``t`` (divided by ``--speed``).  Frames are stored verbatim, so replay runs them
through the same parsers as the live feeds.
"""

from __future__ import annotations

import gzip

from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import attrs
import orjson

FORMAT = "polymarket-insights-recording"
VERSION = 1
FEEDS = ("rtds", "clob", "gamma", "data_api")


class RecordingError(ValueError):
    """The file is not a recording this version can replay (one line for the operator)."""


@attrs.frozen(slots=True)
class RecordedFrame:
    t: float
    feed: str          # "rtds" | "clob"
    frame: str


@attrs.frozen(slots=True)
class RecordedResponse:
    t: float
    feed: str          # "gamma" | "data_api"
    request: str
    status: int
    body: str


Recorded = RecordedFrame | RecordedResponse


def encode_frame(t: float, feed: str, frame: str) -> bytes:
    return orjson.dumps({"t": t, "feed": feed, "frame": frame}) + b"\n"


def encode_response(t: float, feed: str, request: str, status: int, body: str) -> bytes:
    return orjson.dumps({"t": t, "feed": feed, "request": request, "status": status, "body": body}) + b"\n"


def encode_header(started_at: float) -> bytes:
    return orjson.dumps({"format": FORMAT, "version": VERSION, "started_at": started_at}) + b"\n"


def open_for_writing(path: str | Path) -> IO[bytes]:
    """A binary file to append lines to (gzip when the name ends in ``.gz``)."""
    path = Path(path)
    if path.parent and not path.parent.exists():
        raise RecordingError(f"cannot record to {path}: directory {path.parent} does not exist")
    if str(path).endswith(".gz"):
        return gzip.open(path, "wb", compresslevel=5)
    return open(path, "wb")




def decode_line(raw: bytes) -> Recorded:
    """One recorded line; raises :class:`RecordingError` naming what is wrong."""
    try:
        data: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise RecordingError("not JSON") from None
    if not isinstance(data, dict):
        raise RecordingError("not a JSON object")
    feed = data.get("feed")
    t = data.get("t")
    if feed not in FEEDS:
        raise RecordingError(f"unknown feed {feed!r}")
    if not isinstance(t, (int, float)) or isinstance(t, bool):
        raise RecordingError("missing or non-numeric arrival time 't'")
    if feed in ("rtds", "clob"):
        frame = data.get("frame")
        if not isinstance(frame, str):
            raise RecordingError("missing 'frame' text")
        return RecordedFrame(float(t), feed, frame)
    request, status, body = data.get("request"), data.get("status"), data.get("body")
    if not isinstance(request, str) or not isinstance(status, int) or not isinstance(body, str):
        raise RecordingError("a REST line needs 'request' (text), 'status' (number) and 'body' (text)")
    return RecordedResponse(float(t), feed, request, status, body)


@attrs.define
class RecordingReader:
    """Iterates a recording, with the position for progress and resumption.

    ``skip`` lines (after the header) are passed over, so a restarted replay resumes where
    it stopped.  Bad lines are counted in ``bad_lines`` (with the last reason) and skipped.
    """

    path: Path
    skip: int = 0
    lines_read: int = 0
    bad_lines: int = 0
    last_error: str | None = None
    size_bytes: int = 0
    _file: IO[bytes] | None = None
    _raw: IO[bytes] | None = None

    def open(self) -> None:
        if not self.path.is_file():
            raise RecordingError(f"{self.path}: no such file")
        self.size_bytes = self.path.stat().st_size
        self._raw = open(self.path, "rb")
        magic = self._raw.read(2)
        self._raw.seek(0)
        self._file = gzip.GzipFile(fileobj=self._raw, mode="rb") if magic == b"\x1f\x8b" else self._raw
        try:
            header_line = self._file.readline()
        except (OSError, EOFError) as exc:
            raise RecordingError(f"{self.path}: unreadable ({exc})") from None
        try:
            header = orjson.loads(header_line)
        except orjson.JSONDecodeError:
            header = None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise RecordingError(f"{self.path}: not a polymarket-insights recording (bad header line)")
        if header.get("version") != VERSION:
            raise RecordingError(f"{self.path}: recording version {header.get('version')!r}, expected {VERSION}")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        if self._raw is not None and self._raw is not self._file:
            self._raw.close()
        self._file = self._raw = None

    def position_bytes(self) -> int:
        """Bytes of the (possibly compressed) file consumed so far, for progress."""
        return self._raw.tell() if self._raw is not None else 0

    def __iter__(self) -> Iterator[Recorded]:
        assert self._file is not None, "open() first"
        for raw in self._file:
            if not raw.strip():
                continue
            self.lines_read += 1
            if self.lines_read <= self.skip:
                continue
            try:
                yield decode_line(raw)
            except RecordingError as exc:
                self.bad_lines += 1
                self.last_error = f"line {self.lines_read + 1}: {exc}"


def read_recording(path: str | Path) -> list[Recorded]:
    """Every line of a (small) recording, for tests and tools."""
    reader = RecordingReader(Path(path))
    reader.open()
    try:
        return list(reader)
    finally:
        reader.close()


__all__ = [
    "FEEDS", "FORMAT", "VERSION", "Recorded", "RecordedFrame", "RecordedResponse", "RecordingError",
    "RecordingReader", "decode_line", "encode_frame", "encode_header", "encode_response", "open_for_writing",
    "read_recording",
]
