"""Soak under chaos: the whole service on the Nobel sample looped for N minutes, actors killed.

The bench builds its own input. It writes a recording (the ``protocols/recording.py`` format, gzip)
to a temporary directory. The recording holds L copies of ``samples/nobel-peace-prize-2025.jsonl.gz``,
one after the other. In copy k ≥ 1 every trade is a new trade:

* its ``transactionHash`` becomes ``0x`` + sha256(original hash | k). The ``orders_matched`` and
  ``trades`` frames of one trade carry the same hash, so they still merge into one trade. The
  trade identity (``trade_keys``: sha1 of tx, asset, wallet, side, size and price) is therefore new
  in every copy;
* its times move on by k × 13,600 s. That shift applies to the line's ``t``, the payload's
  ``timestamp`` and the envelope's ``timestamp`` (the sample spans 13,581 s).

The Gamma page and the keepalive frames stay as they are, and the Gamma page is repeated in each
copy, as a catalog refresh. The service itself does not loop.

The service is ``run.py --replay FILE --speed X --chaos R --seed S`` in a subprocess, with every
upstream endpoint pointed at 127.0.0.1:9 and SQLite in the temporary directory. That database
already holds ``--seed-rows`` trades (default 500,000: made up, spread over 2,000 markets and
100,000 wallets, dated before the sample), as the database of a service that has run for a
while does; ``--seed-rows 0`` starts from an empty one. ``X`` is chosen so
that each copy takes ``--loop-seconds`` (default 1 s: speed 13,600, about 3,000 frames/s and
1,500 trades/s on average, in bursts), and L so that the replay lasts ``--minutes``.
``WHALE_TRADE_THRESHOLD=1000`` and ``IGNORE_PRICE_THRESHOLD=0.01`` give 95 notable trades (all
of them whales) and 29 broadcast whales per copy. The chaos monkey kills a random running worker
about ``--chaos-per-minute`` times a minute. Client sessions are workers too.

The run compresses time 13,600-fold, so the ring is scaled to the feed as a client's queue is
(``WS_QUEUE_SIZE=100``, below): it holds ``--ring-size`` broadcasts (``WS_RING_SIZE``, default
3,000: about 60 s of this feed). It is full, and the hub's broadcast keys with it, before the
second minute, so the memory rule below compares a steady state with a steady state, as in a
service that has run for a while. With the service's default, ``--ring-size 10000``, the ring
fills until about 3.4 minutes, and that warm-up counts against the rule.

``--clients K`` WebSocket clients run in this process (trio):

* **healthy** clients read as fast as they can. After every (re)connection they send
  ``{"type": "resume", "data": {"since": last_seq}}``. They send it again after a ``lagged``
  notice, and whenever a broadcast arrives with a seq beyond ``last_seq + 1``. They accept
  broadcasts strictly in seq order, one seq after another, and count repeated seqs;
* **slow** clients (``--slow``) behave the same way, but their receive buffer is 4 KiB and
  they sleep 10 ms between reads. Every 5–20 s they stop reading for 2–15 s. The service runs
  with ``WS_QUEUE_SIZE=100`` (about 2 s of this feed), so a stall of a few seconds gets them
  a ``lagged`` notice, and one beyond the 10 s send timeout gets them disconnected. When the
  replay is over they stop stalling, so they can catch up.

Each client records the trade ids of the ``whale_trade`` broadcasts it accepts. The expected
whales are computed apart from the service: from the source CSV, with the logic of
``tests/frontend/_client.py``'s ``expected_whales()``, with each copy's hash rewriting applied.
That gives 29 per copy; copy 0 is checked against ``expected_whales()`` itself. The expected
trade rows are the CSV's trades with notional ≥ 1,000, for every copy.

This script samples the service process's ``VmRSS`` and open descriptors (``/proc/<pid>``)
every second, and its ``GET /status`` every 2 s. It reads the chaos kills and the crashes from
the service's JSON log. When the replay is over, it waits until the pipeline is drained and
the clients have caught up. It then closes the clients and stops the service with SIGTERM. Once
the service has flushed and exited, the script counts the rows in the SQLite file.

It prints Markdown tables and PASS/FAIL verdicts:

* every healthy client has exactly the expected whales, each once;
* the trade rows stored are exactly the expected trade ids (no duplicates, none missing), and
  the seeded rows are all still there;
* the resident memory is flat: the last minute's is within 10 % of the second minute's (runs
  of 3 minutes or more). A minute's figure is the median of its one-second samples; the
  samples at the minute marks and the peak are printed beside it;
* the descriptors other than client connections are at most 2 more at the end than at the start;
* no crash other than the chaos kills, no supervisor gave up, and the service exits 0.

The exit status is 1 when any verdict fails. No timings are asserted. This is not part of the
test suite.

Usage::

    .venv/bin/python bench/bench_soak.py [--minutes N] [--clients K] [--slow S]
        [--chaos-per-minute R] [--loop-seconds T] [--seed-rows N] [--ring-size N] [--seed S] [--quick]
        [--keep DIR]

``--quick`` is a 1-minute run with samples every 10 s instead of every minute. ``--keep DIR``
keeps the recording, the database and the service's log in ``DIR``.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import math
import os
import random
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import OFFLINE_ENV, ROOT, machine_line, proc_status, table  # noqa: E402

import trio  # noqa: E402
from trio_websocket import ConnectionClosed, HandshakeError, wrap_client_stream  # noqa: E402

from config import DatabaseUrl  # noqa: E402
from protocols.polymarket import trade_from_activity  # noqa: E402
from storage import TradeRow, WriteBatch, open_store  # noqa: E402
from tests.frontend._client import NOBEL_CSV, SAMPLE, expected_whales  # noqa: E402

#: Recorded seconds between the starts of two copies (the sample spans 13,581.3 s).
PERIOD = 13_600.0
WHALE, KEEP, IGNORE = 1_000.0, 1_000.0, 0.01
SERVICE_ENV = {
    "WHALE_TRADE_THRESHOLD": "1000", "TRADE_NOTIONAL_THRESHOLD": "1000", "IGNORE_PRICE_THRESHOLD": "0.01",
    "LOG_FORMAT": "json", "LOG_LEVEL": "info",
    # 100 broadcasts (about 2 s of this feed) queued per client before it is lagged: a slow
    # client's stall of a few seconds gets it a `lagged` notice before the 10 s send timeout
    "WS_QUEUE_SIZE": "100",
}


# ----------------------------------------------------------------------------- the looped input


def loop_tx(tx: str, k: int) -> str:
    """Copy ``k``'s transaction hash for an original one (copy 0 keeps the original)."""
    if k == 0 or not tx:
        return tx
    return "0x" + hashlib.sha256(f"{tx.lower()}|soak-loop-{k}".encode()).hexdigest()


def build_recording(path: Path, loops: int) -> dict[str, int]:
    """``loops`` copies of the sample, copy k with new trade identities and times + k × PERIOD."""
    with gzip.open(SAMPLE, "rb") as fh:
        raw = [line for line in fh.read().splitlines() if line.strip()]
    header, lines = raw[0], [orjson.loads(line) for line in raw[1:]]
    counts: Counter[str] = Counter()
    with gzip.open(path, "wb", compresslevel=1) as out:
        out.write(header + b"\n")
        for k in range(loops):
            shift = k * PERIOD
            chunk = []
            for rec in lines:
                rec = dict(rec)
                rec["t"] = rec["t"] + shift
                counts[rec["feed"]] += 1
                if rec["feed"] == "rtds" and rec["frame"].startswith("{"):
                    counts["trade frames"] += 1
                    if k:
                        envelope = orjson.loads(rec["frame"])
                        payload = envelope["payload"]
                        payload["transactionHash"] = loop_tx(payload["transactionHash"], k)
                        payload["timestamp"] = payload["timestamp"] + int(shift)
                        envelope["timestamp"] = envelope["timestamp"] + int(shift * 1000)
                        rec["frame"] = orjson.dumps(envelope).decode()
                chunk.append(orjson.dumps(rec))
            out.write(b"\n".join(chunk) + b"\n")
    counts["lines"] = loops * len(lines)
    return dict(counts)


def expected_ids(loops: int) -> tuple[list[str], set[str], int]:
    """(whale trade ids a client must receive, in replay order; trade ids the database must hold;
    whales per copy), from the CSV alone, the way ``tests/frontend/_client.py`` does it."""
    rows: dict[tuple[str, ...], dict[str, str]] = {}
    with open(NOBEL_CSV, newline="") as fh:
        for row in csv.DictReader(fh):
            rows[tuple(row.values())] = row
    ordered = sorted(rows.values(), key=lambda r: (int(r["timestamp"]), r["transactionHash"], r["asset"],
                                                   r["proxyWallet"]))

    def trade_id(r: dict[str, str], k: int) -> str:
        return trade_from_activity({**r, "transactionHash": loop_tx(r["transactionHash"], k),
                                    "price": float(r["price"]), "size": float(r["size"]),
                                    "timestamp": int(r["timestamp"]) + int(k * PERIOD),
                                    "outcomeIndex": int(r["outcomeIndex"])}, "data_api").trade_id

    whale_rows, kept_rows = [], []
    for r in ordered:
        size, price = float(r["size"]), float(r["price"])
        notional = size * price
        if notional >= KEEP:
            kept_rows.append(r)
            if notional >= max(WHALE, KEEP) and IGNORE < price < 1 - IGNORE:
                whale_rows.append(r)
    first = [trade_id(r, 0) for r in whale_rows]
    reference = expected_whales(WHALE, KEEP, IGNORE)
    if first != reference:
        raise SystemExit("the bench's whale computation disagrees with tests/frontend/_client.py's expected_whales()")
    whales = [trade_id(r, k) for k in range(loops) for r in whale_rows]
    kept = {trade_id(r, k) for k in range(loops) for r in kept_rows}
    if len(set(whales)) != len(whales) or len(kept) != loops * len(kept_rows):
        raise SystemExit("rewritten copies collide: trade ids are not distinct across copies")
    return whales, kept, len(whale_rows)


# ----------------------------------------------------------------------------- the service process


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fd_count(pid: int) -> dict[str, int]:
    """Open descriptors of a process by kind (socket, file, pipe, other) and in all."""
    kinds: Counter[str] = Counter()
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return {"total": 0}
    for name in names:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            continue
        if target.startswith("socket:"):
            kinds["socket"] += 1
        elif target.startswith("pipe:"):
            kinds["pipe"] += 1
        elif target.startswith("/"):
            kinds["file"] += 1
        else:
            kinds["other"] += 1
    kinds["total"] = sum(kinds.values())
    return dict(kinds)


def get_status(port: int, timeout: float = 5.0) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=timeout) as resp:
            return orjson.loads(resp.read())
    except (OSError, ValueError):
        return None


class LogScan:
    """Reads the service's JSON log as it grows: chaos kills, crashes, gave-ups, other errors."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.kills: Counter[str] = Counter()
        self.crashes: Counter[str] = Counter()          # crash lines caused by chaos kills, by path
        self.other_crashes: list[dict[str, Any]] = []   # crashes not caused by chaos (bugs)
        self.gave_up: list[str] = []
        self.errors: list[dict[str, Any]] = []          # ERROR/CRITICAL lines that are not crashes
        self.warnings: Counter[str] = Counter()         # WARNING messages (chaos lines left out)
        self.restarting = 0
        self.lines = 0

    def scan(self) -> None:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except OSError:
            return
        end = data.rfind(b"\n")
        if end < 0:
            return
        self.offset += end + 1
        for raw in data[:end].splitlines():
            self.lines += 1
            try:
                rec = orjson.loads(raw)
            except orjson.JSONDecodeError:
                self.errors.append({"message": raw.decode(errors="replace")[:300]})
                continue
            msg, level = rec.get("message", ""), rec.get("level", "")
            if msg.startswith("chaos: killed "):
                self.kills[msg[len("chaos: killed "):]] += 1
            elif " crashed: " in msg and msg.startswith(("actor ", "temporary actor ")):
                path = msg.split(" crashed: ", 1)[0].rsplit(" ", 1)[-1]
                if ": chaos" in msg:
                    self.crashes[_group(path)] += 1
                else:
                    self.other_crashes.append(rec)
            elif "gives up" in msg or "gave up" in msg:
                self.gave_up.append(msg)
            elif msg.startswith("restarting "):
                self.restarting += 1
            elif level in ("ERROR", "CRITICAL"):
                self.errors.append(rec)
            elif level == "WARNING" and not msg.startswith("chaos mode"):
                self.warnings[msg[:90]] += 1

    @property
    def kills_total(self) -> int:
        return sum(self.kills.values())


def _leaf(exc: BaseException) -> BaseException:
    """The first exception inside (nested) exception groups."""
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc


def _group(path: str) -> str:
    return "root/frontend/sessions/*" if path.startswith("root/frontend/sessions/") else path


# ----------------------------------------------------------------------------- the clients


class _Timeout(Exception):
    """A connection attempt that took too long (the text says which step)."""


class SoakClient:
    """One WebSocket client that reconnects and resumes until told to stop."""

    def __init__(self, index: int, slow: bool, rng: random.Random) -> None:
        self.name = f"{'slow' if slow else 'healthy'}-{index}"
        self.slow = slow
        self.rng = rng
        self.last_seq = 0
        self.whales: list[str] = []
        self.connections = 0
        self.connected = False
        self.closes: Counter[str] = Counter()
        self.lagged = 0
        self.missed = 0
        self.resume_gaps = 0
        self.lost_in_gaps = 0
        self.seq_repeats = 0
        self.seq_ahead = 0
        self.resumes = 0
        self.errors: Counter[str] = Counter()
        self.stalls = 0
        self.stalled_s = 0.0
        self.finishing = False      # slow clients stop stalling (the replay is over)
        self.stop = False
        self._next_stall = 0.0
        self.pending_resume = -1    # the last_seq of the last resume sent on this connection

    async def run(self, port: int) -> None:
        self._next_stall = trio.current_time() + self.rng.uniform(5, 20)
        while not self.stop:
            try:
                try:
                    await self._session(port)
                except BaseExceptionGroup as group:
                    raise _leaf(group) from None
            except ConnectionClosed as exc:
                reason = exc.reason
                self.closes[f"{reason.code} {reason.reason or reason.name}".strip()] += 1
            except HandshakeError as exc:
                self.closes[f"handshake: {type(exc).__name__}"] += 1
            except _Timeout as exc:
                self.closes[str(exc)] += 1
            except (OSError, trio.BrokenResourceError) as exc:
                self.closes[type(exc).__name__] += 1
            finally:
                self.connected = False
            if not self.stop:
                await trio.sleep(self.rng.uniform(0.05, 0.3))

    async def _session(self, port: int) -> None:
        sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if self.slow:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        try:
            with trio.fail_after(5):
                await sock.connect(("127.0.0.1", port))
        except trio.TooSlowError:
            sock.close()
            raise _Timeout("connect timeout") from None
        except BaseException:
            sock.close()
            raise
        stream = trio.SocketStream(sock)
        try:
            async with trio.open_nursery() as nursery:
                # (trio-websocket 0.12.2's client waits forever when the server closes the TCP
                # connection before answering the handshake, as it does while the sessions
                # supervisor restarts: hence the timeout)
                try:
                    with trio.fail_after(5):
                        ws = await wrap_client_stream(nursery, stream, f"127.0.0.1:{port}", "/",
                                                      message_queue_size=1 if self.slow else 64)
                except trio.TooSlowError:
                    raise _Timeout("no handshake answer in 5 s") from None
                self.connections += 1
                self.connected = True
                try:
                    await self._read(ws)
                finally:
                    with trio.move_on_after(2) as scope:
                        scope.shield = True
                        await ws.aclose()
                    nursery.cancel_scope.cancel()
        finally:
            await trio.aclose_forcefully(stream)

    async def _resume(self, ws: Any) -> None:
        self.resumes += 1
        self.pending_resume = self.last_seq
        await ws.send_message(orjson.dumps({"type": "resume", "data": {"since": self.last_seq}}).decode())

    async def _read(self, ws: Any) -> None:
        await self._resume(ws)
        while not self.stop:
            if self.slow:
                now = trio.current_time()
                if not self.finishing and now >= self._next_stall:
                    stall = self.rng.uniform(2, 15)
                    self.stalls += 1
                    self.stalled_s += stall
                    with trio.move_on_after(stall):
                        while not self.finishing and not self.stop:
                            await trio.sleep(0.2)
                    self._next_stall = trio.current_time() + self.rng.uniform(5, 20)
                else:
                    await trio.sleep(0.01 if not self.finishing else 0)
            text = await ws.get_message()
            message = orjson.loads(text)
            kind = message.get("type")
            seq = message.get("seq")
            if seq is not None:
                if seq <= self.last_seq:
                    self.seq_repeats += 1
                elif seq == self.last_seq + 1:
                    self.last_seq = seq
                    if kind == "whale_trade":
                        self.whales.append(message["data"]["trade_id"])
                else:
                    self.seq_ahead += 1
                    if self.pending_resume != self.last_seq:
                        await self._resume(ws)
            elif kind == "lagged":
                self.lagged += 1
                self.missed += int(message["data"].get("missed", 0))
                await self._resume(ws)
            elif kind == "error":
                code = message["data"].get("code", "?")
                self.errors[code] += 1
                if code == "resume_gap":
                    oldest = int(message["data"]["oldest_seq"])
                    self.resume_gaps += 1
                    self.lost_in_gaps += max(0, oldest - 1 - self.last_seq)
                    self.last_seq = max(self.last_seq, oldest - 1)
                    self.pending_resume = self.last_seq


# ----------------------------------------------------------------------------- the run


class Run:
    def __init__(self, args: argparse.Namespace, work: Path, recording: Path, speed: float) -> None:
        self.args = args
        self.work = work
        self.recording = recording
        self.speed = speed
        self.samples: list[dict[str, Any]] = []       # every second: t, rss, fds
        self.statuses: list[tuple[float, dict[str, Any]]] = []
        self.marks: list[dict[str, Any]] = []         # one per sample interval
        self.clients: list[SoakClient] = []
        self.proc: subprocess.Popen[bytes] | None = None
        self.t0 = 0.0
        self.phase = "starting"
        self.timeline: dict[str, float] = {}

    def sample(self) -> dict[str, Any]:
        assert self.proc is not None
        status = proc_status(self.proc.pid)
        s = {"t": time.monotonic() - self.t0, "rss_kb": status["VmRSS"], "hwm_kb": status["VmHWM"],
             "fds": fd_count(self.proc.pid)}
        self.samples.append(s)
        return s

    async def status(self) -> dict[str, Any] | None:
        doc = await trio.to_thread.run_sync(get_status, self.http_port)
        if doc is not None:
            self.statuses.append((time.monotonic() - self.t0, doc))
        return doc

    async def monitor(self, log: LogScan, stop: trio.Event) -> None:
        """Every second /proc, every 2 s /status and the log, and one mark per interval."""
        interval = self.args.sample_seconds
        next_mark = interval
        tick = 0
        while not stop.is_set():
            s = self.sample()
            if tick % 2 == 0:
                await self.status()
                log.scan()
            tick += 1
            if s["t"] >= next_mark:
                doc = self.statuses[-1][1] if self.statuses else {}
                self.marks.append(self.mark(s, doc, log))
                m = self.marks[-1]
                print(f"  {m['t']:6.0f} s  RSS {m['rss_mb']:6.1f} MB (median {m['rss_median_mb']:6.1f})  "
                      f"fds {m['fds']:4d}  frames {m['frames']:>10,}  "
                      f"kills {m['kills']:4d}  restarts {m['restarts']:4d}  seq {m['seq']:>8,}  clients "
                      f"{m['clients']:3d}  ({self.phase})", file=sys.stderr, flush=True)
                next_mark += interval
            with trio.move_on_after(1):
                await stop.wait()

    def mark(self, s: dict[str, Any], doc: dict[str, Any], log: LogScan) -> dict[str, Any]:
        replay = doc.get("replay") or {}
        since = self.marks[-1]["t"] if self.marks else 0.0
        interval = [x["rss_kb"] / 1024 for x in self.samples if since < x["t"] <= s["t"]]
        return {"t": s["t"], "rss_mb": s["rss_kb"] / 1024, "rss_min_mb": min(interval),
                "rss_median_mb": statistics.median(interval), "rss_max_mb": max(interval),
                "fds": s["fds"].get("total", 0),
                "frames": replay.get("frames_total", 0), "kills": log.kills_total,
                "restarts": sum(a["restarts"] for a in doc.get("actors", [])),
                "seq": (doc.get("hub") or {}).get("seq", 0), "clients": (doc.get("hub") or {}).get("clients", 0),
                "phase": self.phase}

    async def wait_ready(self, timeout: float = 60) -> None:
        assert self.proc is not None
        with trio.fail_after(timeout):
            while True:
                if self.proc.poll() is not None:
                    raise SystemExit(f"the service exited with status {self.proc.returncode} at start-up; "
                                     f"log: {self.work / 'service.log'}")
                doc = await self.status()
                if doc is not None and doc["service"].get("ws_port"):
                    return
                await trio.sleep(0.2)

    async def drained(self, quiet: float = 3.0, timeout: float = 300) -> bool:
        """Until the replay is over, every inbox and the DB backlog are empty, and the hub's seq
        has not moved for ``quiet`` s (longer than the market-update throttle)."""
        seen, since = -1, trio.current_time()
        with trio.move_on_after(timeout):
            while True:
                doc = await self.status()
                if doc is not None:
                    busy = (not (doc["replay"] or {}).get("finished")
                            or any(a.get("inbox_depth") for a in doc["actors"])
                            or doc["storage"]["backlog_rows"])
                    if busy or doc["hub"]["seq"] != seen:
                        seen, since = doc["hub"]["seq"], trio.current_time()
                    elif trio.current_time() - since >= quiet:
                        return True
                await trio.sleep(0.5)
        return False

    async def caught_up(self, seq: int, timeout: float) -> bool:
        with trio.move_on_after(timeout):
            while any(c.last_seq < seq for c in self.clients):
                await trio.sleep(0.2)
            return True
        return False

    async def main(self) -> dict[str, Any]:
        args = self.args
        log_path = self.work / "service.log"
        self.ws_port, self.http_port = free_port(), free_port()
        env = {**os.environ, **OFFLINE_ENV, **SERVICE_ENV,
               "WS_SERVER_PORT": str(self.ws_port), "HTTP_PORT": str(self.http_port),
               "WS_RING_SIZE": str(args.ring_size),
               "DATABASE_URL": f"sqlite:///{self.work / 'soak.db'}",
               "DB_JOURNAL_PATH": str(self.work / "soak.journal.jsonl")}
        cmd = [sys.executable, str(ROOT / "run.py"), "--replay", str(self.recording), "--speed", f"{self.speed:g}",
               "--chaos", f"{args.chaos_per_minute:g}", "--seed", str(args.seed)]
        log_file = open(log_path, "wb")
        self.proc = subprocess.Popen(cmd, env=env, cwd=str(self.work), stdin=subprocess.DEVNULL,
                                     stdout=log_file, stderr=subprocess.STDOUT)
        log_file.close()
        log = LogScan(log_path)
        result: dict[str, Any] = {}
        try:
            self.t0 = time.monotonic()
            await self.wait_ready()
            self.timeline["ready"] = time.monotonic() - self.t0
            rng = random.Random(args.seed)
            self.clients = [SoakClient(i, i >= args.clients - args.slow, random.Random(rng.random()))
                            for i in range(args.clients)]
            stop_monitor = trio.Event()
            async with trio.open_nursery() as nursery:
                for client in self.clients:
                    nursery.start_soon(client.run, self.ws_port)
                with trio.move_on_after(15):
                    while sum(c.connected for c in self.clients) < len(self.clients):
                        await trio.sleep(0.05)
                self.phase = "replaying"
                self.timeline["clients connected"] = time.monotonic() - self.t0
                result["start"] = self.sample()
                result["start_status"] = await self.status()
                nursery.start_soon(self.monitor, log, stop_monitor)
                # the replay, then the drain
                ok = await self.drained(timeout=args.minutes * 60 * 3 + 300)
                self.phase = "catching up"
                self.timeline["replay over, pipeline drained"] = time.monotonic() - self.t0
                result["drained"] = ok
                for client in self.clients:
                    client.finishing = True
                doc = await self.status()
                seq = doc["hub"]["seq"] if doc else 0
                result["caught_up"] = await self.caught_up(seq, timeout=120)
                self.timeline["clients caught up"] = time.monotonic() - self.t0
                result["end"] = self.sample()
                result["end_status"] = await self.status()
                log.scan()
                result["kills_at_end"] = Counter(log.kills)
                self.marks.append({**self.mark(result["end"], result["end_status"] or {}, log), "phase": "end"})
                self.phase = "stopping"
                stop_monitor.set()
                for client in self.clients:
                    client.stop = True
                nursery.cancel_scope.cancel()
            result["after_clients"] = self.sample()
            self.proc.send_signal(signal.SIGTERM)
            t_stop = time.monotonic()
            try:
                await trio.to_thread.run_sync(self.proc.wait, 120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            result["stop_seconds"] = time.monotonic() - t_stop
            result["exit_code"] = self.proc.returncode
            self.timeline["service exited"] = time.monotonic() - self.t0
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        log.scan()
        result["log"] = log
        return result


# ----------------------------------------------------------------------------- the database


#: Seeded rows' transaction hashes start with this (their trade ids are hex digests like the
#: soak's own, so that both share the index pages).
SEED_PREFIX = "seed-"


def seed_database(db: Path, rows: int, seed: int) -> float:
    """Write ``rows`` made-up trades into a new database, as a service that has run for a while has.

    Spread over 2,000 markets and 100,000 wallets, dated in the year before the sample, a third
    of them whales. Returns the seconds it took."""
    rng = random.Random(seed)
    markets = ["0x" + hashlib.sha256(f"seed-market-{i}".encode()).hexdigest() for i in range(2_000)]
    wallets = ["0x" + hashlib.sha1(f"seed-wallet-{i}".encode()).hexdigest() for i in range(100_000)]
    start_ts = 1_730_000_000.0

    def row(i: int) -> TradeRow:
        size = round(rng.uniform(10, 20_000), 2)
        price = round(rng.uniform(0.01, 0.99), 3)
        return TradeRow(hashlib.sha1(f"seed-trade-{i}".encode()).hexdigest()[:20], rng.choice(markets),
                        str(rng.getrandbits(64)), "Yes", rng.choice(("BUY", "SELL")), price, size,
                        round(size * price, 2), rng.choice(wallets), f"{SEED_PREFIX}{i}", start_ts + i * 60.0,
                        rng.random() < 1 / 3)

    async def write() -> None:
        async with open_store(DatabaseUrl(kind="sqlite", path=str(db))) as store:
            await store.migrate()
            for first in range(0, rows, 10_000):
                await store.write(WriteBatch(trades=[row(i) for i in range(first, min(rows, first + 10_000))]))

    t = time.monotonic()
    trio.run(write)
    return time.monotonic() - t


def count_rows(db: Path) -> dict[str, Any]:
    """The soak's rows (seeded ones apart: ``seeded`` counts them)."""
    con = sqlite3.connect(str(db))
    try:
        own = f"transaction_hash NOT LIKE '{SEED_PREFIX}%'"
        total, distinct, whales = con.execute(
            f"SELECT COUNT(*), COUNT(DISTINCT trade_id), COALESCE(SUM(is_whale), 0) FROM trades WHERE {own}").fetchone()
        ids = {row[0] for row in con.execute(f"SELECT trade_id FROM trades WHERE {own}")}
        seeded = con.execute(f"SELECT COUNT(*) FROM trades WHERE NOT ({own})").fetchone()[0]
        markets = con.execute("SELECT COUNT(*) FROM markets").fetchone()[0]
    finally:
        con.close()
    return {"rows": total, "distinct": distinct, "whales": whales, "ids": ids, "markets": markets, "seeded": seeded}


# ----------------------------------------------------------------------------- the report


def verdict(ok: bool) -> str:
    return "PASS" if ok else "**FAIL**"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="replay length in minutes (default 10)")
    parser.add_argument("--clients", type=int, default=20, help="WebSocket clients (default 20)")
    parser.add_argument("--slow", type=int, default=4, help="how many of them are slow (default 4)")
    parser.add_argument("--chaos-per-minute", type=float, default=20.0, help="chaos kills a minute (default 20)")
    parser.add_argument("--loop-seconds", type=float, default=1.0,
                        help="wall seconds per copy of the sample (default 1: speed 13,600)")
    parser.add_argument("--sample-seconds", type=float, default=None,
                        help="one memory/descriptor row per this many seconds (default 60; 10 with --quick)")
    parser.add_argument("--seed-rows", type=int, default=500_000, metavar="N",
                        help="trade rows already in the database when the service starts (default 500,000; 0: empty)")
    parser.add_argument("--ring-size", type=int, default=3_000, metavar="N",
                        help="the service's WS_RING_SIZE (default 3,000: about 60 s of this feed)")
    parser.add_argument("--seed", type=int, default=1, help="seed for chaos, jitter and the clients (default 1)")
    parser.add_argument("--quick", action="store_true", help="1 minute, a row every 10 s")
    parser.add_argument("--keep", type=Path, default=None, metavar="DIR",
                        help="keep the recording, the database and the service's log in DIR")
    args = parser.parse_args(argv)
    if args.quick:
        args.minutes = 1.0
    if args.sample_seconds is None:
        args.sample_seconds = 10.0 if args.quick else 60.0
    if args.seed_rows < 0:
        parser.error("--seed-rows must be 0 or more")
    if not 0 <= args.slow <= args.clients or args.clients < 1:
        parser.error("need 1 or more clients and 0 <= --slow <= --clients")
    if args.ring_size < int(SERVICE_ENV["WS_QUEUE_SIZE"]):
        parser.error(f"--ring-size must be at least WS_QUEUE_SIZE ({SERVICE_ENV['WS_QUEUE_SIZE']})")
    if not NOBEL_CSV.is_file():
        print(f"{NOBEL_CSV} is missing (it ships in shared/): the expected whales come from it", file=sys.stderr)
        return 2

    loops = max(1, math.ceil(args.minutes * 60 / args.loop_seconds))
    speed = PERIOD / args.loop_seconds
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        work = args.keep
        cleanup = None
    else:
        cleanup = tempfile.TemporaryDirectory(prefix="bench-soak-")
        work = Path(cleanup.name)
    try:
        print(machine_line())
        t = time.monotonic()
        recording = work / "soak.jsonl.gz"
        counts = build_recording(recording, loops)
        whales, kept, whales_per_loop = expected_ids(loops)
        print(f"soak: {loops} copies of the Nobel sample ({counts['lines']:,} lines, "
              f"{recording.stat().st_size / 1e6:.0f} MB gzip, built in {time.monotonic() - t:.1f} s) at speed "
              f"{speed:,.0f} ({args.loop_seconds:g} s a copy, ~{loops * args.loop_seconds / 60:.1f} min); "
              f"{args.clients} clients ({args.slow} slow); chaos {args.chaos_per_minute:g} kills/min; "
              f"ring {args.ring_size:,}; seed {args.seed}")
        print(f"expected: {whales_per_loop} whales and {len(kept) // loops} trade rows per copy; "
              f"{len(whales):,} whales, {len(kept):,} rows in all")
        if args.seed_rows:
            took = seed_database(work / "soak.db", args.seed_rows, args.seed)
            print(f"database: {args.seed_rows:,} trade rows written before the start ({took:.1f} s)")
        run = Run(args, work, recording, speed)
        result = trio.run(run.main)
        db = count_rows(work / "soak.db")
        ok = report(args, run, result, db, whales, kept, counts, loops)
        if args.keep is not None:
            print(f"\n(kept in {work}: soak.jsonl.gz, soak.db, service.log)")
        return 0 if ok else 1
    finally:
        if cleanup is not None:
            cleanup.cleanup()


def report(args: argparse.Namespace, run: Run, result: dict[str, Any], db: dict[str, Any], whales: list[str],
           kept: set[str], counts: dict[str, int], loops: int) -> bool:
    log: LogScan = result["log"]
    end = result.get("end_status") or {}
    start_doc = result.get("start_status") or {}
    expected_set = set(whales)
    healthy = [c for c in run.clients if not c.slow]
    slow = [c for c in run.clients if c.slow]

    def client_check(c: SoakClient) -> tuple[bool, int, int, int, bool]:
        got = set(c.whales)
        missing = len(expected_set - got)
        extra = len(got - expected_set)
        dups = len(c.whales) - len(got)
        in_order = c.whales == whales
        return missing == 0 and extra == 0 and dups == 0, missing, extra, dups, in_order

    checks = {c.name: client_check(c) for c in run.clients}
    healthy_ok = all(checks[c.name][0] for c in healthy)
    # a slow client may miss whales only when the server said its resume came too late
    slow_ok = all(checks[c.name][0] or (c.resume_gaps and checks[c.name][2] == 0 and checks[c.name][3] == 0)
                  for c in slow)
    rows_ok = (db["rows"] == len(kept) and db["distinct"] == db["rows"] and db["ids"] == kept
               and db["seeded"] == args.seed_rows)
    # the rule: the last minute within 10 % of the second minute (needs 3 minutes). A minute's
    # figure is the median of its 60 one-second samples: one sample can land on a step of
    # Python's small-object arenas, or just after a chaos-killed writer freed its page cache.
    marks = [m for m in run.marks if m["phase"] != "end"]
    at_2min = [m for m in marks if m["t"] >= 119]
    if marks and at_2min and marks[-1]["t"] >= 179:
        second, last = at_2min[0], marks[-1]
        rss_ok: bool | None = abs(last["rss_median_mb"] - second["rss_median_mb"]) <= 0.10 * second["rss_median_mb"]
    else:
        second = last = {}
        rss_ok = None
    fds_start = result["start"]["fds"]
    fds_end = result["end"]["fds"]
    clients_start = (start_doc.get("hub") or {}).get("clients", 0)
    clients_end = (end.get("hub") or {}).get("clients", 0)
    # descriptors other than client connections: should come back to where they were
    fd_other_start = fds_start.get("total", 0) - clients_start
    fd_other_end = fds_end.get("total", 0) - clients_end
    fd_ok = fd_other_end <= fd_other_start + 2
    clean_ok = (result.get("exit_code") == 0 and not log.gave_up and not log.other_crashes)
    replay = end.get("replay") or {}
    frames_ok = replay.get("frames_total") == counts["lines"]
    actors = end.get("actors", [])
    worker_restarts = sum(a["restarts"] for a in actors if a["kind"] == "worker")
    sup_restarts = sum(a["restarts"] for a in actors if a["kind"] == "supervisor")
    # kills and restarts as of the last status (the chaos monkey goes on until the service stops)
    kills_end: Counter[str] = result.get("kills_at_end") or log.kills
    kills_total = sum(kills_end.values())
    kills_fixed = sum(n for p, n in kills_end.items() if not p.startswith("root/frontend/sessions/"))
    kills_sessions = kills_total - kills_fixed
    kills_after = log.kills_total - kills_total
    pipeline = end.get("pipeline") or {}
    hub = end.get("hub") or {}
    storage = end.get("storage") or {}
    minutes = (run.timeline.get("replay over, pipeline drained", 0) - run.timeline.get("clients connected", 0)) / 60

    def span(values: list[int]) -> str:
        return f"{min(values):,}" if min(values) == max(values) else f"{min(values):,}–{max(values):,}"

    print()
    print(f"Soak under chaos: {minutes:.1f} min of replay, {loops} copies, speed {run.speed:,.0f}, "
          f"{args.clients} clients ({len(slow)} slow), chaos {args.chaos_per_minute:g}/min, "
          f"ring {args.ring_size:,}, seed {args.seed}:")
    print()
    rows: list[tuple[Any, ...]] = [
        ("frames replayed (recording lines)", f"{replay.get('frames_total', 0):,} of {counts['lines']:,}",
         verdict(frames_ok)),
        ("trades unique / kept",
         f"{pipeline.get('trades_unique_total', 0):,} / {pipeline.get('trades_kept_total', 0):,} "
         f"(expected {1500 * loops:,} / {len(kept):,})",
         verdict(pipeline.get("trades_unique_total") == 1500 * loops and pipeline.get("trades_kept_total") == len(kept))),
        ("broadcasts (whale_trade / market_update)",
         f"{(hub.get('broadcasts_by_type') or {}).get('whale_trade', 0):,} / "
         f"{(hub.get('broadcasts_by_type') or {}).get('market_update', 0):,} (hub seq {hub.get('seq', 0):,})", ""),
        ("chaos kills", f"{kills_total:,} ({kills_fixed} of pipeline/frontend/feed/ops actors, {kills_sessions} of "
         f"client sessions)" + (f"; {kills_after} more while stopping" if kills_after else ""), ""),
        ("restarts", f"{worker_restarts:,} worker restarts; {sup_restarts} subtree restarts (escalations)", ""),
        ("crashes other than chaos kills / supervisors that gave up",
         f"{len(log.other_crashes)} / {len(log.gave_up)}", verdict(not log.other_crashes and not log.gave_up)),
        ("whales expected vs received, each healthy client",
         f"{len(whales):,} vs {span([len(c.whales) for c in healthy]) if healthy else '-'} "
         f"({len(healthy)} clients; missing {sum(checks[c.name][1] for c in healthy)}, duplicates "
         f"{sum(checks[c.name][3] for c in healthy)}, unexpected {sum(checks[c.name][2] for c in healthy)})",
         verdict(healthy_ok)),
        ("whales received, each slow client",
         f"{span([len(c.whales) for c in slow]) if slow else '-'} of {len(whales):,} (duplicates "
         f"{sum(checks[c.name][3] for c in slow)}; resume gaps {sum(c.resume_gaps for c in slow)})",
         verdict(slow_ok) if slow else ""),
        ("trade rows expected vs stored (distinct trade ids)",
         f"{len(kept):,} vs {db['rows']:,} ({db['distinct']:,}; missing {len(kept - db['ids'])}, unexpected "
         f"{len(db['ids'] - kept)}; whale-marked {db['whales']:,}; seeded rows {db['seeded']:,} of "
         f"{args.seed_rows:,})", verdict(rows_ok)),
        ("resident memory, minute 2 → last minute (medians)",
         f"{second['rss_median_mb']:.1f} → {last['rss_median_mb']:.1f} MB "
         f"({(last['rss_median_mb'] - second['rss_median_mb']) / second['rss_median_mb'] * 100:+.1f} %; the "
         f"samples at the minute marks {second['rss_mb']:.1f} → {last['rss_mb']:.1f} MB, "
         f"{(last['rss_mb'] - second['rss_mb']) / second['rss_mb'] * 100:+.1f} %; peak "
         f"{max(s['hwm_kb'] for s in run.samples) / 1024:.1f} MB)" if rss_ok is not None else
         f"(a run shorter than 3 min has no rule; {marks[0]['rss_mb'] if marks else 0:.1f} → "
         f"{marks[-1]['rss_mb'] if marks else 0:.1f} MB)",
         verdict(rss_ok) if rss_ok is not None else "n/a"),
        ("open descriptors at start → end", f"{fds_start.get('total', 0)} → {fds_end.get('total', 0)} (clients "
         f"connected {clients_start} → {clients_end}; other {fd_other_start} → {fd_other_end})", verdict(fd_ok)),
        ("service exit", f"status {result.get('exit_code')} after SIGTERM, {result.get('stop_seconds', 0):.1f} s",
         verdict(result.get("exit_code") == 0)),
    ]
    print(table(["", "figure", "verdict"], rows, left=3))
    print()
    print(f"Every {args.sample_seconds:g} s (the service process; kills and restarts so far):")
    print()
    print(table(["t s", "RSS MB", "RSS min / median / max since the row before", "fds", "frames replayed", "kills",
                 "restarts", "hub seq", "clients", "phase"],
                [(f"{m['t']:.0f}", f"{m['rss_mb']:.1f}",
                  f"{m['rss_min_mb']:.1f} / {m['rss_median_mb']:.1f} / {m['rss_max_mb']:.1f}", m["fds"], m["frames"], m["kills"], m["restarts"], m["seq"],
                  m["clients"], m["phase"]) for m in run.marks], left=0))
    print()
    print("Clients:")
    print()
    crows = []
    for c in run.clients:
        ok, missing, extra, dups, in_order = checks[c.name]
        crows.append((c.name, f"{len(c.whales):,}", missing, dups, "yes" if in_order else "no", c.connections,
                      c.resumes, c.lagged, c.missed, c.resume_gaps, c.seq_repeats, c.seq_ahead,
                      f"{c.stalls} ({c.stalled_s:.0f} s)" if c.slow else "",
                      ", ".join(f"{k}: {v}" for k, v in c.closes.most_common()) or "-",
                      "PASS" if ok else ("ok (resume gap)" if c.slow and c.resume_gaps and not extra and not dups
                                         else "**FAIL**")))
    print(table(["client", "whales", "missing", "dup", "in order", "connections", "resumes", "lagged", "missed",
                 "resume gaps", "seq repeats", "seq ahead", "stalls", "disconnects seen", "verdict"], crows, left=1))
    print()
    print("Chaos kills by actor (until the last status):")
    print()
    by_group: Counter[str] = Counter()
    for path, n in kills_end.items():
        by_group[_group(path)] += n
    restarts_by_path = {a["path"]: a["restarts"] for a in actors}
    print(table(["actor", "kills", "restarts"],
                [(p, n, restarts_by_path.get(p, "-")) for p, n in by_group.most_common()], left=1))
    print()
    print("Timeline (s since the service started): " + ", ".join(f"{k} {v:.1f}" for k, v in run.timeline.items()))
    print(f"Storage at the end: {storage.get('rows_written_total', 0):,} rows written in "
          f"{storage.get('batches_total', 0):,} batches, {storage.get('retries_total', 0)} retries, "
          f"backlog {storage.get('backlog_rows', 0)}; {db['markets']} markets stored")
    print(f"Hub at the end: lagged clients {hub.get('lagged_clients_total', 0)}, kicked "
          f"{hub.get('kicked_clients_total', 0)}, missed {hub.get('missed_total', 0):,}, connections "
          f"{hub.get('connections_total', 0):,}, disconnects {hub.get('disconnects_total', {})}")
    if not result.get("drained"):
        print("\nWARNING: the pipeline did not drain in time (see the last status row)")
    if not result.get("caught_up"):
        behind = [f"{c.name} at {c.last_seq}" for c in run.clients if c.last_seq < hub.get("seq", 0)]
        print(f"\nWARNING: clients still behind the hub's seq {hub.get('seq', 0)} after 120 s: {', '.join(behind)}")
    if log.other_crashes:
        print(f"\nCrashes not caused by chaos ({len(log.other_crashes)}; first 5):")
        for rec in log.other_crashes[:5]:
            print(f"- {rec.get('time')} {rec.get('message')}\n  {str(rec.get('exception', ''))[-1200:]}")
    if log.gave_up:
        print("\nSupervisors that gave up:\n" + "\n".join(f"- {m}" for m in log.gave_up[:5]))
    if log.errors:
        print(f"\nOther ERROR lines in the service's log ({len(log.errors)}; first 5):")
        for rec in log.errors[:5]:
            print(f"- {rec.get('time', '')} {rec.get('actor', '')} {rec.get('message', '')[:300]}")
    if log.warnings:
        print("\nWARNING lines in the service's log (chaos kills left out):")
        for msg, n in log.warnings.most_common(10):
            print(f"- {n} × {msg}")
    ok = all((frames_ok, healthy_ok, slow_ok, rows_ok, rss_ok is not False, fd_ok, clean_ok))
    print(f"\n{'PASS' if ok else 'FAIL'}")
    return ok


if __name__ == "__main__":
    sys.exit(main())
