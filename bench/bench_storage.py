"""Trade rows/s into SQLite and MariaDB: the real DB writer actor (batched upserts) beside
row-at-a-time writes, in one run.

    .venv/bin/python bench/bench_storage.py [--rows 200000] [--single 3000] [--batch 2000] [--no-mariadb]

MariaDB: 127.0.0.1:3306 as root with an empty password (``scripts/ensure-mariadb.sh``); each run
uses a fresh ``pmi_bench_*`` database, dropped afterwards.  Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import secrets
import sys
import tempfile
import time
from pathlib import Path

import trio
import trio_asyncio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loguru import logger  # noqa: E402

from actors.db_writer import DbStats, StoreTrade, db_writer_actor  # noqa: E402
from config import DatabaseUrl, parse_database_url  # noqa: E402
from protocols.polymarket import Trade  # noqa: E402
from storage import TradeRow, WriteBatch, open_store  # noqa: E402
from supervision import ChildSpec, Inbox, SupervisorSpec, deliver, run_supervisor  # noqa: E402


def make_trade(i: int) -> Trade:
    h = hashlib.sha1(str(i).encode()).hexdigest()
    return Trade(trade_id=h[:20], fill_key=h[20:40], condition_id="0x" + hashlib.sha1(str(i % 200).encode()).hexdigest(),
                 asset_id=str(10**70 + i % 400), side="BUY" if i % 2 else "SELL", outcome="Yes", outcome_index=0,
                 price=0.42, size=5000.0, notional=2100.0, timestamp=1_760_000_000.0 + i, transaction_hash="0x" + h * 2,
                 wallet="0x" + hashlib.sha1(str(i % 500).encode()).hexdigest(), trader="bench", title="Bench?",
                 slug="bench", event_slug="bench", source="rtds.orders_matched")


async def through_writer(url: DatabaseUrl, trades: list[Trade], batch: int, workdir: Path) -> float:
    stats = DbStats()
    inbox: Inbox[object] = Inbox("db_writer", 8192)
    spec = ChildSpec(id="db_writer", inbox=inbox, shutdown=60,
                     run=db_writer_actor(url, stats, batch_rows=batch, batch_seconds=0.2,
                                         journal_path=workdir / "bench.journal.jsonl", flush_timeout=50))
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(functools.partial(run_supervisor, SupervisorSpec(), [spec], stop=stop))
        while not stats.db_up:
            await trio.sleep(0.01)
        start = time.perf_counter()
        for trade in trades:
            await deliver(inbox.send_channel, StoreTrade(trade, is_whale=False))
        while stats.rows_written < len(trades):
            await trio.sleep(0.002)
        elapsed = time.perf_counter() - start
        stop.set()
    return len(trades) / elapsed


async def direct(url: DatabaseUrl, trades: list[Trade], batch: int) -> float:
    rows = [TradeRow.from_trade(t, is_whale=False) for t in trades]
    async with open_store(url) as store:
        await store.migrate()
        start = time.perf_counter()
        for i in range(0, len(rows), batch):
            await store.write(WriteBatch(trades=rows[i:i + batch]))
        return len(rows) / (time.perf_counter() - start)


async def _admin(sql: str) -> None:
    import asyncmy

    async def run() -> None:
        conn = await asyncmy.connect(host="127.0.0.1", port=3306, user="root", password="")
        try:
            async with conn.cursor() as cur:
                await cur.execute(sql)
        finally:
            conn.close()

    async with trio_asyncio.open_loop() as loop:
        await trio_asyncio.aio_as_trio(run, loop=loop)()


async def main(args: argparse.Namespace) -> None:
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    workdir = Path(tempfile.mkdtemp(prefix="pmi-bench-"))
    backends: list[tuple[str, object]] = [("SQLite", None)]
    if not args.no_mariadb:
        backends.append(("MariaDB", None))
    rows_out = []
    for name, _ in backends:
        for variant in ("writer actor", f"store, {args.batch}-row batches", "row at a time"):
            if name == "SQLite":
                url = DatabaseUrl(kind="sqlite", path=str(workdir / f"{secrets.token_hex(4)}.db"))
                db = None
            else:
                db = f"pmi_bench_{secrets.token_hex(4)}"
                await _admin(f"CREATE DATABASE {db} CHARACTER SET utf8mb4")
                url = parse_database_url(f"mysql://root@127.0.0.1:3306/{db}")
            try:
                if variant == "writer actor":
                    n = args.rows
                    rate = await through_writer(url, [make_trade(i) for i in range(n)], args.batch, workdir)
                elif variant == "row at a time":
                    n = args.single
                    rate = await direct(url, [make_trade(i) for i in range(n)], 1)
                else:
                    n = args.rows
                    rate = await direct(url, [make_trade(i) for i in range(n)], args.batch)
            finally:
                if db is not None:
                    await _admin(f"DROP DATABASE IF EXISTS {db}")
            rows_out.append((name, variant, n, rate))
            print(f"  {name:8} {variant:28} {n:>8,} rows  {rate:>10,.0f} rows/s", file=sys.stderr)
    print(f"\n{time.strftime('%Y-%m-%d %H:%M')} | trade rows with 4 indexes, random ids")
    print("| database | how | rows | rows/s | × row-at-a-time |")
    print("|---|---|---:|---:|---:|")
    single = {name: rate for name, variant, _, rate in rows_out if variant == "row at a time"}
    for name, variant, n, rate in rows_out:
        print(f"| {name} | {variant} | {n:,} | {rate:,.0f} | {rate / single[name]:.1f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--single", type=int, default=3_000, help="rows for the row-at-a-time baseline")
    parser.add_argument("--batch", type=int, default=2_000)
    parser.add_argument("--no-mariadb", action="store_true")
    trio.run(main, parser.parse_args())
