"""Versioned schema migrations, recorded in ``schema_migrations`` (version, name, applied_at).

Each migration is a list of idempotent statements (``CREATE TABLE IF NOT EXISTS`` with the
indexes inline or ``CREATE INDEX IF NOT EXISTS``), so a migration interrupted half-way on
MySQL, where DDL is not transactional, is simply run again; on SQLite a migration and its
record are one transaction.  Migrations are append-only: never edit a released one, add the
next version.

- v1: ``markets`` and ``trades`` (with their read indexes);
- v2: ``model_forecasts`` and ``swarm_forecasts``;
- v3: ``alert_deliveries`` (each alert outlet's delivery record).
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from ._dialect import Column, Dialect, Index, Table
from ._errors import SchemaError

MARKETS = Table(
    "markets",
    (
        Column("condition_id", "key", 100),
        Column("question", "text"),
        Column("slug", "text"),
        Column("event_slug", "text"),
        Column("category", "text"),
        Column("tags", "text"),  # JSON array of strings
        Column("end_date", "float", nullable=True),
        Column("last_price", "float", nullable=True),
        Column("volume_24h", "float"),
        Column("updated_at", "float"),
    ),
    primary_key="condition_id",
)

TRADES = Table(
    "trades",
    (
        Column("trade_id", "key", 64),
        Column("condition_id", "key", 100),
        Column("asset_id", "key", 100),
        Column("outcome", "text"),
        Column("side", "key", 4),
        Column("price", "float"),
        Column("size", "float"),
        Column("notional", "float"),
        Column("wallet", "key", 100),
        Column("transaction_hash", "key", 100),
        Column("traded_at", "float"),
        Column("is_whale", "bool", default="0"),
    ),
    indexes=(
        Index("uq_trades_trade_id", ("trade_id",), unique=True),
        Index("ix_trades_whale_time", ("is_whale", "traded_at")),
        Index("ix_trades_market_time", ("condition_id", "traded_at")),
        Index("ix_trades_wallet_time", ("wallet", "traded_at")),
    ),
)

MODEL_FORECASTS = Table(
    "model_forecasts",
    (
        Column("request_id", "key", 128),
        Column("condition_id", "key", 100),
        Column("model", "key", 200),
        Column("outcome", "text"),
        Column("probability", "float", nullable=True),
        Column("confidence", "float", nullable=True),
        Column("reasoning", "longtext"),
        Column("ok", "bool"),
        Column("error", "longtext", nullable=True),
        Column("prompt_tokens", "int", nullable=True),
        Column("completion_tokens", "int", nullable=True),
        Column("cost_usd", "float", nullable=True),
        Column("latency_ms", "float", nullable=True),
        Column("market_price", "float", nullable=True),
        Column("created_at", "float"),
    ),
    indexes=(
        Index("uq_model_forecasts_request_id", ("request_id",), unique=True),
        Index("ix_model_forecasts_market_time", ("condition_id", "created_at")),
        Index("ix_model_forecasts_model_time", ("model", "created_at")),
    ),
)

SWARM_FORECASTS = Table(
    "swarm_forecasts",
    (
        Column("forecast_id", "key", 128),
        Column("condition_id", "key", 100),
        Column("outcome", "text"),
        Column("probability", "float", nullable=True),
        Column("probability_mean", "float", nullable=True),
        Column("confidence", "float", nullable=True),
        Column("votes", "longtext"),  # JSON
        Column("models_ok", "int"),
        Column("models_failed", "int"),
        Column("market_price", "float", nullable=True),
        Column("created_at", "float"),
    ),
    indexes=(
        Index("uq_swarm_forecasts_forecast_id", ("forecast_id",), unique=True),
        Index("ix_swarm_forecasts_market_time", ("condition_id", "created_at")),
    ),
)

ALERT_DELIVERIES = Table(
    "alert_deliveries",
    (
        Column("outlet", "key", 100),
        Column("alert_key", "key", 200),
        Column("status", "key", 16),
        Column("alert_type", "key", 32),
        Column("attempts", "int"),
        Column("detail", "text", nullable=True),
        Column("created_at", "float"),
        Column("delivery_id", "key", 301),
    ),
    indexes=(
        Index("uq_alert_deliveries_delivery_id", ("delivery_id",), unique=True),
        Index("ix_alert_deliveries_outlet_time", ("outlet", "created_at")),
    ),
)


#: MySQL's TEXT and MEDIUMTEXT sizes, in bytes (enforced for SQLite too, so both refuse alike).
_TEXT_BYTES = {"text": 65_535, "longtext": 16_777_215}


def text_limits(table: Table, columns: tuple[str, ...]) -> tuple[tuple[int, str, int], ...]:
    """``(index in columns, name, max bytes)`` of ``table``'s TEXT columns."""
    kinds = {c.name: c.kind for c in table.columns}
    return tuple((i, name, _TEXT_BYTES[kinds[name]]) for i, name in enumerate(columns)
                 if kinds.get(name) in _TEXT_BYTES)


@attrs.frozen
class Migration:
    version: int
    name: str
    tables: tuple[Table, ...]

    def statements(self, dialect: Dialect) -> list[str]:
        return [sql for table in self.tables for sql in dialect.create_table(table)]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "markets and trades", (MARKETS, TRADES)),
    Migration(2, "model_forecasts and swarm_forecasts", (MODEL_FORECASTS, SWARM_FORECASTS)),
    Migration(3, "alert_deliveries", (ALERT_DELIVERIES,)),
)
#: The first schema version with ``alert_deliveries``.
ALERTS_SCHEMA_VERSION = 3
#: The schema version this code writes.
LATEST_VERSION = MIGRATIONS[-1].version


def plan(applied: Iterable[int], target: int | None = None) -> list[Migration]:
    """The migrations to run, in order, to bring a database at ``applied`` to ``target``
    (default: the latest).

    Raises:
        SchemaError: the database was migrated by a newer version of the service.
    """
    done = set(applied)
    if done and max(done) > LATEST_VERSION:
        raise SchemaError(
            f"the database schema is at version {max(done)}, newer than this service knows "
            f"(version {LATEST_VERSION}): upgrade the service")
    goal = LATEST_VERSION if target is None else target
    if not 0 <= goal <= LATEST_VERSION:
        raise ValueError(f"no schema version {goal}")
    return [m for m in MIGRATIONS if m.version <= goal and m.version not in done]
