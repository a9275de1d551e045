"""The store's behaviour, identical on SQLite and MariaDB (``db_url`` runs each test on both)."""

from __future__ import annotations

import math
import time

import attrs
import pytest
import trio

from config import DatabaseUrl, parse_database_url
from storage import (
    LATEST_VERSION,
    MERGE_PARAMS,
    MarketRow,
    StoreDataError,
    StoreUnavailable,
    TradeRow,
    WriteBatch,
    check_url,
    open_store,
    row_from_params,
    trade_params,
)
from storage._sqlite import ROWS_PER_STATEMENT, _chunk_sizes

from ._data import T0, condition, market_info, market_row, model_forecast, swarm_forecast, trade, trade_row
from .conftest import mysql_url


async def test_migrate_creates_the_schema_and_rerunning_is_a_no_op(db_url: DatabaseUrl) -> None:
    async with open_store(db_url) as store:
        assert await store.schema_version() == 0
        assert await store.migrate() == [1, 2, 3]
        assert await store.schema_version() == LATEST_VERSION == 3
        assert await store.migrate() == []
        for table in ("markets", "trades", "model_forecasts", "swarm_forecasts", "alert_deliveries"):
            assert await store.count(table) == 0
    async with open_store(db_url) as store:  # a new connection, as after a restart
        assert await store.migrate() == []


async def test_rows_read_back_as_written(db_url: DatabaseUrl) -> None:
    batch = WriteBatch(markets=[market_row(1), market_row(2, last_price=None)],
                       trades=[trade_row(1), trade_row(2, whale=True)],
                       model_forecasts=[model_forecast(1), model_forecast(2, ok=False)],
                       swarm_forecasts=[swarm_forecast(1)])
    async with open_store(db_url) as store:
        await store.migrate()
        await store.write(batch)
        assert [await store.count(t) for t in ("markets", "trades", "model_forecasts", "swarm_forecasts")] == \
            [2, 2, 2, 1]
        assert await store.get_trade(trade_row(1).trade_id) == trade_row(1)
        assert await store.get_trade(trade_row(2).trade_id) == trade_row(2, whale=True)
        assert await store.get_trade("nope") is None
        assert await store.get_market(condition(1)) == market_row(1)
        assert await store.get_market(condition(2)) == market_row(2, last_price=None)
        assert await store.keys("model_forecasts") == {"req-1", "req-2"}
        assert await store.keys("swarm_forecasts") == {"fc-1"}
        with pytest.raises(ValueError, match="unknown table"):
            await store.count("users; DROP TABLE trades")


def test_rows_from_protocol_objects() -> None:
    t = trade(5)
    row = TradeRow.from_trade(t, is_whale=True)
    assert (row.trade_id, row.condition_id, row.asset_id, row.outcome, row.side, row.wallet, row.transaction_hash) \
        == (t.trade_id, t.condition_id, t.asset_id, t.outcome, t.side, t.wallet, t.transaction_hash)
    assert (row.price, row.size, row.notional, row.traded_at, row.is_whale) == \
        (t.price, t.size, t.notional, t.timestamp, True)
    info = market_info(3)
    m = MarketRow.from_market(info, last_price=0.55, updated_at=T0)
    assert (m.condition_id, m.question, m.slug, m.event_slug, m.category, m.tags, m.end_date, m.volume_24h) == \
        (info.condition_id, info.question, info.slug, info.event_slug, info.category, info.tags, info.end_date,
         info.volume_24h)
    assert (m.last_price, m.updated_at) == (0.55, T0)
    with pytest.raises(ValueError):
        attrs.evolve(row, side="HOLD")


def test_parameters_form_matches_the_rows() -> None:
    for whale in (False, True):
        assert trade_params(trade(5), whale) == TradeRow.from_trade(trade(5), is_whale=whale).params()
    with pytest.raises(ValueError, match="side"):
        trade_params(attrs.evolve(trade(5), side="HOLD"), False)
    for row in (trade_row(1, whale=True), market_row(2), market_row(3, last_price=None), model_forecast(4),
                model_forecast(5, ok=False), swarm_forecast(6)):
        assert row_from_params(row.TABLE, row.params()) == row
    # merging parameters is merging rows
    pairs = [(trade_row(1), trade_row(1, whale=True)), (trade_row(1, whale=True), trade_row(1)),
             (trade_row(1), trade_row(1)),
             (market_row(1, last_price=0.4), market_row(1, last_price=None, question="B?")),
             (market_row(1, last_price=None), market_row(1, last_price=0.6, question="C?")),
             (market_row(1, last_price=0.4), market_row(1, last_price=0.5)),
             (model_forecast(1), attrs.evolve(model_forecast(1), probability=0.01)),
             (swarm_forecast(1), attrs.evolve(swarm_forecast(1), probability=0.01))]
    for old, new in pairs:
        merged = MERGE_PARAMS[old.TABLE](old.params(), new.params())
        assert merged == old.merged_with(new).params(), (old, new)  # type: ignore[arg-type]


def test_sqlite_statement_sizes() -> None:
    assert _chunk_sizes(0, 1024) == []
    assert _chunk_sizes(1, 1024) == [1]
    assert _chunk_sizes(2048, 1024) == [1024, 1024]
    assert _chunk_sizes(2000, 1024) == [1024, 512, 256, 128, 64, 16]
    for n in (1, 7, 1023, 1025, 5000, 12_345):
        sizes = _chunk_sizes(n, ROWS_PER_STATEMENT)
        assert sum(sizes) == n and sizes == sorted(sizes, reverse=True)
        assert all(size & (size - 1) == 0 and size <= ROWS_PER_STATEMENT for size in sizes)  # powers of two


async def test_write_params_is_write(db_url: DatabaseUrl) -> None:
    """The parameters form writes what the row form writes, with the same checks, and a key
    repeated within one (multi-row) statement is merged as if written row by row."""
    async with open_store(db_url) as store:
        await store.migrate()
        await store.write_params({
            "trades": [trade_row(i, whale=i % 5 == 0).params() for i in range(3000)]
            + [trade_row(7, whale=True).params(), trade_row(10).params()],
            "markets": [market_row(1, last_price=0.4).params(), market_row(2).params(),
                        market_row(1, last_price=None, question="B?").params()],
            "model_forecasts": [model_forecast(1).params()], "swarm_forecasts": [swarm_forecast(1).params()]})
        assert await store.count("trades") == 3000
        assert {t.trade_id for t in await store.recent_whales(10_000)} == \
            {trade_row(i).trade_id for i in range(3000) if i % 5 == 0 or i == 7}
        assert await store.get_market(condition(1)) == market_row(1, last_price=0.4, question="B?")
        assert await store.count("model_forecasts") == 1 and await store.count("swarm_forecasts") == 1
        with pytest.raises(StoreDataError):
            await store.write_params({"trades": [trade_row(5000).params(), attrs.evolve(
                trade_row(5001), notional=math.nan).params()]})
        with pytest.raises(StoreDataError):
            await store.write_params({"markets": [attrs.evolve(market_row(9), end_date=math.inf).params()]})
        with pytest.raises(ValueError, match="unknown table"):
            await store.write_params({"users": [("x",)]})
        assert await store.count("trades") == 3000 and await store.count("markets") == 2


async def test_writing_again_changes_nothing(db_url: DatabaseUrl) -> None:
    batch = WriteBatch(markets=[market_row(1)], trades=[trade_row(i) for i in range(50)],
                       model_forecasts=[model_forecast(1)], swarm_forecasts=[swarm_forecast(1)])
    async with open_store(db_url) as store:
        await store.migrate()
        for _ in range(3):
            await store.write(batch)
        assert await store.count("trades") == 50
        assert await store.count("markets") == 1
        assert await store.count("model_forecasts") == 1
        assert await store.count("swarm_forecasts") == 1


async def test_whale_flag_only_goes_from_false_to_true(db_url: DatabaseUrl) -> None:
    async with open_store(db_url) as store:
        await store.migrate()
        await store.write(WriteBatch(trades=[trade_row(1), trade_row(2, whale=True)]))
        await store.write(WriteBatch(trades=[trade_row(1, whale=True), trade_row(2)]))
        # within one batch too, in either order
        await store.write(WriteBatch(trades=[trade_row(3), trade_row(3, whale=True), trade_row(4, whale=True),
                                             trade_row(4)]))
        for i in (1, 2, 3, 4):
            got = await store.get_trade(trade_row(i).trade_id)
            assert got is not None and got.is_whale, i
        assert [t.trade_id for t in await store.recent_whales(10)] == [trade_row(i).trade_id for i in (4, 3, 2, 1)]


async def test_market_last_write_wins_but_an_unknown_price_keeps_the_stored_one(db_url: DatabaseUrl) -> None:
    async with open_store(db_url) as store:
        await store.migrate()
        await store.write(WriteBatch(markets=[market_row(1, last_price=0.4, question="A?", updated_at=T0)]))
        await store.write(WriteBatch(markets=[market_row(1, last_price=None, question="B?", volume=99.0,
                                                         updated_at=T0 + 1)]))
        got = await store.get_market(condition(1))
        assert got == market_row(1, last_price=0.4, question="B?", volume=99.0, updated_at=T0 + 1)
        await store.write(WriteBatch(markets=[market_row(1, last_price=0.7, question="C?", updated_at=T0 + 2),
                                              market_row(1, last_price=0.8, question="D?", updated_at=T0 + 3)]))
        got = await store.get_market(condition(1))
        assert got is not None and (got.question, got.last_price, got.updated_at) == ("D?", 0.8, T0 + 3)
        assert await store.count("markets") == 1


async def test_forecasts_are_written_once_per_id(db_url: DatabaseUrl) -> None:
    async with open_store(db_url) as store:
        await store.migrate()
        await store.write(WriteBatch(model_forecasts=[model_forecast(1)], swarm_forecasts=[swarm_forecast(1)]))
        await store.write(WriteBatch(
            model_forecasts=[attrs.evolve(model_forecast(1), probability=0.01), model_forecast(2)],
            swarm_forecasts=[attrs.evolve(swarm_forecast(1), probability=0.01), swarm_forecast(2)]))
        assert await store.count("model_forecasts") == 2
        assert await store.count("swarm_forecasts") == 2
        assert await store.keys("model_forecasts") == {"req-1", "req-2"}


async def test_recent_whales_newest_first_and_limited(db_url: DatabaseUrl) -> None:
    async with open_store(db_url) as store:
        await store.migrate()
        await store.write(WriteBatch(trades=[trade_row(i, whale=i % 3 == 0) for i in range(30)]))
        whales = await store.recent_whales(4)
        assert [w.trade_id for w in whales] == [trade_row(i).trade_id for i in (27, 24, 21, 18)]
        assert all(w.is_whale for w in whales)
        assert len(await store.recent_whales(100)) == 10


async def test_a_refused_row_fails_the_whole_batch_the_same_way(db_url: DatabaseUrl) -> None:
    too_long = attrs.evolve(trade_row(2), trade_id="x" * 65)
    nan = attrs.evolve(market_row(2), volume_24h=math.nan)
    infinite = attrs.evolve(trade_row(4), price=math.inf)
    async with open_store(db_url) as store:
        await store.migrate()
        with pytest.raises(StoreDataError):
            await store.write(WriteBatch(markets=[market_row(1)], trades=[trade_row(1), too_long]))
        with pytest.raises(StoreDataError):
            await store.write(WriteBatch(markets=[nan], trades=[trade_row(3)]))
        with pytest.raises(StoreDataError):
            await store.write(WriteBatch(trades=[trade_row(3), infinite]))
        with pytest.raises(StoreDataError, match="question .* longer than 65,535 bytes"):
            await store.write(WriteBatch(markets=[market_row(3, question="é" * 40_000)]))
        assert await store.count("trades") == 0  # one transaction: nothing of either batch
        assert await store.count("markets") == 0
        await store.write(WriteBatch(trades=[trade_row(1)]))  # the store is still usable
        assert await store.count("trades") == 1


async def test_bulk_write_rate(db_url: DatabaseUrl) -> None:
    """Informal: prints rows/s for 40,000 trades in batches of 2,000 (the bars live in bench/)."""
    rows = [trade_row(i, whale=i % 10 == 0, market=i % 50) for i in range(40_000)]
    async with open_store(db_url) as store:
        await store.migrate()
        start = time.perf_counter()
        for k in range(0, len(rows), 2000):
            await store.write(WriteBatch(trades=rows[k:k + 2000]))
        elapsed = time.perf_counter() - start
        assert await store.count("trades") == 40_000
    print(f"\n{db_url.kind}: {len(rows) / elapsed:,.0f} trade rows/s")


async def test_closed_store_is_unavailable(db_url: DatabaseUrl) -> None:
    async with open_store(db_url) as store:
        await store.migrate()
    with pytest.raises(StoreUnavailable):
        await store.count("trades")


async def test_sqlite_default_path_and_unopenable_file(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    async with open_store(None) as store:
        await store.migrate()
    assert (tmp_path / "polymarket_insights.db").exists()
    async with open_store(None, default_sqlite_path="other.db") as store:
        assert store.description == "sqlite:///other.db"
    with pytest.raises(StoreUnavailable, match="cannot open SQLite database"):
        async with open_store(DatabaseUrl(kind="sqlite", path=str(tmp_path / "missing" / "dir" / "x.db"))):
            pass


async def test_mysql_unreachable_or_misconfigured_fails_fast_with_one_clear_error(mysql_database: str) -> None:
    with trio.fail_after(5):
        with pytest.raises(StoreUnavailable, match=r"cannot connect to mysql://root@127.0.0.1:1/x"):
            async with open_store(parse_database_url("mysql://root@127.0.0.1:1/x")):
                pass
        with pytest.raises(StoreUnavailable, match="1049"):  # unknown database
            async with open_store(mysql_url("pmi_no_such_database")):
                pass
        with pytest.raises(StoreUnavailable, match="Access denied|1045|1698"):
            async with open_store(parse_database_url(f"mysql://nobody:wrong@127.0.0.1:3306/{mysql_database}")):
                pass
        bad = mysql_url(mysql_database, query="?ssl=perhaps")
        with pytest.raises(ValueError, match="ssl='perhaps'"):
            check_url(bad)
        with pytest.raises(StoreUnavailable, match="invalid database settings.*ssl='perhaps'"):
            async with open_store(bad):
                pass
        with pytest.raises(StoreUnavailable, match="invalid database settings"):
            async with open_store(mysql_url(mysql_database, query="?ssl_ca=/nonexistent/ca.pem")):
                pass
        # the test server has no TLS: asking for it fails with a hint
        with pytest.raises(StoreUnavailable, match="does the server have TLS enabled"):
            async with open_store(mysql_url(mysql_database, query="?ssl=true&ssl_verify=false")):
                pass
        # the options that work: explicit pool size and timeout, TLS off
        async with open_store(mysql_url(mysql_database, query="?pool_size=2&connect_timeout=3&ssl=false")) as store:
            assert await store.migrate() == [1, 2, 3]
    check_url(None)
    check_url(mysql_url(mysql_database, query="?ssl=true&ssl_verify=false"))


async def test_a_batch_larger_than_one_packet_is_written(db_url: DatabaseUrl) -> None:
    """1,000 forecasts with 20 kB of reasoning each (20 MB) in one transaction: MySQL sends them
    in several executemany chunks (a bulk execute is one packet, max_allowed_packet is 16 MiB)."""
    rows = [attrs.evolve(model_forecast(i), reasoning="x" * 20_000, error="") for i in range(1000)]  # bulk-able
    async with open_store(db_url) as store:
        await store.migrate()
        await store.write(WriteBatch(model_forecasts=rows))
        assert await store.count("model_forecasts") == 1000
