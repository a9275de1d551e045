"""The client side of ``bench_fanout.py``: many WebSocket clients in one asyncio process.

Not a benchmark on its own: ``bench_fanout.py`` starts it as a separate process and drives it
over stdin/stdout, one JSON line per command and per answer:

* at start it opens ``--clients`` connections to ``ws://127.0.0.1:PORT/`` (at most
  ``--concurrency`` handshakes at a time), then prints ``CONNECTED {...}``;
* ``{"cmd": "progress"}`` → ``PROGRESS {"received": N}``;
* ``{"cmd": "report"}`` → ``REPORT {...}`` (latency percentiles, counts, close codes);
* ``{"cmd": "quit"}`` or end of stdin → every socket is closed and the process exits.

The WebSocket client is a minimal RFC 6455 implementation on ``asyncio.Protocol`` (handshake,
unmasked server frames, masked client frames, ping → pong, close, fragments), so that one
Python process can hold 1,000 connections and read tens of thousands of messages a second
without becoming the bottleneck it measures.  No compression is negotiated.

Latency of a broadcast = arrival time (``time.time()`` when its bytes are handed to the
protocol) − its ``data.sent_at`` (``time.time()`` in the server process when it was injected;
same machine, same clock).  ``sent_at`` is the first field of ``data`` and broadcasts are
encoded ``{"type":…,"seq":N,"data":{"sent_at":T,…}}``, so one regular expression finds every
``(seq, sent_at)`` of a plain frame or of a ``batch`` frame without decoding the JSON.

The first ``--stalled`` connections never read: they shrink their receive buffer to
``--stalled-rcvbuf`` bytes before connecting, complete the handshake, then stop reading
(``transport.pause_reading()``), so the server's sends to them block as soon as the kernel
buffers are full.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import base64
import os
import re
import socket
import sys
import time
from typing import Any

import orjson

SEQ_RE = re.compile(rb'"seq":(\d+),"data":\{"sent_at":([0-9.eE+-]+)')


class Shared:
    def __init__(self) -> None:
        self.latencies = array.array("d")
        self.received = 0
        self.frames = 0
        self.batch_frames = 0
        self.lagged_notices = 0
        self.missed = 0
        self.order_errors = 0
        self.other: dict[str, int] = {}
        self.closed: dict[str, int] = {}
        self.pings = 0
        self.first_arrival = 0.0
        self.last_arrival = 0.0


class Conn(asyncio.Protocol):
    def __init__(self, shared: Shared, host: str, port: int, *, stall: bool, batch: bool) -> None:
        self.shared = shared
        self.host, self.port = host, port
        self.stall = stall
        self.batch = batch
        self.buf = bytearray()
        self.handshaking = True
        self.ready: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.received = 0
        self.last_seq = 0
        self.fragments: list[bytes] | None = None
        self.close_code: int | None = None

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write((f"GET / HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nUpgrade: websocket\r\n"
                         f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                         "User-Agent: bench-fanout\r\n\r\n").encode())

    def connection_lost(self, exc: Exception | None) -> None:
        why = f"close {self.close_code}" if self.close_code is not None else (
            f"lost: {type(exc).__name__}" if exc is not None else "lost: eof")
        self.shared.closed[why] = self.shared.closed.get(why, 0) + 1
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(why))

    def data_received(self, data: bytes) -> None:
        now = time.time()
        buf = self.buf
        buf += data
        if self.handshaking:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end])
            del buf[:end + 4]
            if not head.startswith(b"HTTP/1.1 101"):
                if not self.ready.done():
                    self.ready.set_exception(ConnectionError(head.split(b"\r\n", 1)[0].decode("latin-1")))
                assert self.transport is not None
                self.transport.close()
                return
            self.handshaking = False
            if self.batch:
                self.send_frame(0x1, b'{"type":"subscribe","data":{"batch":true}}')
            if not self.ready.done():
                self.ready.set_result(True)
            if self.stall:
                assert self.transport is not None
                self.transport.pause_reading()
                buf.clear()
                return
        n = len(buf)
        pos = 0
        while n - pos >= 2:
            b0 = buf[pos]
            b1 = buf[pos + 1]
            length = b1 & 0x7F
            header = 2
            if length == 126:
                if n - pos < 4:
                    break
                length = int.from_bytes(buf[pos + 2:pos + 4], "big")
                header = 4
            elif length == 127:
                if n - pos < 10:
                    break
                length = int.from_bytes(buf[pos + 2:pos + 10], "big")
                header = 10
            if b1 & 0x80:
                header += 4  # a masked server frame breaks the RFC; we do not unmask it
            end = pos + header + length
            if end > n:
                break
            self.on_frame(b0, bytes(buf[pos + header:end]), now)
            pos = end
        if pos:
            del buf[:pos]

    # -- WebSocket

    def send_frame(self, opcode: int, payload: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            header = bytes((0x80 | opcode, 0x80 | n))
        else:
            header = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
        masked = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
        self.transport.write(header + mask + masked)

    def on_frame(self, b0: int, payload: bytes, now: float) -> None:
        opcode = b0 & 0x0F
        fin = b0 & 0x80
        if opcode == 0x9:
            self.shared.pings += 1
            self.send_frame(0xA, payload)
            return
        if opcode == 0xA:
            return
        if opcode == 0x8:
            self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
            self.send_frame(0x8, payload[:2])
            assert self.transport is not None
            self.transport.close()
            return
        if opcode == 0x0:
            if self.fragments is None:
                return
            self.fragments.append(payload)
            if fin:
                payload, self.fragments = b"".join(self.fragments), None
                self.on_message(payload, now)
            return
        if not fin:
            self.fragments = [payload]
            return
        self.on_message(payload, now)

    def on_message(self, payload: bytes, now: float) -> None:
        shared = self.shared
        shared.frames += 1
        head = payload[:24]
        if head.startswith(b'{"type":"batch"'):
            shared.batch_frames += 1
        elif not head.startswith(b'{"type":"whale_trade"'):
            kind = orjson.loads(payload).get("type", "?")
            if kind == "lagged":
                shared.lagged_notices += 1
                shared.missed += orjson.loads(payload)["data"]["missed"]
            shared.other[kind] = shared.other.get(kind, 0) + 1
            return
        append = shared.latencies.append
        count = 0
        last = self.last_seq
        for m in SEQ_RE.finditer(payload):
            seq = int(m.group(1))
            if seq <= last:
                shared.order_errors += 1
            last = seq
            append(now - float(m.group(2)))
            count += 1
        self.last_seq = last
        self.received += count
        shared.received += count
        if count:
            if not shared.first_arrival:
                shared.first_arrival = now
            shared.last_arrival = now


async def connect_all(args: argparse.Namespace, shared: Shared) -> tuple[list[Conn], dict[str, int]]:
    loop = asyncio.get_running_loop()
    sem = asyncio.Semaphore(args.concurrency)
    conns: list[Conn] = []
    errors: dict[str, int] = {}

    async def one(i: int) -> None:
        stall = i < args.stalled
        async with sem:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                if stall:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, args.stalled_rcvbuf)
                sock.setblocking(False)
                await asyncio.wait_for(loop.sock_connect(sock, (args.host, args.port)), 20)
                _, proto = await loop.create_connection(
                    lambda: Conn(shared, args.host, args.port, stall=stall, batch=args.batch), sock=sock)
                await asyncio.wait_for(proto.ready, 20)
                conns.append(proto)
            except Exception as exc:  # noqa: BLE001 - counted and reported
                key = f"{type(exc).__name__}: {exc}"[:80]
                errors[key] = errors.get(key, 0) + 1
                sock.close()

    await asyncio.gather(*(one(i) for i in range(args.clients)))
    return conns, errors


def percentile(sorted_values: Any, q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(round(q * (len(sorted_values) - 1))))]


def report(shared: Shared, conns: list[Conn], args: argparse.Namespace) -> dict[str, Any]:
    lat = sorted(shared.latencies)
    reading = [c for c in conns if not c.stall]
    per_client = [c.received for c in reading]
    return {
        "connected": len(conns),
        "reading": len(reading),
        "stalled": len(conns) - len(reading),
        "received": shared.received,
        "frames": shared.frames,
        "batch_frames": shared.batch_frames,
        "lagged_notices": shared.lagged_notices,
        "missed": shared.missed,
        "order_errors": shared.order_errors,
        "other": shared.other,
        "closed": shared.closed,
        "pings": shared.pings,
        "first_arrival": shared.first_arrival,
        "last_arrival": shared.last_arrival,
        "p50": percentile(lat, 0.50),
        "p90": percentile(lat, 0.90),
        "p99": percentile(lat, 0.99),
        "p999": percentile(lat, 0.999),
        "max": lat[-1] if lat else float("nan"),
        "min_per_client": min(per_client) if per_client else 0,
        "max_per_client": max(per_client) if per_client else 0,
    }


def emit(tag: str, data: dict[str, Any]) -> None:
    sys.stdout.write(tag + " " + orjson.dumps(data).decode() + "\n")
    sys.stdout.flush()


async def main_async(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    shared = Shared()
    t0 = time.perf_counter()
    conns, errors = await connect_all(args, shared)
    emit("CONNECTED", {"ok": len(conns), "errors": errors, "seconds": time.perf_counter() - t0, "pid": os.getpid()})
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            cmd = orjson.loads(line).get("cmd")
            if cmd == "progress":
                emit("PROGRESS", {"received": shared.received, "lagged_notices": shared.lagged_notices,
                                  "missed": shared.missed})
            elif cmd == "report":
                emit("REPORT", report(shared, conns, args))
            elif cmd == "quit":
                break
    finally:
        for c in conns:
            if c.transport is not None:
                c.transport.abort()
        await asyncio.sleep(0)


def main() -> int:
    parser = argparse.ArgumentParser(description="bench_fanout.py's client process (see its docstring)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--stalled", type=int, default=0, help="of the clients, this many never read")
    parser.add_argument("--stalled-rcvbuf", type=int, default=4096, help="SO_RCVBUF of the stalled clients")
    parser.add_argument("--batch", action="store_true", help='subscribe with {"batch": true}')
    parser.add_argument("--concurrency", type=int, default=64, help="handshakes in flight at once")
    args = parser.parse_args()
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
