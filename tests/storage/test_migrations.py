"""Schema migrations on SQLite and MariaDB: fresh, re-run, upgrade from v1, too new, concurrent."""

from __future__ import annotations

import pytest
import trio

from config import DatabaseUrl
from storage import MIGRATIONS, SchemaError, StoreUnavailable, WriteBatch, open_store
from storage._dialect import MYSQL, SQLITE, Dialect, mysql_dialect_for
from storage._migrations import plan

from ._data import market_row, model_forecast, swarm_forecast, trade_row


async def test_fresh_database_gets_every_migration_recorded_once(db_url: DatabaseUrl) -> None:
    async with open_store(db_url) as store:
        assert await store.migrate() == [m.version for m in MIGRATIONS]
        assert await store.migrate() == []
        rows = await store._fetch("SELECT version, name FROM schema_migrations ORDER BY version")
        assert [tuple(r) for r in rows] == [(m.version, m.name) for m in MIGRATIONS]


async def test_upgrade_from_version_1_keeps_the_data(db_url: DatabaseUrl) -> None:
    async with open_store(db_url) as store:
        assert await store.migrate(target=1) == [1]
        assert await store.schema_version() == 1
        await store.write(WriteBatch(markets=[market_row(1)], trades=[trade_row(1), trade_row(2, whale=True)]))
        with pytest.raises(StoreUnavailable):  # no forecast tables yet
            await store.count("model_forecasts")
    async with open_store(db_url) as store:  # the next version of the service starts
        assert await store.migrate() == [2, 3]
        assert await store.schema_version() == 3
        assert await store.count("trades") == 2
        assert await store.get_market(market_row(1).condition_id) == market_row(1)
        await store.write(WriteBatch(model_forecasts=[model_forecast(1)], swarm_forecasts=[swarm_forecast(1)]))
        assert await store.count("model_forecasts") == 1
        assert await store.migrate() == []


async def test_upgrade_from_version_2_adds_the_alert_record(db_url: DatabaseUrl) -> None:
    from storage import AlertDeliveryRow

    async with open_store(db_url) as store:
        assert await store.migrate(target=2) == [1, 2]
        await store.write(WriteBatch(trades=[trade_row(1)], model_forecasts=[model_forecast(1)]))
    async with open_store(db_url) as store:
        assert await store.migrate() == [3]
        assert await store.count("trades") == 1 and await store.count("model_forecasts") == 1
        rows = [AlertDeliveryRow("desk", "whale:a", "delivered", "whale_trade", 1, None, 100.0),
                AlertDeliveryRow("desk", "whale:b", "digest", "whale_trade", 1, None, 200.0),
                AlertDeliveryRow("desk", "whale:c", "undeliverable", "whale_trade", 5, "HTTP 502", 300.0),
                AlertDeliveryRow("ops", "whale:a", "delivered", "whale_trade", 2, None, 300.0)]
        await store.write(WriteBatch(alert_deliveries=rows))
        await store.write(WriteBatch(alert_deliveries=[  # a repeat keeps the first outcome
            AlertDeliveryRow("desk", "whale:c", "delivered", "whale_trade", 6, None, 400.0)]))
        assert await store.count("alert_deliveries") == 4
        assert await store.delivered_alert_keys("desk") == {"whale:a", "whale:b"}
        assert await store.delivered_alert_keys("desk", since=150.0) == {"whale:b"}
        assert await store.delivered_alert_keys("ops") == {"whale:a"}
        assert await store.delivered_alert_keys("nobody") == set()


async def test_a_schema_newer_than_the_code_is_refused(db_url: DatabaseUrl) -> None:
    async with open_store(db_url) as store:
        await store.migrate()
        p = store.dialect.placeholder
        await store._fetch(f"INSERT INTO schema_migrations (version, name, applied_at) VALUES ({p}, {p}, {p})",
                           (99, "from the future", 0.0))
        with pytest.raises(SchemaError, match="version 99, newer than this service knows"):
            await store.migrate()


async def test_concurrent_migrations_apply_each_version_once(db_url: DatabaseUrl) -> None:
    results: list[list[int]] = []

    async def migrate() -> None:
        async with open_store(db_url) as store:
            results.append(await store.migrate())

    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(migrate)
    assert sorted(v for r in results for v in r) == [1, 2, 3]
    async with open_store(db_url) as store:
        assert await store._fetch("SELECT COUNT(*) FROM schema_migrations") == [(3,)]


def test_plan() -> None:
    assert [m.version for m in plan([])] == [1, 2, 3]
    assert [m.version for m in plan([1])] == [2, 3]
    assert [m.version for m in plan([], target=1)] == [1]
    assert plan([1, 2, 3]) == []
    with pytest.raises(ValueError):
        plan([], target=4)


def test_dialects() -> None:
    assert mysql_dialect_for("10.11.19-MariaDB-0+deb12u1") == MYSQL
    assert mysql_dialect_for("8.0.11-TiDB-v7.5.0") == MYSQL
    assert mysql_dialect_for("8.0.36") == Dialect("mysql", row_alias=True)
    assert mysql_dialect_for("5.7.44-log") == MYSQL
    alias = Dialect("mysql", row_alias=True).upsert_trades()
    assert alias.endswith("AS new ON DUPLICATE KEY UPDATE is_whale = GREATEST(is_whale, new.is_whale)")
    assert "VALUES(is_whale)" in MYSQL.upsert_trades()
    assert "ON CONFLICT (trade_id)" in SQLITE.upsert_trades()
    for dialect in (SQLITE, MYSQL):
        ddl = "\n".join(s for m in MIGRATIONS for s in m.statements(dialect))
        for name in ("markets", "trades", "model_forecasts", "swarm_forecasts", "ix_trades_whale_time",
                     "ix_trades_market_time", "ix_trades_wallet_time"):
            assert name in ddl
