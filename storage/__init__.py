"""Storage: one store interface over SQLite and MySQL/MariaDB/TiDB, with the same behaviour.

- :func:`open_store` opens the database a :class:`config.DatabaseUrl` names (``None``: a SQLite
  file in the working directory); :meth:`Store.migrate` creates or upgrades the schema
  (versioned migrations recorded in ``schema_migrations``; re-running is a no-op).
- :meth:`Store.write` writes a :class:`WriteBatch` (rows of ``markets``, ``trades``,
  ``model_forecasts``, ``swarm_forecasts``, ``alert_deliveries``) in one transaction with idempotent upserts;
  :meth:`Store.write_params` the same rows in their parameters form (:data:`Params`), which is
  how the DB writer holds them.
- :class:`Journal` is the local append-only file the DB writer spills rows to while the
  database is away.

Table and column names are a public contract (dashboards and ad-hoc SQL read them); dialect
differences live in ``_dialect.py`` only.
"""

from ._errors import SchemaError, StoreDataError, StoreError, StoreUnavailable
from ._journal import Journal, JournalChunk
from ._migrations import ALERTS_SCHEMA_VERSION, LATEST_VERSION, MIGRATIONS
from ._rows import (
    MERGE_PARAMS,
    TABLES,
    AlertDeliveryRow,
    MarketRow,
    ModelForecastRow,
    Params,
    Row,
    SwarmForecastRow,
    TradeRow,
    WriteBatch,
    row_from_json,
    row_from_params,
    row_to_json,
    trade_params,
)
from ._store import Store, check_url, open_store

__all__ = [
    "ALERTS_SCHEMA_VERSION", "AlertDeliveryRow", "LATEST_VERSION", "MERGE_PARAMS", "MIGRATIONS", "TABLES", "Journal", "JournalChunk", "MarketRow",
    "ModelForecastRow", "Params", "Row", "SchemaError", "Store", "StoreDataError", "StoreError", "StoreUnavailable",
    "SwarmForecastRow", "TradeRow", "WriteBatch", "check_url", "open_store", "row_from_json", "row_from_params",
    "row_to_json", "trade_params",
]
