"""The fan-out baseline: the same frontend written plainly with asyncio and ``websockets``.

What it does is what the service's frontend does for a client that sends nothing, in the
most direct asyncio form: ``websockets.asyncio.server.serve`` (``compression=None``) on
``ws://127.0.0.1:<any free port>``; each connection gets ``hello``, then is registered; a hub
task takes broadcasts from an ``asyncio.Queue`` (bounded like the service's hub inbox),
numbers them (``seq``), encodes each once with orjson in the same
``{"type","seq","data"}`` shape, keeps a ring of the last 10,000, and hands the frame to
``websockets.broadcast`` (the library's fan-out: writes to every open connection without
waiting; a connection that does not read piles up in its write buffer).  Client messages
are read and answered (``ping`` → ``pong``, ``subscribe`` → ``subscribed``), but there is no
per-client filtering, no batching, no lag detection and no resume.

It is driven by ``bench_fanout.py`` exactly like ``_fanout_server.py`` (same stdin/stdout
commands: ``run``, ``stats``, ``quit``; same injected message with ``data.sent_at``), so both
servers meet the same client process and scenarios.

Run alone for a look: ``.venv/bin/python bench/baseline_asyncio.py`` prints ``READY {...}``
and waits for commands on stdin.
"""

from __future__ import annotations

import asyncio
import collections
import os
import sys
import time
from pathlib import Path
from typing import Any

import orjson
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import WHALE, proc_status  # noqa: E402


class Hub:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(4096)
        self.clients: set[ServerConnection] = set()
        self.seq = 0
        self.ring: collections.deque[tuple[int, str]] = collections.deque(maxlen=10_000)
        self.sent_total = 0
        self.connections_total = 0
        self.disconnects: dict[str, int] = {}

    async def run(self) -> None:
        while True:
            type_, data = await self.queue.get()
            self.seq += 1
            frame = orjson.dumps({"type": type_, "seq": self.seq, "data": data}).decode()
            self.ring.append((self.seq, frame))
            broadcast(self.clients, frame)
            self.sent_total += len(self.clients)

    async def handler(self, ws: ServerConnection) -> None:
        self.connections_total += 1
        await ws.send(orjson.dumps({"type": "hello", "data": {
            "server": "asyncio-baseline", "version": "0", "seq": self.seq, "oldest_seq": 1,
            "heartbeat_interval": 20.0}}).decode())
        self.clients.add(ws)
        why = "closed by client"
        try:
            async for text in ws:
                try:
                    message = orjson.loads(text)
                    kind = message.get("type")
                except (orjson.JSONDecodeError, AttributeError):
                    kind = None
                if kind == "ping":
                    await ws.send(orjson.dumps({"type": "pong", "data": {"seq": self.seq}}).decode())
                elif kind == "subscribe":
                    await ws.send(orjson.dumps({"type": "subscribed", "data": message.get("data") or {}}).decode())
                else:
                    await ws.send(orjson.dumps({"type": "error", "data": {"code": "unknown_type"}}).decode())
        except ConnectionClosed as exc:
            why = f"closed {exc.rcvd.code if exc.rcvd else 'abnormally'}"
        finally:
            self.clients.discard(ws)
            self.disconnects[why] = self.disconnects.get(why, 0) + 1


def emit(tag: str, data: dict[str, Any]) -> None:
    sys.stdout.write(tag + " " + orjson.dumps(data).decode() + "\n")
    sys.stdout.flush()


async def main_async() -> None:
    loop = asyncio.get_running_loop()
    hub = Hub()
    runs = 0

    async def inject(rate: float, duration: float) -> dict[str, Any]:
        nonlocal runs
        runs += 1
        count = max(1, round(rate * duration))
        first = hub.seq + 1
        behind = 0.0
        start = loop.time()
        wall = time.time()
        for i in range(count):
            due = start + i / rate
            now = loop.time()
            if now < due:
                await asyncio.sleep(due - now)
            else:
                behind = max(behind, now - due)
            data = {"sent_at": time.time(), **WHALE, "trade_id": f"bench-{runs}-{i}"}
            await hub.queue.put(("whale_trade", data))
        while hub.seq < first + count - 1:
            await asyncio.sleep(0.001)
        return {"sent": count, "first_seq": first, "last_seq": hub.seq, "seconds": time.time() - wall,
                "start_wall": wall, "behind_max": behind}

    def snapshot() -> dict[str, Any]:
        buffered = [c.transport.get_write_buffer_size() for c in hub.clients if c.transport is not None]
        return {
            "clients": len(hub.clients),
            "write_buffered_bytes": sum(buffered),
            "write_buffered_max": max(buffered, default=0),
            "messages_queued_total": hub.sent_total,
            "connections_total": hub.connections_total,
            "disconnects": hub.disconnects,
            "rss_kb": proc_status()["VmRSS"],
        }

    hub_task = asyncio.create_task(hub.run())
    async with serve(hub.handler, "127.0.0.1", 0, compression=None, backlog=2048, max_size=1 << 20,
                     ping_interval=20, ping_timeout=20) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        emit("READY", {"port": port, "pid": os.getpid(), "server": "asyncio + websockets"})
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while True:
            line = await reader.readline()
            if not line:
                break
            cmd = orjson.loads(line)
            if cmd["cmd"] == "run":
                emit("DONE", await inject(float(cmd["rate"]), float(cmd["duration"])))
            elif cmd["cmd"] == "stats":
                emit("STATS", snapshot())
            elif cmd["cmd"] == "quit":
                break
        for ws in list(hub.clients):
            if ws.transport is not None:
                ws.transport.abort()
        server.close()
    hub_task.cancel()


def main() -> int:
    asyncio.run(main_async())
    return 0


if __name__ == "__main__":
    sys.exit(main())
