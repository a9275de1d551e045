"""The service stores what it sees: the Nobel replay into SQLite through the whole tree."""

from __future__ import annotations

import functools
from pathlib import Path

import trio

from actors import ServiceOptions, build_service
from config import load_settings, parse_database_url
from storage import open_store
from supervision import run_supervisor
from tests.frontend._client import NOBEL_CSV, OFFLINE_ENV, SAMPLE


def distinct_rows() -> list[dict[str, str]]:
    import csv

    rows: dict[tuple[str, ...], dict[str, str]] = {}
    with open(NOBEL_CSV, newline="") as f:
        for row in csv.DictReader(f):
            rows[tuple(row.values())] = row
    return list(rows.values())


async def test_replay_stores_every_kept_trade_once_and_marks_whales(tmp_path: Path) -> None:
    db = tmp_path / "insights.db"
    env = {**OFFLINE_ENV, "DATABASE_URL": f"sqlite:///{db}", "DB_JOURNAL_PATH": str(tmp_path / "j.jsonl"),
           "WHALE_TRADE_THRESHOLD": "10000", "IGNORE_PRICE_THRESHOLD": "0.05"}
    svc = build_service(load_settings(env, env_file=None), ServiceOptions(seed=11, replay=SAMPLE, speed=0))
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(functools.partial(run_supervisor, svc.spec, svc.children, registry=svc.registry,
                                              stop=stop))
        with trio.fail_after(60):
            await svc.replay_state.done.wait()  # type: ignore[union-attr]
            while svc.filter_stats.received_total < 1500 or svc.inboxes["whale_watcher"].pending():
                await trio.sleep(0.05)
        stop.set()   # graceful: the DB writer is stopped last and flushes what it holds
    kept = [r for r in distinct_rows() if float(r["size"]) * float(r["price"]) >= 1000]
    whales = [r for r in kept if float(r["size"]) * float(r["price"]) >= 10000]
    assert (len(kept), len(whales)) == (95, 13)
    assert svc.db_stats.rows_written >= len(kept)
    async with open_store(parse_database_url(f"sqlite:///{db}")) as store:
        assert await store.count("trades") == len(kept)
        assert await store.count("markets") == 20
        priced = [m for m in [await store.get_market(cid) for cid in svc.directory.markets]
                  if m is not None and m.last_price is not None]
        stored_whales = await store.recent_whales(100)
    assert len(stored_whales) == len(whales)
    assert {w.transaction_hash for w in stored_whales} == {r["transactionHash"] for r in whales}
    assert not (tmp_path / "j.jsonl").exists(), "nothing left in the journal"
    assert priced, "market state stores the last price of the markets it updates"
    import orjson

    last_update = {}
    for entry in svc.hub.ring:
        if entry.type == "market_update":
            data = orjson.loads(entry.frame)["data"]
            last_update[data["condition_id"]] = data["price"]
    for market in priced:   # the stored price is the one the last market_update carried
        assert abs(market.last_price - last_update[market.condition_id]) < 1e-6
