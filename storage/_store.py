"""The store interface, shared by the SQLite and the MySQL implementation."""

from __future__ import annotations

import abc
import math
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from ._dialect import Dialect
from ._errors import StoreDataError
from ._migrations import ALERT_DELIVERIES, MARKETS, MODEL_FORECASTS, SWARM_FORECASTS, TRADES, text_limits
from ._rows import ROW_TYPE_BY_TABLE, TABLES, MarketRow, Params, TradeRow, WriteBatch, params_finite

if TYPE_CHECKING:
    from config import DatabaseUrl

#: ``(table, rows of parameters)`` pairs, in write order, written in one transaction.
Statements = list[tuple[str, Sequence[Params]]]

_PRICE, _SIZE, _NOTIONAL, _TRADED_AT = (TradeRow.COLUMNS.index(c) for c in ("price", "size", "notional", "traded_at"))


_TEXT_LIMITS = {table.name: text_limits(table, ROW_TYPE_BY_TABLE[table.name].COLUMNS)
                for table in (MARKETS, TRADES, MODEL_FORECASTS, SWARM_FORECASTS, ALERT_DELIVERIES)}


def _check_text_sizes(table: str, params: Sequence[Params]) -> None:
    for values in params:
        for index, name, limit in _TEXT_LIMITS[table]:
            value = values[index]
            if value is not None and len(value) * 4 > limit and len(value.encode()) > limit:
                raise StoreDataError(f"{table}.{name} of {values[0]!r} is longer than {limit:,} bytes")


def _check_table(table: str) -> str:
    if table not in ROW_TYPE_BY_TABLE:
        raise ValueError(f"unknown table {table!r}; expected one of {', '.join(TABLES)}")
    return table


class Store(abc.ABC):
    """One database, SQLite or MySQL/MariaDB/TiDB, with the same behaviour.

    Writes are idempotent: trades upsert on ``trade_id`` (``is_whale`` only rises), markets on
    ``condition_id`` (last write wins; a ``None`` last price keeps the stored one), forecasts
    are inserted once per ``request_id``/``forecast_id``.  So writing a batch again (after a
    crash, a lost commit acknowledgement, a journal replay) changes nothing.

    Errors: every method raises :class:`~storage.StoreUnavailable` when the database cannot be
    used right now (retry later), :meth:`write` raises :class:`~storage.StoreDataError` when
    the database refuses the rows themselves (``ValueError`` for an unknown table name).

    Cancellation: a cancelled :meth:`write` may or may not have committed (it is one
    transaction: all or nothing); writing the batch again is harmless.
    """

    dialect: Dialect
    #: The database, for people (password hidden).
    description: str

    def __init__(self, dialect: Dialect, description: str) -> None:
        self.dialect = dialect
        self.description = description
        self._write_sql = dialect.write_statements()

    # -- to implement ---------------------------------------------------------------------------

    @abc.abstractmethod
    async def migrate(self, *, target: int | None = None) -> list[int]:
        """Create or upgrade the schema to ``target`` (default: the latest version).

        Returns:
            The versions applied now, in order (empty when already up to date).

        Raises:
            SchemaError: the schema is newer than this code.
        """

    @abc.abstractmethod
    async def _execute_batch(self, statements: Statements) -> None:
        """Write each table's rows (``self._write_sql[table]`` semantics) in one transaction, in
        one crossing."""

    @abc.abstractmethod
    async def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of one query."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release the connections (idempotent). ``open_store`` calls it on exit."""

    # -- shared ---------------------------------------------------------------------------------

    async def write(self, batch: WriteBatch) -> None:
        """Write every row of ``batch`` in one transaction (markets first).

        Raises:
            StoreDataError: a row cannot be stored (e.g. a non-finite number, a key longer
                than its column); nothing of the batch was written.
            StoreUnavailable: retry later.
        """
        await self.write_params({table: [row.params() for row in rows] for table, rows in batch.tables()})

    async def write_params(self, tables: Mapping[str, Sequence[Params]]) -> None:
        """:meth:`write` for rows already in their parameters form (``row.params()``, see
        :data:`storage.Params`): ``{table: [params, ...]}``, written in one transaction in
        table order (markets first).  The DB writer's path: no row objects.

        Raises:
            StoreDataError, StoreUnavailable: as :meth:`write`; ValueError: an unknown table.
        """
        for name in tables:
            _check_table(name)
        statements: Statements = []
        for table in TABLES:
            params = tables.get(table)
            if not params:
                continue
            # NaN and infinities: SQLite stores some (or NULLs them), MySQL refuses them; refuse
            # them here so both behave alike (and texts longer than MySQL's TEXT columns)
            if table == "trades":
                for p in params:  # the hot path: one sum is not finite if any term is not
                    if not math.isfinite(p[_PRICE] + p[_SIZE] + p[_NOTIONAL] + p[_TRADED_AT]):
                        raise StoreDataError(f"non-finite number in trades row {p[0]!r}")
            else:
                for p in params:
                    if not params_finite(p):
                        raise StoreDataError(f"non-finite number in {table} row {p[0]!r}")
                _check_text_sizes(table, params)
            statements.append((table, params))
        if statements:
            await self._execute_batch(statements)

    async def schema_version(self) -> int:
        """The highest migration applied (0 for an empty database)."""
        exists = await self._fetch(self.dialect.table_exists(), ("schema_migrations",))
        if not exists[0][0]:
            return 0
        rows = await self._fetch("SELECT MAX(version) FROM schema_migrations")
        return int(rows[0][0] or 0)

    async def count(self, table: str) -> int:
        """Rows in ``table`` (``markets``, ``trades``, ``model_forecasts``, ``swarm_forecasts``,
        ``alert_deliveries``)."""
        rows = await self._fetch(f"SELECT COUNT(*) FROM {_check_table(table)}")
        return int(rows[0][0])

    async def keys(self, table: str) -> set[str]:
        """Every natural key in ``table`` (trade ids, condition ids, request or forecast ids)."""
        key = ROW_TYPE_BY_TABLE[_check_table(table)].KEY
        return {row[0] for row in await self._fetch(f"SELECT {key} FROM {table}")}

    async def recent_whales(self, limit: int = 50) -> list[TradeRow]:
        """The latest whale trades, newest first."""
        rows = await self._fetch(self.dialect.recent_whales(), (int(limit),))
        return [TradeRow.from_db(r) for r in rows]

    async def ai_spend_since(self, since: float) -> float:
        """LLM spend (USD) recorded in ``model_forecasts`` since ``since`` (epoch seconds)."""
        rows = await self._fetch(self.dialect.spend_since(), (float(since),))
        return float(rows[0][0] or 0.0)

    async def last_forecast_times(self, since: float) -> dict[str, float]:
        """When each market was last asked about (latest ``model_forecasts`` row) since ``since``."""
        rows = await self._fetch(self.dialect.last_forecast_times(), (float(since),))
        return {row[0]: float(row[1]) for row in rows}

    async def delivered_alert_keys(self, outlet: str, *, since: float = 0.0) -> set[str]:
        """Keys of the alerts ``outlet`` delivered (alone or in a digest) since ``since``."""
        rows = await self._fetch(self.dialect.delivered_alert_keys(), (outlet, float(since)))
        return {row[0] for row in rows}

    async def get_trade(self, trade_id: str) -> TradeRow | None:
        rows = await self._fetch(self.dialect.select_by_key("trades", TradeRow.COLUMNS, "trade_id"), (trade_id,))
        return TradeRow.from_db(rows[0]) if rows else None

    async def get_market(self, condition_id: str) -> MarketRow | None:
        rows = await self._fetch(
            self.dialect.select_by_key("markets", MarketRow.COLUMNS, "condition_id"), (condition_id,))
        return MarketRow.from_db(rows[0]) if rows else None


def check_url(url: DatabaseUrl | None) -> None:
    """Validate ``url``'s options (TLS flags and files, numbers) without connecting.

    Raises:
        ValueError: an invalid option value; OSError or ssl.SSLError: a TLS file cannot be loaded.
    """
    if url is not None and url.kind == "mysql":
        from ._mysql import connect_settings  # imports asyncmy and trio-asyncio only when needed

        connect_settings(url, 10.0)


@asynccontextmanager
async def open_store(
    url: DatabaseUrl | None,
    *,
    default_sqlite_path: str = "polymarket_insights.db",
    connect_timeout: float = 10.0,
) -> AsyncIterator[Store]:
    """Open the database ``url`` names (``None``: SQLite at ``default_sqlite_path``, relative
    to the working directory).  Does not migrate: call :meth:`Store.migrate`.

    SQLite runs the stdlib ``sqlite3`` on a worker thread (WAL mode).  MySQL/MariaDB/TiDB runs
    asyncmy on an asyncio loop that this context manager opens itself
    (``trio_asyncio.open_loop()``) and closes on exit with the connection pool: enter it from
    plain trio code (no enclosing loop needed) and use the store only inside the block; each
    ``open_store`` gets a fresh loop and pool.  TLS and pool options come from the URL's
    query (``ssl``, ``ssl_ca``, ``ssl_cert``, ``ssl_key``, ``ssl_verify``, ``charset``,
    ``connect_timeout``, ``pool_size``).

    Raises:
        StoreUnavailable: the database cannot be opened (unreachable, refused credentials,
            unknown database, bad TLS files) or did not answer within ``connect_timeout``.
        ValueError: a URL option has an invalid value.
    """
    if url is None or url.kind == "sqlite":
        from ._sqlite import open_sqlite

        path = default_sqlite_path if url is None else url.path
        async with open_sqlite(path) as sqlite_store:
            yield sqlite_store
    elif url.kind == "mysql":
        from ._mysql import open_mysql

        async with open_mysql(url, connect_timeout=connect_timeout) as mysql_store:
            yield mysql_store
    else:
        raise ValueError(f"unsupported database kind {url.kind!r}")
