"""Fan-out: broadcasts from the hub to 1, 100 and 1,000 WebSocket clients in another process.

For each scenario and each server, three processes run on this machine, all on 127.0.0.1:

* the **server**: either the real service (``_fanout_server.py``: ``build_service`` on an
  empty replay, so only the frontend works) or the **baseline** (``baseline_asyncio.py``:
  the same frontend written plainly with asyncio + ``websockets``, ``compression=None``);
* the **clients** (``_fanout_clients.py``): N WebSocket connections in one asyncio process,
  of which S never read (their receive buffer shrunk to 4 KiB, reading paused after the
  handshake); with ``batch`` they subscribe with ``{"batch": true}``;
* this **driver**: starts both, waits for every client to be connected, tells the server to
  inject ``whale_trade`` broadcasts into the hub's inbox at ``--rate`` a second for
  ``--duration`` seconds (``data.sent_at = time.time()`` at injection), waits until the
  reading clients have everything (or nothing arrived for 3 s, or ``--drain-timeout``), and
  collects the figures; both processes are stopped after each scenario.

Latency is arrival at the client minus ``sent_at`` (same machine, same clock), for every
message of every reading client.  ``deliveries/s`` is messages received by the reading
clients ÷ (last arrival − first injection): the offered load when the server keeps up, its
capacity when it does not.  ``not delivered`` = reading clients × sent − received (messages
a reading client never got by the end of the drain wait; ``lagged`` notices are counted
apart).  Server RSS is ``VmRSS`` of the server process before the injection, after the drain
and its peak (sampled every 0.2 s).  CPU % is each process's CPU time over the injection and
drain (100 % = one core; this machine has two, so a client process at 100 % means the
figures are a lower bound of the server's capacity).

Scenarios (``--scenarios``, comma list; default ``1,100,1000,1000-stall,1000-batch,capacity``):

* ``1``, ``100``, ``1000``: that many reading clients at ``--rate`` (default 20 msgs/s);
* ``1000-stall``: 1,000 clients, 10 % of which never read;
* ``1000-batch``: 1,000 clients with ``{"batch": true}``;  ``1000-batch-stall``: both;
* ``capacity``: 1,000 clients at ``--capacity-rate`` (default 100 msgs/s, i.e. 100,000
  deliveries/s offered) for ``--capacity-duration`` s (default 3): what each server delivers.

Usage::

    .venv/bin/python bench/bench_fanout.py [--duration S] [--rate R] [--scenarios LIST]
        [--no-baseline | --baseline-only] [--quick] [--profile] [--env NAME=VALUE ...]

``--quick``: 3 s per scenario (about a minute).  ``--profile``: afterwards, the service's
``1000`` scenario once more under cProfile, and where its time goes.
``--env``: settings for the service (e.g. ``--env WS_QUEUE_SIZE=200``).
"""

from __future__ import annotations

import argparse
import atexit
import os
import pstats
import queue
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import cpu_seconds, machine_line, proc_status, profile_tables, table, tcp_kernel_mb  # noqa: E402

HERE = Path(__file__).resolve().parent
PY = sys.executable

SCENARIOS: dict[str, dict[str, Any]] = {
    "1": {"clients": 1, "stalled": 0, "batch": False},
    "100": {"clients": 100, "stalled": 0, "batch": False},
    "1000": {"clients": 1000, "stalled": 0, "batch": False},
    "1000-stall": {"clients": 1000, "stalled": 100, "batch": False},
    "1000-batch": {"clients": 1000, "stalled": 0, "batch": True},
    "1000-batch-stall": {"clients": 1000, "stalled": 100, "batch": True},
    "capacity": {"clients": 1000, "stalled": 0, "batch": False, "capacity": True},
}
DEFAULT_SCENARIOS = "1,100,1000,1000-stall,1000-batch,capacity"

_live: list[Child] = []


class Child:
    """A child process spoken to with JSON lines; always stopped (quit → terminate → kill)."""

    def __init__(self, args: list[str], name: str) -> None:
        self.name = name
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
                                     cwd=str(HERE.parent), bufsize=0)
        self.lines: queue.Queue[bytes | None] = queue.Queue()
        threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True).start()
        _live.append(self)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self, stream: IO[bytes] | None) -> None:
        assert stream is not None
        for line in stream:
            self.lines.put(line)
        self.lines.put(None)

    def send(self, cmd: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(orjson.dumps(cmd) + b"\n")
        self.proc.stdin.flush()

    def expect(self, tag: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                line = self.lines.get(timeout=max(0.01, left))
            except queue.Empty:
                raise TimeoutError(f"{self.name}: no {tag} within {timeout:.0f} s{self._tail()}") from None
            if line is None:
                raise RuntimeError(f"{self.name} exited (status {self.proc.wait()}) before {tag}{self._tail()}")
            head, _, body = line.decode().partition(" ")
            if head == tag:
                return orjson.loads(body)

    def ask(self, cmd: dict[str, Any], tag: str, timeout: float = 30) -> dict[str, Any]:
        self.send(cmd)
        return self.expect(tag, timeout)

    def _tail(self) -> str:
        self.stderr.seek(0)
        text = self.stderr.read().decode(errors="replace").strip()
        return ("; its stderr ends with:\n" + text[-2000:]) if text else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send({"cmd": "quit"})
                assert self.proc.stdin is not None
                self.proc.stdin.close()
            except (OSError, ValueError):
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        if self in _live:
            _live.remove(self)

    def warnings(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace").strip()


@atexit.register
def _stop_all() -> None:
    for child in list(_live):
        child.stop()


def run_scenario(kind: str, name: str, spec: dict[str, Any], rate: float, duration: float,
                 drain_timeout: float, env: list[str], profile: Path | None = None) -> dict[str, Any]:
    if kind == "service":
        args = [PY, str(HERE / "_fanout_server.py")] + [a for e in env for a in ("--env", e)]
        if profile is not None:
            args += ["--profile", str(profile)]
    else:
        args = [PY, str(HERE / "baseline_asyncio.py")]
    server = Child(args, f"{kind} server")
    clients: Child | None = None
    try:
        ready = server.expect("READY", 60)
        cargs = [PY, str(HERE / "_fanout_clients.py"), "--port", str(ready["port"]),
                 "--clients", str(spec["clients"]), "--stalled", str(spec["stalled"])]
        if spec["batch"]:
            cargs.append("--batch")
        clients = Child(cargs, "client process")
        connected = clients.expect("CONNECTED", 120)
        time.sleep(0.5)
        before = server.ask({"cmd": "stats"}, "STATS")
        reading = connected["ok"] - min(spec["stalled"], connected["ok"])
        rss = [proc_status(server.pid)["VmRSS"]]
        kernel = [tcp_kernel_mb()]
        s_cpu0, c_cpu0, t0 = cpu_seconds(server.pid), cpu_seconds(clients.pid), time.monotonic()
        server.send({"cmd": "run", "rate": rate, "duration": duration})
        done: dict[str, Any] | None = None
        while done is None:
            try:
                done = server.expect("DONE", 0.2)
            except TimeoutError:
                rss.append(proc_status(server.pid)["VmRSS"])
                kernel.append(tcp_kernel_mb())
                if time.monotonic() - t0 > duration + 120:
                    raise
        expected = reading * done["sent"]
        last_change, last = time.monotonic(), -1
        drain_start = time.monotonic()
        while True:
            progress = clients.ask({"cmd": "progress"}, "PROGRESS")
            rss.append(proc_status(server.pid)["VmRSS"])
            kernel.append(tcp_kernel_mb())
            now = time.monotonic()
            if progress["received"] != last:
                last, last_change = progress["received"], now
            if progress["received"] >= expected or now - last_change > 3 or now - drain_start > drain_timeout:
                break
            time.sleep(0.2)
        s_cpu1, c_cpu1, t1 = cpu_seconds(server.pid), cpu_seconds(clients.pid), time.monotonic()
        after = server.ask({"cmd": "stats"}, "STATS")
        rep = clients.ask({"cmd": "report"}, "REPORT")
        rss.append(after["rss_kb"])
        span = (rep["last_arrival"] - done["start_wall"]) if rep.get("last_arrival") else float("nan")
        return {
            "server": "service (trio)" if kind == "service" else "asyncio + websockets",
            "scenario": name, "spec": spec, "connected": connected, "reading": reading,
            "sent": done["sent"], "rate_sent": done["sent"] / max(1e-9, done["seconds"]),
            "behind_max": done["behind_max"], "expected": expected, "report": rep,
            "deliveries_per_s": rep["received"] / span if span == span and span > 0 else float("nan"),
            "drain_s": t1 - drain_start, "before": before, "after": after,
            "rss_start": before["rss_kb"] / 1024, "rss_end": after["rss_kb"] / 1024, "rss_peak": max(rss) / 1024,
            "kernel_start": kernel[0], "kernel_end": kernel[-1], "kernel_peak": max(kernel),
            "server_cpu": 100 * (s_cpu1 - s_cpu0) / (t1 - t0), "client_cpu": 100 * (c_cpu1 - c_cpu0) / (t1 - t0),
            "server_warnings": server.warnings(),
        }
    finally:
        if clients is not None:
            clients.stop()
        server.stop()


def fmt_ms(seconds: float) -> float:
    return seconds * 1000 if seconds == seconds else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds of injection per scenario (default 8)")
    parser.add_argument("--rate", type=float, default=20.0, help="broadcasts per second (default 20)")
    parser.add_argument("--scenarios", default=DEFAULT_SCENARIOS,
                        help=f"comma list of {', '.join(SCENARIOS)} (default {DEFAULT_SCENARIOS})")
    parser.add_argument("--capacity-rate", type=float, default=100.0, help="rate of the capacity scenario")
    parser.add_argument("--capacity-duration", type=float, default=3.0, help="seconds of the capacity scenario")
    parser.add_argument("--drain-timeout", type=float, default=20.0,
                        help="at most this long to wait for the clients to catch up after the injection (default 20)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--no-baseline", action="store_true", help="only the service")
    group.add_argument("--baseline-only", action="store_true", help="only the asyncio + websockets baseline")
    parser.add_argument("--quick", action="store_true", help="3 s per scenario, 2 s capacity (about a minute)")
    parser.add_argument("--profile", action="store_true",
                        help="then profile the service in the 1000 scenario (cProfile) and print where the time goes")
    parser.add_argument("--profile-top", type=int, default=25)
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra setting for the service (repeatable), e.g. WS_QUEUE_SIZE=200")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.capacity_duration, args.drain_timeout = 3.0, 2.0, 10.0
    names = [n.strip() for n in args.scenarios.split(",") if n.strip()]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario {unknown[0]!r}; known: {', '.join(SCENARIOS)}")
    kinds = ["service", "baseline"]
    if not args.no_baseline:
        import importlib.util

        if importlib.util.find_spec("websockets") is None:
            print("the asyncio baseline needs the 'bench' extra: .venv/bin/python -m pip install 'websockets>=14' "
                  "(or pass --no-baseline)", file=sys.stderr)
            return 2
    if args.no_baseline:
        kinds = ["service"]
    elif args.baseline_only:
        kinds = ["baseline"]

    print(machine_line())
    print(f"fan-out: {args.rate:g} msgs/s for {args.duration:g} s per scenario; capacity: {args.capacity_rate:g} msgs/s "
          f"for {args.capacity_duration:g} s; clients in a separate process; all on 127.0.0.1")
    if args.env:
        print("service settings: " + " ".join(args.env))
    started = time.monotonic()
    results: list[dict[str, Any]] = []
    for name in names:
        spec = SCENARIOS[name]
        rate = args.capacity_rate if spec.get("capacity") else args.rate
        duration = args.capacity_duration if spec.get("capacity") else args.duration
        for kind in kinds:
            print(f"  {name:>16} on {kind:<8} ...", end="", flush=True, file=sys.stderr)
            t = time.monotonic()
            r = run_scenario(kind, name, spec, rate, duration, args.drain_timeout, args.env)
            results.append(r)
            rep = r["report"]
            print(f" {time.monotonic() - t:5.1f} s: p99 {fmt_ms(rep['p99']):,.1f} ms, "
                  f"{r['deliveries_per_s']:,.0f} deliveries/s", file=sys.stderr)

    print()
    print("Fan-out (target: 1,000 clients × 20 msgs/s with p99 ≤ 60 ms; delivery capacity ≥ the asyncio baseline):")
    print()
    rows = []
    for r in results:
        rep, spec = r["report"], r["spec"]
        clients = f"{rep['reading']:,}" + (f" + {rep['stalled']} stalled" if rep["stalled"] else "")
        rows.append((
            r["scenario"], r["server"], clients, "yes" if spec["batch"] else "",
            r["rate_sent"], r["deliveries_per_s"],
            fmt_ms(rep["p50"]), fmt_ms(rep["p99"]), fmt_ms(rep["max"]),
            r["expected"] - rep["received"], f"{rep['lagged_notices']} ({rep['missed']:,})",
            f"{r['rss_start']:.0f} → {r['rss_end']:.0f} ({r['rss_peak']:.0f})",
            r["server_cpu"], r["client_cpu"],
        ))
    print(table(["scenario", "server", "reading clients", "batch", "sent msg/s", "deliveries/s", "p50 ms", "p99 ms",
                 "max ms", "not delivered", "lagged (missed)", "server RSS MB start → end (peak)", "server CPU %",
                 "client CPU %"], rows, left=4))
    print()
    print("Details:")
    print()
    drows = []
    for r in results:
        rep, after = r["report"], r["after"]
        if r["server"].startswith("service"):
            server_side = (f"queued now {after['queued_now']:,} (max/client {after['queued_max']}), missed "
                           f"{after['missed_total']:,}, lagged clients {after['lagged_clients_total']}, kicked "
                           f"{after['kicked_clients_total']}, crashes {after['crashes']}")
            gone = after["disconnects"]
        else:
            server_side = (f"write buffers {after['write_buffered_bytes'] / 1e6:.1f} MB "
                           f"(max/client {after['write_buffered_max'] / 1e3:.0f} kB)")
            gone = after["disconnects"]
        drows.append((
            r["scenario"], r["server"], f"{r['connected']['ok']:,} in {r['connected']['seconds']:.1f} s"
            + (f", failed {r['connected']['errors']}" if r["connected"]["errors"] else ""),
            f"{r['behind_max'] * 1000:.0f}", f"{r['drain_s']:.1f}", fmt_ms(rep["p90"]), fmt_ms(rep["p999"]),
            f"{rep['min_per_client']}–{rep['max_per_client']} of {r['sent']}",
            rep["batch_frames"], server_side,
            f"{r['kernel_start']:.0f} → {r['kernel_end']:.0f} ({r['kernel_peak']:.0f})",
            ", ".join(f"{k}: {v}" for k, v in gone.items()) or "-",
            ", ".join(f"{k}: {v}" for k, v in rep["closed"].items()) or "-",
        ))
    print(table(["scenario", "server", "connected", "injector late ms", "drain s", "p90 ms", "p99.9 ms",
                 "per reading client", "batch frames", "server side at the end",
                 "kernel TCP buffers MB start → end (peak)", "server saw disconnects",
                 "clients saw closes"], drows, left=2))
    for r in results:
        if r["report"]["order_errors"]:
            print(f"\nWARNING: {r['scenario']} on {r['server']}: {r['report']['order_errors']} messages out of order")
        warn = r["server_warnings"]
        if warn:
            print(f"\n{r['server']} stderr in {r['scenario']} (last 1,500 chars):\n{warn[-1500:]}")
    print(f"\n(total {time.monotonic() - started:.0f} s)")

    if args.profile and "service" in kinds:
        with tempfile.TemporaryDirectory(prefix="bench-fanout-prof-") as tmp:
            path = Path(tmp) / "service.prof"
            print("\nprofiling the service in the 1000 scenario ...", file=sys.stderr)
            r = run_scenario("service", "1000", SCENARIOS["1000"], args.rate, args.duration, args.drain_timeout,
                             args.env, profile=path)
            raw: dict[Any, Any] = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
            text, total = profile_tables(raw, args.profile_top, exclude=("'poll' of 'select.epoll'",))
            print(f"\ncProfile of the service process, 1,000 clients × {args.rate:g} msgs/s for {args.duration:g} s "
                  f"({r['report']['received']:,} messages delivered under the profiler, p99 "
                  f"{fmt_ms(r['report']['p99']):,.0f} ms); {total:.1f} s of CPU counted, idle epoll waits left out:")
            print()
            print(text)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        _stop_all()
