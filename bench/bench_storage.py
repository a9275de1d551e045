"""Trade rows/s into SQLite and MariaDB: the real DB writer actor (batched upserts) beside the
store alone with large batches and row-at-a-time writes, in one run.

    .venv/bin/python bench/bench_storage.py [--rows 200000] [--single 3000] [--batch N] [--repeat 3]
                                            [--no-mariadb]

- **writer actor**: ``StoreTrade`` messages delivered (``deliver()``, as the pipeline actors do)
  into the inbox of a real DB writer under ``run_supervisor``, with the service's DB_* defaults
  (``--batch`` overrides DB_BATCH_ROWS); timed from the first message sent to the last row
  committed (``DbStats.rows_written``).  On MariaDB also with ``?write_connections=1``: large
  batches on one connection, as before they were spread over two.
- **store, N-row batches**: ``Store.write`` of ready-made ``TradeRow`` batches, one after the other.
- **row at a time**: ``Store.write`` of one row at a time (one transaction, one crossing each).

Every run starts from an empty database (a fresh SQLite file, or a fresh ``pmi_bench_*`` MariaDB
database, dropped afterwards) and ends by counting the rows in ``trades``: a run that did not
store every row fails the bench.  The variants run ``--repeat`` times, interleaved; the table
shows the best and the median run, and the CPU seconds of this process, of ``mariadbd`` and of
everything else on the machine during the median run (other workloads, and the kernel writing
back the files the run wrote: another workload busy = a low figure).

MariaDB: 127.0.0.1:3306 as root with an empty password (``scripts/ensure-mariadb.sh``).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import os
import platform
import secrets
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import attrs
import trio
import trio_asyncio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loguru import logger  # noqa: E402

from actors.db_writer import DbStats, StoreTrade, db_writer_actor  # noqa: E402
from config import DatabaseUrl, Settings, parse_database_url  # noqa: E402
from protocols.polymarket import Trade  # noqa: E402
from storage import TradeRow, WriteBatch, open_store  # noqa: E402
from supervision import ChildSpec, Inbox, SupervisorSpec, deliver, run_supervisor  # noqa: E402

_DEFAULTS = attrs.fields(Settings)
DEFAULT_BATCH_ROWS: int = _DEFAULTS.db_batch_rows.default
DEFAULT_BATCH_SECONDS: float = _DEFAULTS.db_batch_seconds.default
DEFAULT_MEMORY_LIMIT_ROWS: int = _DEFAULTS.db_memory_limit_rows.default
#: The writer's inbox in this bench (the service's holds 4,096 messages: actors/_service.py).
INBOX_SIZE = 8192


def make_trade(i: int) -> Trade:
    h = hashlib.sha1(str(i).encode()).hexdigest()
    return Trade(trade_id=h[:20], fill_key=h[20:40], condition_id="0x" + hashlib.sha1(str(i % 200).encode()).hexdigest(),
                 asset_id=str(10**70 + i % 400), side="BUY" if i % 2 else "SELL", outcome="Yes", outcome_index=0,
                 price=0.42, size=5000.0, notional=2100.0, timestamp=1_760_000_000.0 + i, transaction_hash="0x" + h * 2,
                 wallet="0x" + hashlib.sha1(str(i % 500).encode()).hexdigest(), trader="bench", title="Bench?",
                 slug="bench", event_slug="bench", source="rtds.orders_matched")


# -- CPU accounting (Linux /proc; "-" elsewhere) -----------------------------------------------------


def _ticks(path: str) -> int | None:
    try:
        fields = Path(path).read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, IndexError, ValueError):
        return None


def _machine_busy() -> int | None:
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    return sum(values) - values[3] - (values[4] if len(values) > 4 else 0)  # minus idle and iowait


def _mysqld_pid() -> int | None:
    for path in ("/run/mysqld/mysqld.pid", "/var/run/mysqld/mysqld.pid"):
        try:
            return int(Path(path).read_text().strip())
        except (OSError, ValueError):
            continue
    return None


@attrs.define
class CpuSample:
    ours: int | None
    server: int | None
    machine: int | None

    @classmethod
    def now(cls) -> CpuSample:
        pid = _mysqld_pid()
        return cls(_ticks("/proc/self/stat"), _ticks(f"/proc/{pid}/stat") if pid else None, _machine_busy())

    def since(self, start: CpuSample) -> tuple[float | None, float | None, float | None]:
        """CPU seconds used by this process, by mariadbd and by everything else since ``start``."""
        hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

        def delta(a: int | None, b: int | None) -> float | None:
            return None if a is None or b is None else (a - b) / hz

        ours, server, machine = delta(self.ours, start.ours), delta(self.server, start.server), \
            delta(self.machine, start.machine)
        other = None if machine is None or ours is None else max(0.0, machine - ours - (server or 0.0))
        return ours, server, other


@attrs.define
class Run:
    rows: int
    seconds: float
    cpu: tuple[float | None, float | None, float | None]
    journaled: int = 0

    @property
    def rate(self) -> float:
        return self.rows / self.seconds


# -- the variants ------------------------------------------------------------------------------------


async def through_writer(url: DatabaseUrl, trades: list[Trade], batch: int, workdir: Path) -> Run:
    stats = DbStats()
    inbox: Inbox[object] = Inbox("db_writer", INBOX_SIZE)
    spec = ChildSpec(id="db_writer", inbox=inbox, shutdown=60,
                     run=db_writer_actor(url, stats, batch_rows=batch, batch_seconds=DEFAULT_BATCH_SECONDS,
                                         memory_limit_rows=DEFAULT_MEMORY_LIMIT_ROWS,
                                         journal_path=workdir / f"{secrets.token_hex(4)}.journal.jsonl",
                                         flush_timeout=50))
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(functools.partial(run_supervisor, SupervisorSpec(), [spec], stop=stop))
        while not stats.db_up:
            await trio.sleep(0.01)
        cpu = CpuSample.now()
        start = time.perf_counter()
        for trade in trades:
            await deliver(inbox.send_channel, StoreTrade(trade, is_whale=False))
        while stats.rows_written < len(trades):
            await trio.sleep(0.002)
        elapsed = time.perf_counter() - start
        used = CpuSample.now().since(cpu)
        stop.set()
    return Run(len(trades), elapsed, used, stats.rows_journaled)


async def direct(url: DatabaseUrl, trades: list[Trade], batch: int) -> Run:
    rows = [TradeRow.from_trade(t, is_whale=False) for t in trades]
    async with open_store(url) as store:
        await store.migrate()
        cpu = CpuSample.now()
        start = time.perf_counter()
        for i in range(0, len(rows), batch):
            await store.write(WriteBatch(trades=rows[i:i + batch]))
        elapsed = time.perf_counter() - start
        return Run(len(rows), elapsed, CpuSample.now().since(cpu))


async def count_trades(url: DatabaseUrl) -> int:
    async with open_store(url) as store:
        return await store.count("trades")


async def _admin(sql: str) -> str:
    import asyncmy

    async def run() -> str:
        conn = await asyncmy.connect(host="127.0.0.1", port=3306, user="root", password="")
        try:
            async with conn.cursor() as cur:
                await cur.execute(sql)
                row = await cur.fetchone()
                return str(row[0]) if row else ""
        finally:
            conn.close()

    async with trio_asyncio.open_loop() as loop:
        result: str = await trio_asyncio.aio_as_trio(run, loop=loop)()
        return result


# -- the run ---------------------------------------------------------------------------------------


def _cpu_text(cpu: tuple[float | None, float | None, float | None], mariadb: bool) -> str:
    ours, server, other = cpu

    def f(v: float | None) -> str:
        return "-" if v is None else f"{v:.2f}"

    return f"{f(ours)} / {f(server) if mariadb else '-'} / {f(other)}"


async def main(args: argparse.Namespace) -> None:
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    workdir = Path(tempfile.mkdtemp(prefix="pmi-bench-"))
    trades = [make_trade(i) for i in range(max(args.rows, args.single))]
    backends = ["SQLite"] + ([] if args.no_mariadb else ["MariaDB"])
    server = "" if args.no_mariadb else await _admin("SELECT VERSION()")
    # (variant, rows, measure, MariaDB URL query); "1 write connection" is the MySQL store without
    # spreading a batch over two connections (its behaviour before that came in), for comparison
    variants: list[tuple[str, int, Callable[[DatabaseUrl], Awaitable[Run]], str | None]] = [
        ("writer actor", args.rows, lambda url: through_writer(url, trades[:args.rows], args.batch, workdir), ""),
        ("writer actor, 1 write connection", args.rows,
         lambda url: through_writer(url, trades[:args.rows], args.batch, workdir), "?write_connections=1"),
        (f"store, {args.batch:,}-row batches", args.rows, lambda url: direct(url, trades[:args.rows], args.batch), ""),
        ("row at a time", args.single, lambda url: direct(url, trades[:args.single], 1), ""),
    ]
    runs: dict[tuple[str, str], list[Run]] = {}
    for round_ in range(1, args.repeat + 1):
        for name in backends:
            for variant, n, measure, query in variants:
                if name == "SQLite" and query:
                    continue  # a MySQL option
                if name == "SQLite":
                    url = DatabaseUrl(kind="sqlite", path=str(workdir / f"{secrets.token_hex(4)}.db"))
                    db = None
                else:
                    db = f"pmi_bench_{secrets.token_hex(4)}"
                    await _admin(f"CREATE DATABASE {db} CHARACTER SET utf8mb4")
                    url = parse_database_url(f"mysql://root@127.0.0.1:3306/{db}{query}")
                try:
                    run = await measure(url)
                    stored = await count_trades(url)
                finally:
                    if db is not None:
                        await _admin(f"DROP DATABASE IF EXISTS {db}")
                    else:
                        for suffix in ("", "-wal", "-shm"):
                            Path(url.path + suffix).unlink(missing_ok=True)
                if stored != n:
                    raise SystemExit(f"{name} {variant}: {stored:,} rows in trades after the run, expected {n:,}")
                runs.setdefault((name, variant), []).append(run)
                print(f"  [{round_}/{args.repeat}] {name:8} {variant:33} {n:>8,} rows  {run.rate:>10,.0f} rows/s  "
                      f"(counted {stored:,} in trades; CPU s bench/mariadbd/others "
                      f"{_cpu_text(run.cpu, name == 'MariaDB')})", file=sys.stderr)

    print(f"\n{time.strftime('%Y-%m-%d %H:%M')} | trade rows (12 columns, 4 secondary indexes, random ids) into an "
          f"empty table | {os.cpu_count()} CPUs, Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}"
          + (f", MariaDB {server}" if server else "")
          + f" | DB_BATCH_ROWS {args.batch:,}, best and median of {args.repeat}")
    print("| database | how | rows | rows/s (best) | rows/s (median) | × row-at-a-time (median) "
          "| CPU s of the median run: bench / mariadbd / others |")
    print("|---|---|---:|---:|---:|---:|---:|")
    single = {name: statistics.median(r.rate for r in rs) for (name, variant), rs in runs.items()
              if variant == "row at a time"}
    for (name, variant), rs in runs.items():
        rates = sorted(r.rate for r in rs)
        median_run = sorted(rs, key=lambda r: r.rate)[len(rs) // 2]
        median = statistics.median(rates)
        journaled = sum(r.journaled for r in rs) / len(rs)
        note = f" ({journaled:,.0f} rows per run via the journal)" if journaled else ""
        print(f"| {name} | {variant}{note} | {rs[0].rows:,} | {rates[-1]:,.0f} | {median:,.0f} | "
              f"{median / single[name]:.1f} | {_cpu_text(median_run.cpu, name == 'MariaDB')} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--single", type=int, default=3_000, help="rows for the row-at-a-time baseline")
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH_ROWS,
                        help=f"rows per transaction (default: DB_BATCH_ROWS's default, {DEFAULT_BATCH_ROWS:,})")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each variant, interleaved")
    parser.add_argument("--no-mariadb", action="store_true")
    trio.run(main, parser.parse_args())
