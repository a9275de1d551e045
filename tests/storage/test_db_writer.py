"""The DB writer actor on SQLite and MariaDB: batching, outages, the journal, kills, shutdown.

Outages on MariaDB go through a fault-injecting TCP proxy (``tests/fakes/tcp_proxy.py``); on
SQLite, which cannot be unplugged, through a stand-in ``open_store`` (``Faults``).
Real time throughout (MariaDB sockets; short timeouts and backoff keep it quick).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import attrs
import orjson
import pytest
import trio

from actors import db_writer
from actors.db_writer import DbStats, StoreMarket, StoreTrade
from config import DatabaseUrl
from storage import open_store
from storage._mysql import SPREAD_MIN_ROWS
from supervision import ActorState
from tests.fakes.tcp_proxy import open_tcp_proxy

from ._data import condition, market_info, model_forecast, swarm_forecast, trade, trade_row
from ._writer import Faults, running_writer, wait_until
from .conftest import MARIADB_HOST, MARIADB_PORT, capture_logs, messages, mysql_url


def sqlite_url(tmp_path: Path) -> DatabaseUrl:
    return DatabaseUrl(kind="sqlite", path=str(tmp_path / "writer.db"))


async def contents(url: DatabaseUrl) -> tuple[set[str], set[str], int]:
    """(trade ids, whale trade ids, trade row count) in the database."""
    async with open_store(url) as store:
        whales = {t.trade_id for t in await store.recent_whales(1_000_000)}
        return await store.keys("trades"), whales, await store.count("trades")


def ids(numbers: range | list[int]) -> set[str]:
    return {trade(i).trade_id for i in numbers}


def down_lines(records: list[dict[str, Any]]) -> list[str]:
    return messages(records, lambda m: "unavailable" in m and m.startswith("database"))


def back_lines(records: list[dict[str, Any]]) -> list[str]:
    return messages(records, lambda m: " is back after " in m)


async def test_writes_every_kind_of_row_and_flushes_on_stop(db_url: DatabaseUrl, tmp_path: Path) -> None:
    async with running_writer(db_url, tmp_path, batch_rows=500) as writer:
        # connected first: a stop before the database is up journals instead (tested below)
        await wait_until(lambda: writer.stats.state == "up", what="connected")
        await writer.send([StoreMarket(market_info(i), last_price=0.5) for i in range(5)])
        await writer.send(StoreTrade(trade(i)) for i in range(3000))
        await writer.send(StoreTrade(trade(i), is_whale=True) for i in range(0, 3000, 10))
        await writer.send([model_forecast(i) for i in range(5)] + [model_forecast(0)])
        await writer.send([swarm_forecast(i) for i in range(5)] + [trade(5000), trade_row(5001, whale=True)])
        await writer.send([StoreMarket(market_info(0, question="changed?"))])  # no price: keeps 0.5
        await writer.stop()  # right away: the graceful stop flushes what is held
    stats = writer.stats
    assert stats.state == "up" and stats.schema_version == 3
    assert stats.rows_buffered == 0 and stats.journal_rows == 0 and not writer.journal_path.exists()
    assert stats.oldest_unwritten_at is None and stats.oldest_unwritten_age() == 0.0
    assert stats.retries == 0 and stats.rows_rejected == 0
    keys, whales, count = await contents(db_url)
    assert keys == ids(range(3000)) | ids([5000, 5001]) and count == 3002
    assert whales == ids(range(0, 3000, 10)) | ids([5001])
    async with open_store(db_url) as store:
        assert await store.count("markets") == 5
        assert await store.count("model_forecasts") == 5
        assert await store.count("swarm_forecasts") == 5
        market = await store.get_market(condition(0))
        assert market is not None and (market.question, market.last_price) == ("changed?", 0.5)


async def test_write_rate_through_the_writer(db_url: DatabaseUrl, tmp_path: Path) -> None:
    """Informal: prints rows/s from the first message sent to the last row committed."""
    n = 30_000
    messages_ = [StoreTrade(trade(i), is_whale=i % 10 == 0) for i in range(n)]
    async with running_writer(db_url, tmp_path, batch_rows=2000, batch_seconds=0.05, inbox_size=4096) as writer:
        await trio.sleep(0.2)  # connected and migrated
        start = time.perf_counter()
        await writer.send(messages_, within=30)
        await wait_until(lambda: writer.stats.rows_written >= n, timeout=30, what="every row written")
        elapsed = time.perf_counter() - start
    print(f"\n{db_url.kind} through the writer: {n / elapsed:,.0f} trade rows/s "
          f"({writer.stats.batches_written} batches)")
    assert (await contents(db_url))[2] == n


async def test_outage_cut_and_refused_goes_through_memory_and_journal(mysql_database: str, tmp_path: Path) -> None:
    async with open_tcp_proxy(MARIADB_HOST, MARIADB_PORT) as proxy:
        url = mysql_url(mysql_database, port=proxy.port)
        with capture_logs("INFO") as logs:
            async with running_writer(url, tmp_path, inbox_size=64, batch_rows=100, memory_limit_rows=300,
                                      write_timeout=2, connect_timeout=2) as writer:
                stats = writer.stats
                await writer.send(StoreTrade(trade(i)) for i in range(500))
                await wait_until(lambda: stats.rows_written >= 500, what="the first rows written")
                replayed_before = stats.rows_replayed  # (the 500 may have spilled while connecting)

                proxy.refuse()
                assert proxy.cut() >= 1
                # producers are never held up: 2,000 rows through a 64-message inbox
                await writer.send((StoreTrade(trade(i), is_whale=i % 7 == 0) for i in range(500, 2500)), within=5)
                await writer.send(StoreTrade(trade(i), is_whale=True) for i in range(0, 500, 50))
                await wait_until(lambda: stats.state == "down", what="the outage noticed")
                await writer.drained()
                assert stats.journal_rows > 0 and writer.journal_path.exists()
                assert stats.rows_buffered <= 300 + 100
                assert stats.journal_rows + stats.rows_buffered == 2000 + 10
                assert stats.oldest_unwritten_age() > 0 and stats.down_since is not None
                await trio.sleep(0.5)  # several retries, still one line
                assert stats.retries >= 3

                proxy.pass_through()
                await wait_until(lambda: stats.state == "up" and stats.rows_buffered == 0 and stats.journal_rows == 0
                                 and not writer.journal_path.exists(), timeout=20, what="the backlog written")
        assert len(down_lines(logs)) == 1, down_lines(logs)
        back = back_lines(logs)
        replayed = stats.rows_replayed - replayed_before
        assert len(back) == 1 and f"({replayed:,} replayed from the journal)" in back[0], back
        assert replayed > 0 and stats.outages == 1 and stats.down_since is None
        keys, whales, count = await contents(url)
        assert keys == ids(range(2500)) and count == 2500  # nothing lost, nothing twice
        assert whales == ids([i for i in range(500, 2500) if i % 7 == 0]) | ids(range(0, 500, 50))


async def test_stalled_database_times_out_and_recovers(mysql_database: str, tmp_path: Path) -> None:
    async with open_tcp_proxy(MARIADB_HOST, MARIADB_PORT) as proxy:
        url = mysql_url(mysql_database, port=proxy.port)
        async with running_writer(url, tmp_path, inbox_size=64, batch_rows=100, write_timeout=1,
                                  connect_timeout=1) as writer:
            await writer.send(StoreTrade(trade(i)) for i in range(100))
            await wait_until(lambda: writer.stats.rows_written >= 100)
            proxy.stall()  # connections stay open, nothing goes through
            await writer.send((StoreTrade(trade(i)) for i in range(100, 600)), within=5)
            await wait_until(lambda: writer.stats.state == "down", what="the stall noticed")
            assert "took more than 1 s" in (writer.stats.last_error or "") or "no answer" in (
                writer.stats.last_error or "")
            await writer.drained()
            proxy.pass_through()
            await wait_until(lambda: writer.stats.rows_buffered == 0 and writer.stats.state == "up",
                             timeout=15, what="the backlog written")
        keys, _, count = await contents(url)
        assert keys == ids(range(600)) and count == 600


async def test_unreachable_or_wrong_database_at_start_keeps_the_actor_running(mysql_database: str,
                                                                             tmp_path: Path) -> None:
    async with open_tcp_proxy(MARIADB_HOST, MARIADB_PORT) as proxy:
        proxy.refuse()
        url = mysql_url(mysql_database, port=proxy.port)
        with capture_logs("INFO") as logs:
            async with running_writer(url, tmp_path) as writer:
                assert writer.info.state is ActorState.RUNNING  # started without waiting for the database
                await writer.send(StoreTrade(trade(i)) for i in range(50))
                await wait_until(lambda: writer.stats.state == "down" and writer.stats.retries >= 3)
                assert writer.stats.rows_buffered == 50
                proxy.pass_through()
                await wait_until(lambda: writer.stats.rows_written == 50 and writer.stats.rows_buffered == 0,
                                 timeout=10)
        assert len(down_lines(logs)) == 1 and "Can't connect" in down_lines(logs)[0]
        assert len(back_lines(logs)) == 1 and "wrote the 50 rows held meanwhile" in back_lines(logs)[0]
        assert writer.info.restarts == 0

    wrong = mysql_url("pmi_no_such_database")
    with capture_logs("INFO") as logs:
        async with running_writer(wrong, tmp_path / "wrong") as writer:
            await wait_until(lambda: writer.stats.retries >= 3)
            assert writer.info.state is ActorState.RUNNING and writer.info.restarts == 0
    assert len(down_lines(logs)) == 1 and "1049" in down_lines(logs)[0]


@pytest.mark.parametrize("moment", ["before_commit", "after_commit"])
async def test_killed_mid_batch_the_batch_is_written_exactly_once_sqlite(tmp_path: Path, moment: str) -> None:
    url = sqlite_url(tmp_path)
    faults = Faults(hold_writes=moment)
    async with running_writer(url, tmp_path, batch_rows=1000, open_store=faults.open_store) as writer:
        await writer.send(StoreTrade(trade(i)) for i in range(600))
        with trio.fail_after(5):
            await faults.holding.wait()
        faults.hold_writes = None
        assert writer.registry.kill("db_writer", "chaos")
        await writer.send(StoreTrade(trade(i)) for i in range(600, 700))
        await wait_until(lambda: writer.stats.rows_buffered == 0 and writer.stats.rows_written >= 700)
        assert writer.info.restarts == 1
    keys, _, count = await contents(url)
    assert keys == ids(range(700)) and count == 700


async def test_killed_mid_query_the_batch_is_written_exactly_once_mariadb(mysql_database: str,
                                                                         tmp_path: Path) -> None:
    async with open_tcp_proxy(MARIADB_HOST, MARIADB_PORT) as proxy:
        url = mysql_url(mysql_database, port=proxy.port)
        async with running_writer(url, tmp_path, batch_rows=1000) as writer:
            await writer.send(StoreTrade(trade(i)) for i in range(200))
            await wait_until(lambda: writer.stats.rows_written >= 200)
            proxy.stall()
            held = proxy.stats.received_up
            await writer.send(StoreTrade(trade(i)) for i in range(200, 500))
            await wait_until(lambda: proxy.stats.received_up > held, what="the write in flight")
            assert writer.registry.kill("db_writer", "chaos")  # cancels the asyncmy query mid-flight
            await wait_until(lambda: writer.info.incarnation == 2 and writer.info.state is ActorState.RUNNING)
            proxy.cut()
            proxy.pass_through()
            await wait_until(lambda: writer.stats.rows_buffered == 0 and writer.stats.rows_written >= 500,
                             timeout=15)
            assert writer.info.restarts == 1
        keys, _, count = await contents(url)
        assert keys == ids(range(500)) and count == 500


async def test_a_batch_spread_over_two_connections_cut_mid_write_is_written_once(mysql_database: str,
                                                                                 tmp_path: Path) -> None:
    """Large batches go out on two connections at once (storage/_mysql.py); cut both mid-write
    and the whole batch is written again, once."""
    rows = 3 * SPREAD_MIN_ROWS
    async with open_tcp_proxy(MARIADB_HOST, MARIADB_PORT) as proxy:
        url = mysql_url(mysql_database, port=proxy.port)
        # a batch every second: the rows sent in one go are one batch
        async with running_writer(url, tmp_path, batch_rows=10_000, batch_seconds=1.0,
                                  inbox_size=2 * rows) as writer:
            await writer.send(StoreTrade(trade(i)) for i in range(rows))  # opens both write connections
            await wait_until(lambda: writer.stats.rows_written >= rows)
            assert proxy.active == 3  # the read pool's connection and the two write connections
            proxy.stall()
            held = proxy.stats.received_up
            await writer.send(StoreTrade(trade(i)) for i in range(rows, 2 * rows))
            await wait_until(lambda: proxy.stats.received_up > held + 100_000, what="the write in flight")
            assert proxy.cut() == 3
            proxy.pass_through()
            await wait_until(lambda: writer.stats.rows_buffered == 0 and writer.stats.rows_written >= 2 * rows,
                             timeout=15)
            assert writer.stats.retries >= 1 and writer.info.restarts == 0
        keys, _, count = await contents(url)
        assert keys == ids(range(2 * rows)) and count == 2 * rows


async def test_graceful_stop_while_down_journals_and_the_next_start_replays(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    faults = Faults(down=True)
    async with running_writer(url, tmp_path, open_store=faults.open_store, memory_limit_rows=100,
                              batch_rows=50) as writer:
        await writer.send(StoreTrade(trade(i)) for i in range(250))
        await writer.send(StoreMarket(market_info(1, question=f"v{k}?"), updated_at=k) for k in range(5))
        await writer.drained()
    assert writer.stats.journal_rows == 251 and writer.stats.rows_buffered == 0
    lines = writer.journal_path.read_bytes().splitlines()
    assert len(lines) == 251 and all(orjson.loads(line)["t"] in ("trades", "markets") for line in lines)

    with capture_logs("INFO") as logs:  # the next run, database back
        async with running_writer(url, tmp_path, batch_rows=50) as again:
            await wait_until(lambda: again.stats.rows_written >= 251 and not again.journal_path.exists())
    assert messages(logs, lambda m: m.startswith("replaying 251 rows from the journal"))
    keys, _, count = await contents(url)
    assert keys == ids(range(250)) and count == 250
    async with open_store(url) as store:
        market = await store.get_market(condition(1))
        assert market is not None and market.question == "v4?"


async def test_graceful_stop_during_a_hung_write_journals_within_the_flush_timeout(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    faults = Faults(hold_writes="before_commit")
    async with running_writer(url, tmp_path, open_store=faults.open_store, flush_timeout=0.5,
                              write_timeout=60) as writer:
        await writer.send(StoreTrade(trade(i)) for i in range(300))
        with trio.fail_after(5):
            await faults.holding.wait()
        await writer.send(StoreTrade(trade(i)) for i in range(300, 400))
        await writer.drained()
        start = trio.current_time()
        await writer.stop()
        assert trio.current_time() - start < 3  # not the 60 s write timeout, nor the 15 s shutdown
    assert writer.stats.journal_rows == 400 and writer.info.crashes == 0
    async with running_writer(url, tmp_path) as again:
        await wait_until(lambda: again.stats.rows_written >= 400 and not again.journal_path.exists())
    keys, _, count = await contents(url)
    assert keys == ids(range(400)) and count == 400


async def test_market_updates_keep_their_order_across_memory_and_journal(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    faults = Faults(down=True)
    async with running_writer(url, tmp_path, open_store=faults.open_store, memory_limit_rows=3,
                              batch_rows=2) as writer:
        for k in range(12):  # spills every few rows: versions end up in the journal and in memory
            await writer.send([StoreMarket(market_info(1, question=f"v{k}?"), last_price=k / 100, updated_at=k),
                               StoreMarket(market_info(100 + k)), StoreTrade(trade(k), is_whale=k == 11)])
            await writer.drained()
        await writer.send([StoreTrade(trade(0), is_whale=True)])  # its notable version is in the journal
        while True:  # the newest version held in memory, older ones in the journal
            journaled = writer.stats.rows_journaled
            await writer.send([StoreMarket(market_info(1, question="v12?"), last_price=0.12, updated_at=12)])
            await writer.drained()
            if writer.stats.rows_journaled == journaled:
                break
        assert writer.stats.journal_rows > 0 and writer.stats.rows_buffered > 0
        faults.down = False
        await wait_until(lambda: writer.stats.state == "up" and writer.stats.rows_buffered == 0
                         and writer.stats.journal_rows == 0)
    async with open_store(url) as store:
        market = await store.get_market(condition(1))
        assert market is not None and (market.question, market.last_price, market.updated_at) == ("v12?", 0.12, 12)
        assert await store.count("markets") == 13
    _, whales, count = await contents(url)
    assert count == 12 and whales == ids([0, 11])


async def test_refused_rows_are_set_aside_and_the_rest_written(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    bad = attrs.evolve(trade_row(1), trade_id="x" * 65)
    with capture_logs("INFO") as logs:
        async with running_writer(url, tmp_path, batch_rows=100) as writer:
            await writer.send([StoreTrade(trade(0)), bad, StoreTrade(trade(2)), "not a row", trade_row(3)])
            await wait_until(lambda: writer.stats.rows_written >= 3 and writer.stats.rows_rejected == 1)
    assert writer.stats.rows_rejected == 1 and writer.stats.messages_invalid == 1
    rejected = tmp_path / "journal.rejected.jsonl"
    assert [orjson.loads(line)["trade_id"] for line in rejected.read_bytes().splitlines()] == ["x" * 65]
    assert len(messages(logs, lambda m: m.startswith("the database refused a trades row"))) == 1
    keys, _, _ = await contents(url)
    assert keys == ids([0, 2, 3])


async def test_bad_rows_in_a_large_batch_are_found_by_halving_it(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    faults = Faults()  # no faults: counts the writes that went through
    bad = {37: "x" * 65, 200: "y" * 65}
    rows = [attrs.evolve(trade_row(i), trade_id=bad[i]) if i in bad else StoreTrade(trade(i)) for i in range(300)]
    async with running_writer(url, tmp_path, batch_rows=1000, batch_seconds=60, open_store=faults.open_store) as writer:
        await writer.send(rows)
        await writer.drained()
        await writer.stop()  # flushes the 300 rows held as one batch
    assert writer.stats.rows_rejected == 2 and writer.stats.rows_written == 298
    # 2 bad rows in 300: about 2 x 2 x log2(300) writes, not one per row
    assert faults.writes < 40, faults.writes
    rejected = tmp_path / "journal.rejected.jsonl"
    assert sorted(orjson.loads(line)["trade_id"] for line in rejected.read_bytes().splitlines()) == sorted(bad.values())
    keys, _, count = await contents(url)
    assert keys == ids([i for i in range(300) if i not in bad]) and count == 298


async def test_with_the_database_up_a_full_memory_waits_for_the_writer_instead_of_journaling(
        db_url: DatabaseUrl, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db_writer, "ROOM_WAIT", 60.0)  # however slow the machine: wait, never journal
    faults = Faults(write_delay=0.02)  # the database takes 100 rows per 20 ms: producers are faster
    async with running_writer(db_url, tmp_path, inbox_size=64, batch_rows=100, memory_limit_rows=250,
                              open_store=faults.open_store) as writer:
        await wait_until(lambda: writer.stats.state == "up", what="connected")
        await writer.send((StoreTrade(trade(i), is_whale=i % 9 == 0) for i in range(3000)), within=60)
        assert writer.stats.rows_buffered <= 250 + db_writer.RECEIVE_CHUNK
        await wait_until(lambda: writer.stats.rows_written >= 3000, timeout=60, what="every row written")
        assert writer.stats.rows_journaled == 0 and not writer.journal_path.exists()
        assert writer.stats.rows_buffered == 0
    keys, whales, count = await contents(db_url)
    assert keys == ids(range(3000)) and count == 3000
    assert whales == ids(range(0, 3000, 9))


async def test_a_stuck_write_journals_rather_than_holding_producers_up(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db_writer, "ROOM_WAIT", 0.05)
    url = sqlite_url(tmp_path)
    faults = Faults(hold_writes="before_commit")
    async with running_writer(url, tmp_path, open_store=faults.open_store, inbox_size=64, batch_rows=50,
                              memory_limit_rows=100, write_timeout=60, flush_timeout=0.5) as writer:
        await wait_until(lambda: writer.stats.state == "up", what="connected")
        await writer.send(StoreTrade(trade(i)) for i in range(50))
        with trio.fail_after(5):
            await faults.holding.wait()  # the database is "up" but this write never ends
        # 1,000 rows through a 64-message inbox and a 100-row memory: the overflow is journaled
        await writer.send((StoreTrade(trade(i)) for i in range(50, 1050)), within=10)
        await writer.drained()
        assert writer.stats.state == "up" and writer.stats.rows_journaled > 0
    assert writer.stats.journal_rows + writer.stats.rows_buffered == 1050 and writer.stats.rows_buffered == 0
    async with running_writer(url, tmp_path) as again:  # the journal is replayed
        await wait_until(lambda: again.stats.rows_written >= 1050 and not again.journal_path.exists())
    keys, _, count = await contents(url)
    assert keys == ids(range(1050)) and count == 1050


def test_stats_as_dict() -> None:
    stats = DbStats(state="down", oldest_unwritten_at=100.0)
    data = stats.as_dict(now=130.0)
    assert data["db_up"] is False and data["oldest_unwritten_age"] == 30.0
    assert {"rows_written", "batches_written", "retries", "journal_rows", "journal_bytes"} <= set(data)
