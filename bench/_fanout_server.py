"""The server side of ``bench_fanout.py``: the real service's frontend, driven over stdin/stdout.

Not a benchmark on its own.  It runs the whole service in this process (``build_service``
with a replay of a recording that holds nothing but its header, so the feeds and pipeline
are idle and nothing reaches out; every endpoint points at 127.0.0.1:9), listening on
``ws://127.0.0.1:<any free port>``, and prints ``READY {"port": …, "pid": …}``.

Commands, one JSON line each on stdin (answers on stdout):

* ``{"cmd": "run", "rate": R, "duration": D}``: inject ``R × D`` ``whale_trade``
  broadcasts into the hub's inbox at ``R`` a second (``service.inboxes["hub"].send_channel``),
  each with ``data.sent_at = time.time()`` taken just before the send; answers
  ``DONE {"sent", "first_seq", "last_seq", "seconds", "behind_max"}`` once the hub has
  published them all (``behind_max``: how late the injector ran, in seconds);
* ``{"cmd": "stats"}`` → ``STATS {...}`` (hub and frontend counters, clients, queued
  messages, RSS);
* ``{"cmd": "quit"}`` or end of stdin: the service stops in order and the process exits.

Settings come from ``bench/_common.OFFLINE_ENV`` plus ``--env NAME=VALUE`` options.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import OFFLINE_ENV, WHALE, proc_status, quiet_logging  # noqa: E402

import trio  # noqa: E402

from actors import ServiceOptions, build_service  # noqa: E402
from actors.messages import Broadcast  # noqa: E402
from config import load_settings  # noqa: E402
from protocols.recording import encode_header  # noqa: E402
from supervision import run_supervisor  # noqa: E402

def emit(tag: str, data: dict[str, Any]) -> None:
    sys.stdout.write(tag + " " + orjson.dumps(data).decode() + "\n")
    sys.stdout.flush()


async def serve(env: dict[str, str], recording: Path) -> None:
    svc = build_service(load_settings(env, env_file=None), ServiceOptions(seed=1, replay=recording, speed=0))
    hub, stats, hub_inbox = svc.hub, svc.frontend_stats, svc.inboxes["hub"]
    stop = trio.Event()
    runs = 0

    async def inject(rate: float, duration: float) -> dict[str, Any]:
        nonlocal runs
        runs += 1
        count = max(1, round(rate * duration))
        first = hub.seq + 1
        send = hub_inbox.send_channel.send
        behind = 0.0
        start = trio.current_time()
        wall = time.time()
        for i in range(count):
            due = start + i / rate
            now = trio.current_time()
            if now < due:
                await trio.sleep_until(due)
            else:
                behind = max(behind, now - due)
            data = {"sent_at": time.time(), **WHALE, "trade_id": f"bench-{runs}-{i}"}
            await send(Broadcast("whale_trade", data, market=WHALE["condition_id"], amount=WHALE["amount"],
                                 key=f"whale:bench-{runs}-{i}"))
        # (Inbox.pending() does not see a message handed straight to the hub's blocked receive,
        # so wait for the seq instead; every key is new, so each send is one seq)
        while hub.seq < first + count - 1:
            await trio.sleep(0.001)
        return {"sent": count, "first_seq": first, "last_seq": hub.seq, "seconds": time.time() - wall,
                "start_wall": wall, "behind_max": behind}

    def snapshot() -> dict[str, Any]:
        queued = [len(c.frames) + len(c.batched) for c in hub.clients]
        s = hub.stats
        messages_sent, frames_sent = hub.sent_totals()
        return {
            "clients": len(hub.clients),
            "queued_now": sum(queued),
            "queued_max": max(queued, default=0),
            "messages_queued_total": s.messages_queued_total,
            "missed_total": s.missed_total,
            "lagged_clients_total": s.lagged_clients_total,
            "kicked_clients_total": s.kicked_clients_total,
            "messages_sent_total": messages_sent,
            "frames_sent_total": frames_sent,
            "connections_total": stats.connections_total,
            "rejected": stats.rejected_total,
            "disconnects": stats.disconnects_total,
            "crashes": sum(info.crashes for info in svc.registry),
            "rss_kb": proc_status()["VmRSS"],
        }

    async with trio.open_nursery() as nursery:
        await nursery.start(functools.partial(run_supervisor, svc.spec, svc.children, registry=svc.registry,
                                              rng=svc.rng, stop=stop))
        emit("READY", {"port": svc.frontend_stats.bound_port, "pid": os.getpid(), "server": "trio service"})
        stdin = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
        pending = b""
        try:
            while True:
                chunk = await stdin.receive_some(65536)
                if not chunk:
                    break
                pending += chunk
                quit_ = False
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    cmd = orjson.loads(line)
                    if cmd["cmd"] == "run":
                        emit("DONE", await inject(float(cmd["rate"]), float(cmd["duration"])))
                    elif cmd["cmd"] == "stats":
                        emit("STATS", snapshot())
                    elif cmd["cmd"] == "quit":
                        quit_ = True
                if quit_:
                    break
        finally:
            await stdin.aclose()
            stop.set()


def main() -> int:
    parser = argparse.ArgumentParser(description="bench_fanout.py's trio service process (see its docstring)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra setting for the service (repeatable)")
    parser.add_argument("--profile", type=Path, default=None, metavar="FILE",
                        help="run under cProfile and dump the stats (pstats format) to FILE at exit")
    args = parser.parse_args()
    env = dict(OFFLINE_ENV)
    for item in args.env:
        name, _, value = item.partition("=")
        env[name] = value
    quiet_logging()
    with tempfile.TemporaryDirectory(prefix="bench-fanout-") as tmp:
        recording = Path(tmp) / "empty.jsonl"
        recording.write_bytes(encode_header(time.time()))
        if args.profile is None:
            trio.run(serve, env, recording)
        else:
            import cProfile

            prof = cProfile.Profile()
            prof.enable()
            try:
                trio.run(serve, env, recording)
            finally:
                prof.disable()
                prof.dump_stats(str(args.profile))
    return 0


if __name__ == "__main__":
    sys.exit(main())
