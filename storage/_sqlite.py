"""SQLite: the stdlib ``sqlite3`` on a worker thread, one connection, WAL mode.

Every operation is one ``trio.to_thread.run_sync`` call, serialized by a capacity limiter of 1
(the connection is used by one thread at a time).  Cancellation waits for the thread: a write
that started completes (commit or rollback) before the cancellation is delivered.

Writes use multi-row statements (``INSERT ... VALUES (...), (...) ...``, up to
:data:`ROWS_PER_STATEMENT` rows), not ``executemany``: ``sqlite3`` releases the GIL around each
``sqlite3_step``, and ``executemany`` steps once per row, so while the trio thread is busy (say,
taking in the next batch, or serving clients) the worker waits for the GIL after every row, up
to the 5 ms switch interval each time (2,800 rows/s measured against a trio thread that never
blocks, 88,000 with an idle one).  A multi-row statement is one step for thousands of rows, all
of SQLite's work done without the GIL.  (With the trio thread otherwise idle, ``executemany``
is about 5 % faster; with another busy task on it, multi-row statements were about 15 %
faster.)  Statement sizes are powers of two, so only a few distinct statements are ever
prepared and cached, and a write that is a single statement runs without ``BEGIN``/``COMMIT``
(a statement is atomic by itself; two fewer steps).
"""

from __future__ import annotations

import functools
import itertools
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import trio

from ._dialect import SQLITE
from ._errors import StoreDataError, StoreError, StoreUnavailable
from ._migrations import plan
from ._rows import ROW_TYPE_BY_TABLE
from ._store import Statements, Store

T = TypeVar("T")

#: How long a statement waits for another process's lock before failing ("database is locked").
BUSY_TIMEOUT = 5.0
#: Most rows in one multi-row write statement: a power of two, within SQLite's default limit
#: of 32,766 host parameters for every table (a build with a lower limit lowers it).  A
#: prepared trades statement takes about 1.2 kB of SQLite memory per row in the connection's
#: statement cache (the powers of two up to 2,048 rows: 5 MB) and about 3 ms per 1,024 rows to
#: prepare, once.  4,096 measured no faster.
ROWS_PER_STATEMENT = 2048

_PRAGMAS = (
    "PRAGMA journal_mode = WAL",
    # WAL + NORMAL: a commit survives a crash of the process; only a power cut can lose the
    # last commits (FULL would fsync every commit)
    "PRAGMA synchronous = NORMAL",
    # 16 MiB of page cache (SQLite's default is 2 MiB): 64 MiB wrote a 200,000-row burst about
    # 5 % faster (bench/bench_storage.py), for up to 48 MiB more of resident memory
    "PRAGMA cache_size = -16384",
    # checkpoint every 64 MiB of WAL rather than 4 MiB: random-key index inserts dirty many
    # pages per commit, and checkpointing after nearly every batch halved the write rate
    "PRAGMA wal_autocheckpoint = 16384",
    "PRAGMA journal_size_limit = 67108864",
    "PRAGMA temp_store = MEMORY",
)


def _classify(exc: BaseException, path: str) -> StoreError:
    """Map a sqlite3 (or parameter conversion) error to what the caller should do."""
    if isinstance(exc, (sqlite3.IntegrityError, sqlite3.DataError, OverflowError, TypeError, ValueError)):
        return StoreDataError(f"SQLite refused the rows: {exc}")
    if isinstance(exc, sqlite3.InterfaceError) or (
            isinstance(exc, sqlite3.ProgrammingError) and "binding" in str(exc).lower()):
        return StoreDataError(f"SQLite refused the rows: {exc}")
    return StoreUnavailable(f"SQLite database {path}: {exc.__class__.__name__}: {exc}")


@functools.cache
def _write_sql(table: str, rows: int) -> str:
    return SQLITE.write_statement(table, rows)


def _chunk_sizes(n: int, largest: int) -> list[int]:
    """``n`` rows as statements of ``largest`` rows, then the rest in decreasing powers of two."""
    sizes = [largest] * (n // largest)
    rest = n % largest
    size = largest
    while rest:
        size >>= 1
        if rest >= size:
            sizes.append(size)
            rest -= size
    return sizes


class SqliteStore(Store):
    def __init__(self, conn: sqlite3.Connection, path: str) -> None:
        super().__init__(SQLITE, f"sqlite:///{path}")
        self.path = path
        self._conn: sqlite3.Connection | None = conn
        self._limiter = trio.CapacityLimiter(1)
        max_params = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        self._rows_per_statement: dict[str, int] = {}
        for table, cls in ROW_TYPE_BY_TABLE.items():
            largest = ROWS_PER_STATEMENT
            while largest > 1 and largest * len(cls.COLUMNS) > max_params:
                largest >>= 1
            self._rows_per_statement[table] = largest

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            conn = self._conn
            if conn is None:
                raise StoreUnavailable(f"SQLite database {self.path} is closed")
            try:
                return fn(conn)
            except StoreError:
                raise
            except (sqlite3.Error, OverflowError, TypeError, ValueError) as exc:
                raise _classify(exc, self.path) from exc

        return await trio.to_thread.run_sync(call, limiter=self._limiter)

    async def migrate(self, *, target: int | None = None) -> list[int]:
        def run(conn: sqlite3.Connection) -> list[int]:
            conn.execute(SQLITE.create_migrations_table())
            applied_now: list[int] = []
            while True:
                # one transaction per migration, its record included; IMMEDIATE takes the write
                # lock first, so two processes migrating at once run each migration once
                conn.execute("BEGIN IMMEDIATE")
                try:
                    applied = [v for (v,) in conn.execute("SELECT version FROM schema_migrations")]
                    todo = plan(applied, target)
                    if not todo:
                        conn.execute("COMMIT")
                        return applied_now
                    migration = todo[0]
                    for sql in migration.statements(SQLITE):
                        conn.execute(sql)
                    conn.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                                 (migration.version, migration.name, time.time()))
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                applied_now.append(migration.version)

        return await self._run(run)

    async def _execute_batch(self, statements: Statements) -> None:
        # the SQL and the flat parameter lists are made here, on the trio thread: the worker
        # then holds the GIL only to bind them
        steps: list[tuple[str, list[Any]]] = []
        for table, rows in statements:
            start = 0
            for size in _chunk_sizes(len(rows), self._rows_per_statement[table]):
                chunk = rows[start:start + size]
                start += size
                steps.append((_write_sql(table, size), list(itertools.chain.from_iterable(chunk))))

        def run(conn: sqlite3.Connection) -> None:
            if len(steps) == 1:
                conn.execute(*steps[0])  # one statement: its own transaction
                return
            conn.execute("BEGIN")
            try:
                for sql, params in steps:
                    conn.execute(sql, params)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

        await self._run(run)

    async def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        def run(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            return conn.execute(sql, tuple(params)).fetchall()

        return await self._run(run)

    async def close(self) -> None:
        def run() -> None:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()

        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(run, limiter=self._limiter)


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
    try:
        for pragma in _PRAGMAS:
            # switching a new database to WAL does not wait for a lock held by another
            # connection (no busy handler there): retry for up to BUSY_TIMEOUT
            deadline = time.monotonic() + BUSY_TIMEOUT
            while True:
                try:
                    conn.execute(pragma)
                    break
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or time.monotonic() > deadline:
                        raise
                    time.sleep(0.01)
    except BaseException:
        conn.close()
        raise
    return conn


@asynccontextmanager
async def open_sqlite(path: str) -> AsyncIterator[SqliteStore]:
    try:
        conn = await trio.to_thread.run_sync(_connect, path)
    except sqlite3.Error as exc:
        raise StoreUnavailable(f"cannot open SQLite database {path}: {exc}") from exc
    store = SqliteStore(conn, path)
    try:
        yield store
    finally:
        await store.close()
