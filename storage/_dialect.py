"""Every difference between the SQLite and the MySQL/MariaDB/TiDB SQL, in one place.

Tables are described once (:class:`Table`, used by the migrations) and rendered per dialect:
column types, string-length limits (``VARCHAR(n)`` in MySQL, an equivalent ``CHECK`` in SQLite
so both refuse the same rows), auto-increment ids, table options and secondary indexes.  The
write statements are generated here too:

=================  ===========================================  ==========================================
table              SQLite                                        MySQL / MariaDB / TiDB
=================  ===========================================  ==========================================
markets            ``ON CONFLICT (condition_id) DO UPDATE``      ``ON DUPLICATE KEY UPDATE`` every column
trades             ``DO UPDATE SET is_whale = 1 WHERE ...``      ``is_whale = GREATEST(is_whale, new)``
model_forecasts    ``ON CONFLICT (request_id) DO NOTHING``       ``ON DUPLICATE KEY UPDATE id = id``
swarm_forecasts    ``ON CONFLICT (forecast_id) DO NOTHING``      ``ON DUPLICATE KEY UPDATE id = id``
alert_deliveries   ``ON CONFLICT (delivery_id) DO NOTHING``      ``ON DUPLICATE KEY UPDATE id = id``
=================  ===========================================  ==========================================

(``INSERT IGNORE`` is avoided on MySQL: it also turns data errors into warnings and stores
truncated values.)  Each statement also comes in a multi-row form (``VALUES (...), (...)``),
which SQLite uses: one statement per thousands of rows instead of one step per row.  Times are
epoch seconds in ``DOUBLE``/``REAL`` columns; MySQL tables use ``utf8mb4_bin`` so that
comparisons are exact, as in SQLite.
"""

from __future__ import annotations

import attrs

from ._rows import AlertDeliveryRow, MarketRow, ModelForecastRow, SwarmForecastRow, TradeRow

#: Column kinds: "key" (bounded string, length required), "text", "longtext", "float", "bool", "int".
_MYSQL_TYPES = {"text": "TEXT", "longtext": "MEDIUMTEXT", "float": "DOUBLE", "bool": "BOOLEAN", "int": "BIGINT"}
_SQLITE_TYPES = {"key": "TEXT", "text": "TEXT", "longtext": "TEXT", "float": "REAL", "bool": "INTEGER",
                 "int": "INTEGER"}


@attrs.frozen
class Column:
    name: str
    kind: str
    length: int | None = None
    nullable: bool = False
    default: str | None = None  # an SQL literal


@attrs.frozen
class Index:
    name: str
    columns: tuple[str, ...]
    unique: bool = False


@attrs.frozen
class Table:
    """A table as created by a migration: an auto-increment ``id`` (unless ``primary_key``
    names a column), ``columns``, and indexes."""

    name: str
    columns: tuple[Column, ...]
    primary_key: str | None = None
    indexes: tuple[Index, ...] = ()


def _id_column(dialect: str) -> str:
    return "id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY" if dialect == "mysql" else "id INTEGER PRIMARY KEY"


@attrs.frozen
class Dialect:
    """SQL for one family of databases.

    Attributes:
        name: ``"sqlite"`` or ``"mysql"``.
        row_alias: MySQL >= 8.0.19 only: refer to the inserted row as ``new.col`` instead of the
            deprecated ``VALUES(col)`` (MySQL 8.0.20+ warns on each use; MariaDB and TiDB do not
            know the alias form).
    """

    name: str
    row_alias: bool = False

    @property
    def placeholder(self) -> str:
        return "?" if self.name == "sqlite" else "%s"

    # -- DDL ------------------------------------------------------------------------------------

    def column_sql(self, column: Column) -> str:
        if self.name == "mysql":
            sql_type = f"VARCHAR({column.length})" if column.kind == "key" else _MYSQL_TYPES[column.kind]
        else:
            sql_type = _SQLITE_TYPES[column.kind]
        parts = [column.name, sql_type, "NULL" if column.nullable else "NOT NULL"]
        if column.default is not None:
            parts.append(f"DEFAULT {column.default}")
        if self.name == "sqlite":
            if column.kind == "key":
                parts.append(f"CHECK (length({column.name}) <= {column.length})")
            elif column.kind == "bool":
                parts.append(f"CHECK ({column.name} IN (0, 1))")
        return " ".join(parts)

    def create_table(self, table: Table) -> list[str]:
        """Idempotent statements creating ``table`` with its indexes."""
        lines = [] if table.primary_key else [_id_column(self.name)]
        lines += [self.column_sql(c) for c in table.columns]
        if table.primary_key:
            lines.append(f"PRIMARY KEY ({table.primary_key})")
        extra: list[str] = []
        for index in table.indexes:
            cols = ", ".join(index.columns)
            if self.name == "mysql":
                lines.append(f"{'UNIQUE ' if index.unique else ''}KEY {index.name} ({cols})")
            elif index.unique:
                lines.append(f"CONSTRAINT {index.name} UNIQUE ({cols})")
            else:
                extra.append(f"CREATE INDEX IF NOT EXISTS {index.name} ON {table.name} ({cols})")
        body = ",\n    ".join(lines)
        options = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin" if self.name == "mysql" else ""
        return [f"CREATE TABLE IF NOT EXISTS {table.name} (\n    {body}\n){options}", *extra]

    def create_migrations_table(self) -> str:
        version = "INTEGER" if self.name == "sqlite" else "INT"
        name = "TEXT" if self.name == "sqlite" else "VARCHAR(200)"
        applied = "REAL" if self.name == "sqlite" else "DOUBLE"
        options = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin" if self.name == "mysql" else ""
        return (f"CREATE TABLE IF NOT EXISTS schema_migrations (version {version} NOT NULL PRIMARY KEY, "
                f"name {name} NOT NULL, applied_at {applied} NOT NULL){options}")

    def table_exists(self) -> str:
        """One row, one column: 1 if the table named by the parameter exists, else 0."""
        if self.name == "sqlite":
            return "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?"
        return ("SELECT COUNT(*) FROM information_schema.tables "
                "WHERE table_schema = DATABASE() AND table_name = %s")

    # -- writes ---------------------------------------------------------------------------------

    def _insert(self, table: str, columns: tuple[str, ...], rows: int = 1) -> str:
        one = "(" + ", ".join([self.placeholder] * len(columns)) + ")"
        values = ", ".join([one] * rows)
        alias = " AS new" if self.name == "mysql" and self.row_alias else ""
        return f"INSERT INTO {table} ({', '.join(columns)}) VALUES {values}{alias}"

    def _new(self, column: str) -> str:
        """The value being inserted, in an upsert's update clause."""
        if self.name == "sqlite":
            return f"excluded.{column}"
        return f"new.{column}" if self.row_alias else f"VALUES({column})"

    def upsert_markets(self, rows: int = 1) -> str:
        cols = MarketRow.COLUMNS
        sets = []
        for c in cols[1:]:
            if c == "last_price":  # an unknown price (NULL) keeps the one stored
                current = "markets.last_price" if self.name == "sqlite" else "last_price"
                sets.append(f"last_price = COALESCE({self._new(c)}, {current})")
            else:
                sets.append(f"{c} = {self._new(c)}")
        conflict = " ON CONFLICT (condition_id) DO UPDATE SET " if self.name == "sqlite" \
            else " ON DUPLICATE KEY UPDATE "
        return self._insert("markets", cols, rows) + conflict + ", ".join(sets)

    def upsert_trades(self, rows: int = 1) -> str:
        insert = self._insert("trades", TradeRow.COLUMNS, rows)
        if self.name == "sqlite":
            # only touch the row when the flag actually rises (no write otherwise)
            return insert + (" ON CONFLICT (trade_id) DO UPDATE SET is_whale = 1"
                             " WHERE excluded.is_whale = 1 AND trades.is_whale = 0")
        return insert + f" ON DUPLICATE KEY UPDATE is_whale = GREATEST(is_whale, {self._new('is_whale')})"

    def insert_once(self, table: str, columns: tuple[str, ...], key: str, rows: int = 1) -> str:
        insert = self._insert(table, columns, rows)
        if self.name == "sqlite":
            return insert + f" ON CONFLICT ({key}) DO NOTHING"
        return insert + " ON DUPLICATE KEY UPDATE id = id"

    def write_statement(self, table: str, rows: int = 1) -> str:
        """The write statement of ``table`` for ``rows`` rows (``VALUES (...), (...), ...``;
        the parameters are the rows' ``params()`` one after the other).  A multi-row statement
        behaves as the single-row one run once per row, in order (a key repeated within it is
        merged the same way)."""
        if table == "markets":
            return self.upsert_markets(rows)
        if table == "trades":
            return self.upsert_trades(rows)
        if table == "model_forecasts":
            return self.insert_once(table, ModelForecastRow.COLUMNS, "request_id", rows)
        if table == "swarm_forecasts":
            return self.insert_once(table, SwarmForecastRow.COLUMNS, "forecast_id", rows)
        if table == "alert_deliveries":
            return self.insert_once(table, AlertDeliveryRow.COLUMNS, "delivery_id", rows)
        raise ValueError(f"unknown table {table!r}")

    def write_statements(self) -> dict[str, str]:
        """The single-row write statement of each table (for ``executemany``)."""
        return {table: self.write_statement(table) for table in ("markets", "trades", "model_forecasts",
                                                                  "swarm_forecasts", "alert_deliveries")}

    # -- reads ----------------------------------------------------------------------------------

    def select_by_key(self, table: str, columns: tuple[str, ...], key: str) -> str:
        return f"SELECT {', '.join(columns)} FROM {table} WHERE {key} = {self.placeholder}"

    def spend_since(self) -> str:
        return f"SELECT COALESCE(SUM(cost_usd), 0) FROM model_forecasts WHERE created_at >= {self.placeholder}"

    def last_forecast_times(self) -> str:
        # served by ix_model_forecasts_market_time (condition_id, created_at)
        return (f"SELECT condition_id, MAX(created_at) FROM model_forecasts WHERE created_at >= {self.placeholder} "
                f"GROUP BY condition_id")

    def delivered_alert_keys(self) -> str:
        # served by ix_alert_deliveries_outlet_time (outlet, created_at)
        return (f"SELECT alert_key FROM alert_deliveries WHERE outlet = {self.placeholder} "
                f"AND created_at >= {self.placeholder} AND status IN ('delivered', 'digest')")

    def recent_whales(self) -> str:
        # served by ix_trades_whale_time (is_whale, traded_at)
        return (f"SELECT {', '.join(TradeRow.COLUMNS)} FROM trades WHERE is_whale = 1 "
                f"ORDER BY traded_at DESC LIMIT {self.placeholder}")


SQLITE = Dialect("sqlite")
MYSQL = Dialect("mysql")


def mysql_dialect_for(server_version: str) -> Dialect:
    """The MySQL dialect for a server's version string (``10.11.6-MariaDB``, ``8.0.36``,
    ``8.0.11-TiDB-v7.5.0``)."""
    lowered = server_version.lower()
    if "mariadb" in lowered or "tidb" in lowered:
        return MYSQL
    try:
        numbers = tuple(int(part) for part in server_version.split("-", 1)[0].split(".")[:3])
    except ValueError:
        return MYSQL
    return Dialect("mysql", row_alias=numbers >= (8, 0, 19))
