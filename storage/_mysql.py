"""MySQL, MariaDB and TiDB through asyncmy, on an asyncio loop run by trio-asyncio.

:func:`open_mysql` opens its own ``trio_asyncio.open_loop()`` and creates the asyncmy pool
inside it (asyncmy binds the pool to the loop it was created on), so every ``open_store`` has
a fresh loop and pool and nothing asyncio outlives the block.

Functions named ``*_aio`` are asyncio-flavoured and run on that loop; each store operation is
exactly one crossing (``aio_as_trio(fn, loop=...)(...)``): a batch write is a transaction of
``executemany`` calls.  Writes go through a pool of their own, with autocommit off, so a
transaction is the statements then ``COMMIT`` (no ``BEGIN`` round trip: each round trip also
waits for the trio thread, busy taking in the next batch, to notice the answer); reads and
migrations use the main pool (autocommit on).  A large batch of trades is spread over
``write_connections`` (default 2) transactions at once: while the server executes one part,
asyncmy encodes the other (through the writer, 10–18 % more rows/s than one connection in
the same bench run).  The batch is then not one transaction, which the writer does not need:
every write is an idempotent upsert and a batch that fails anywhere is written again whole;
two parts that deadlock each other are written again on one connection at once.

With ``stmt_cache_size > 0`` asyncmy runs positional statements as server-side prepared
statements and, on MariaDB, sends ``executemany`` as one ``COM_STMT_BULK_EXECUTE`` (binary rows, one round trip; it falls back
to multi-row text ``INSERT`` statements by itself for batches it cannot bind, e.g. a column
that is NULL in every row).  Measured on MariaDB with trade rows, the bulk protocol took about
105,000 rows/s, asyncmy's multi-row text ``INSERT`` 56,000 and prepared multi-row ``VALUES``
statements 92,000 (the server's work, 7.8 µs of its CPU per row, is what bounds it).

Cancellation: a trio cancellation cancels the asyncio task; a connection interrupted mid-query
(or failing in any way) is closed, never returned to the pool, so the next operation gets a
fresh connection (the server rolls back the interrupted transaction).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import ssl
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import asyncmy
import asyncmy.errors
import attrs
import trio
import trio_asyncio

from ._dialect import Dialect, mysql_dialect_for
from ._errors import StoreDataError, StoreError, StoreUnavailable
from ._migrations import plan
from ._store import Statements, Store

if TYPE_CHECKING:
    from config import DatabaseUrl

#: Prepared statements kept per connection (writes, reads, a few migration statements).
STMT_CACHE_SIZE = 64
DEFAULT_POOL_SIZE = 4
#: How long closing the pool may take before its connections are dropped.
CLOSE_TIMEOUT = 2.0
#: How long to wait for another process's migration to finish.
MIGRATION_LOCK_TIMEOUT = 30

_TRUE = {"1", "true", "yes", "on", "required"}
_FALSE = {"0", "false", "no", "off", "disabled", ""}


def _flag(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{name}={raw!r}: expected true or false")


def _positive_int(name: str, raw: str) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise ValueError(f"{name}={raw!r}: expected a whole number") from None
    if value < 1:
        raise ValueError(f"{name}={raw!r}: expected a number >= 1")
    return value


def ssl_context(options: dict[str, str]) -> ssl.SSLContext | None:
    """The TLS context the URL options ask for, or None for plain TCP.

    ``ssl=true`` (implied by ``ssl_ca``/``ssl_cert``) turns TLS on; ``ssl_ca`` is the CA bundle
    (default: the system's); ``ssl_cert``/``ssl_key`` a client certificate; ``ssl_verify=false``
    skips certificate and host name checks (encryption without authentication).

    Raises:
        ValueError: an invalid value; OSError/ssl.SSLError: a file cannot be loaded.
    """
    if "ssl" in options:
        enabled = _flag("ssl", options["ssl"])
    else:
        enabled = any(options.get(k) for k in ("ssl_ca", "ssl_cert", "ssl_key"))
    if not enabled:
        return None
    verify = _flag("ssl_verify", options.get("ssl_verify", "true"))
    for name in ("ssl_ca", "ssl_cert", "ssl_key"):
        if options.get(name) and not os.path.isfile(options[name]):
            raise ValueError(f"{name}={options[name]!r}: no such file")
    context = ssl.create_default_context(cafile=options.get("ssl_ca") or None)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if options.get("ssl_cert"):
        context.load_cert_chain(options["ssl_cert"], options.get("ssl_key") or None)
    elif options.get("ssl_key"):
        raise ValueError("ssl_key needs ssl_cert")
    return context


@attrs.frozen
class ConnectSettings:
    """What a ``mysql://`` URL asks for."""

    #: asyncmy's ``connect`` arguments.
    kwargs: dict[str, Any]
    #: Connections for reads and migrations (``pool_size``).
    pool_size: int
    #: Connections a large write is spread over (``write_connections``).
    write_connections: int
    #: Seconds connecting may take (``connect_timeout``).
    timeout: float


def connect_settings(url: DatabaseUrl, connect_timeout: float) -> ConnectSettings:
    """The connection settings of ``url``.

    Raises:
        ValueError, OSError, ssl.SSLError: see :func:`ssl_context`.
    """
    options = dict(url.options)
    timeout = _positive_int("connect_timeout", options["connect_timeout"]) if "connect_timeout" in options \
        else connect_timeout
    pool_size = _positive_int("pool_size", options["pool_size"]) if "pool_size" in options else DEFAULT_POOL_SIZE
    write_connections = _positive_int("write_connections", options["write_connections"]) \
        if "write_connections" in options else DEFAULT_WRITE_CONNECTIONS
    kwargs: dict[str, Any] = {
        "host": url.host,
        "port": url.port,
        "user": url.user or None,
        "password": url.password,
        "db": url.database,
        "charset": options.get("charset") or "utf8mb4",
        "autocommit": True,  # writes open their transaction explicitly
        "connect_timeout": max(1, round(timeout)),
        # refuse bad rows, never truncate; asyncmy sends "SET sql_mode=%s" unquoted: quote it here
        "sql_mode": "'STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION'",
        "stmt_cache_size": STMT_CACHE_SIZE,
        "ssl": ssl_context(options),
    }
    return ConnectSettings(kwargs, pool_size, write_connections, float(timeout))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, asyncmy.errors.MySQLError) and exc.args:
        return f"{exc.__class__.__name__} {exc.args[0]}: {exc.args[1] if len(exc.args) > 1 else ''}".rstrip(": ")
    text = str(exc)
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__


#: Server errors about the rows rather than the server: a packet (row) over max_allowed_packet.
_ROW_ERRNOS = {1153, 1301}


def _classify(exc: Exception, description: str) -> StoreError:
    if isinstance(exc, StoreError):
        return exc
    if isinstance(exc, (asyncmy.errors.DataError, asyncmy.errors.IntegrityError, ValueError, TypeError,
                        OverflowError)) or (
            isinstance(exc, asyncmy.errors.OperationalError) and exc.args and exc.args[0] in _ROW_ERRNOS):
        return StoreDataError(f"{description} refused the rows: {_describe(exc)}")
    return StoreUnavailable(f"{description}: {_describe(exc)}")


def _collapse(group: BaseExceptionGroup[Any]) -> BaseException:
    """The one meaningful exception of a group that ``open_loop``'s nurseries wrapped around it."""
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        else:
            leaves.append(exc)

    walk(group)
    real = [e for e in leaves if not isinstance(e, trio.Cancelled)]
    if len(real) == 1:
        return real[0]
    if not real and leaves:
        return leaves[0]
    return group


#: Most bytes (roughly) and rows sent in one ``executemany``: a bulk execute is one packet, and
#: packets are limited by the server's ``max_allowed_packet`` (16 MiB by default).
CHUNK_BYTES = 4 << 20
#: (8,192 rather than 5,000: trade batches go in fewer bulk executes, each a round trip that
#: waits for the trio thread: 93,000 against 87,000 rows/s through the writer.)
CHUNK_ROWS = 8192
#: Connections a large batch of trades is spread over (URL option ``write_connections``).
DEFAULT_WRITE_CONNECTIONS = 2
#: Fewest trade rows per connection worth a transaction of its own.
SPREAD_MIN_ROWS = 2048
#: Server errors that mean two of our transactions got in each other's way (deadlock, lock
#: wait timeout): the batch is written again on one connection.
_CONFLICT_ERRNOS = {1205, 1213}


def _chunks(statement: str, table: str, rows: Sequence[Any], chunk_bytes: int) -> list[tuple[str, Any]]:
    """``(sql, rows)`` for each ``executemany`` of one table's rows: chunks of at most
    CHUNK_ROWS rows and about ``chunk_bytes`` bytes.  Trade rows (a few hundred bytes each) are
    not measured."""
    if table == "trades":
        small_chunk = max(1, min(CHUNK_ROWS, chunk_bytes // 512))  # trade rows are under 512 bytes
        return [(statement, rows[i:i + small_chunk]) for i in range(0, len(rows), small_chunk)]
    out: list[tuple[str, Any]] = []
    chunk: list[tuple[Any, ...]] = []
    size = 0
    for row in rows:
        row_size = 9 * len(row) + sum(len(v) for v in row if v.__class__ is str)
        if chunk and (size + row_size > chunk_bytes or len(chunk) >= CHUNK_ROWS):
            out.append((statement, chunk))
            chunk, size = [], 0
        chunk.append(row)
        size += row_size
    if chunk:
        out.append((statement, chunk))
    return out


def _split(statements: Statements, sql: dict[str, str], chunk_bytes: int = CHUNK_BYTES,
           connections: int = 1) -> list[list[tuple[str, Any]]]:
    """The ``executemany`` calls of a batch, for each connection that takes part of it.

    Each part is one transaction of its own.  The trades are spread evenly over up to
    ``connections`` parts (at least SPREAD_MIN_ROWS rows each); everything else goes with the
    first part.  A batch on several connections is not one transaction, which the writer does
    not need: its rows are idempotent upserts, and a batch that fails anywhere is written again
    whole."""
    trades = next((rows for table, rows in statements if table == "trades"), ())
    parts = max(1, min(connections, len(trades) // SPREAD_MIN_ROWS))
    out: list[list[tuple[str, Any]]] = [[] for _ in range(parts)]
    for table, rows in statements:
        statement = sql[table]
        if table != "trades" or parts == 1:
            out[0].extend(_chunks(statement, table, rows, chunk_bytes))
            continue
        share = -(-len(rows) // parts)
        for i in range(parts):
            out[i].extend(_chunks(statement, table, rows[i * share:(i + 1) * share], chunk_bytes))
    return out


# -- asyncio-flavoured ---------------------------------------------------------------------------


async def _create_pool_aio(settings: ConnectSettings) -> tuple[Any, Any, str, int]:
    """The pool, the write pool (connects on first use), the server's version and its
    max_allowed_packet."""
    kwargs = settings.kwargs
    pool = await asyncmy.create_pool(minsize=1, maxsize=settings.pool_size, pool_recycle=3600, **kwargs)
    try:
        async with pool.acquire() as conn:
            version = conn.get_server_info()
            cur = conn.cursor()
            await cur.execute("SELECT @@max_allowed_packet")
            (max_packet,) = await cur.fetchone()
            await cur.close()
        write_pool = await asyncmy.create_pool(minsize=0, maxsize=settings.write_connections, pool_recycle=3600,
                                               **{**kwargs, "autocommit": False})
    except BaseException:
        pool.terminate()
        raise
    return pool, write_pool, version, int(max_packet)


async def _transaction_aio(pool: Any, statements: list[tuple[str, Any]]) -> None:
    """One transaction on a write pool connection (autocommit off: it starts by itself)."""
    async with pool.acquire() as conn:
        try:
            cur = conn.cursor()
            for sql, rows in statements:
                await cur.executemany(sql, rows)
            await conn.commit()
            await cur.close()
        except BaseException:
            conn.close()  # half-done or interrupted: never reuse it (the server rolls back)
            raise


def _conflict(exc: BaseException) -> bool:
    return isinstance(exc, asyncmy.errors.OperationalError) and bool(exc.args) and exc.args[0] in _CONFLICT_ERRNOS


async def _write_aio(pool: Any, parts: list[list[tuple[str, Any]]]) -> None:
    """The parts of a batch, each a transaction on a connection of its own, at the same time
    (while the server executes one, asyncmy encodes the next).  If any part fails, the error
    is raised once every part has ended (the writer writes the whole batch again); if the
    parts only got in each other's way (a deadlock), the batch is written again on one
    connection here."""
    if len(parts) == 1:
        await _transaction_aio(pool, parts[0])
        return
    results = await asyncio.gather(*(_transaction_aio(pool, part) for part in parts), return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    if not errors:
        return
    if all(_conflict(e) for e in errors):
        await _transaction_aio(pool, [call for part in parts for call in part])
        return
    raise next((e for e in errors if not _conflict(e)), errors[0])


async def _fetch_aio(pool: Any, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    async with pool.acquire() as conn:
        try:
            cur = conn.cursor()
            await cur.execute(sql, tuple(params) if params else None)
            rows = await cur.fetchall()
            await cur.close()
            return list(rows)
        except BaseException:
            conn.close()
            raise


async def _migrate_aio(pool: Any, dialect: Dialect, database: str, target: int | None) -> list[int]:
    # GET_LOCK names are server-wide: one lock per database
    lock = "pmi_migrate_" + hashlib.sha1(database.encode()).hexdigest()[:20]
    applied_now: list[int] = []
    async with pool.acquire() as conn:
        try:
            cur = conn.cursor()
            locked = False
            try:
                await cur.execute("SELECT GET_LOCK(%s, %s)", (lock, MIGRATION_LOCK_TIMEOUT))
                (got,) = await cur.fetchone()
                if got != 1:
                    raise StoreUnavailable(f"another process held the schema migration lock for "
                                           f"{MIGRATION_LOCK_TIMEOUT} s")
                locked = True
            except (asyncmy.errors.ProgrammingError, asyncmy.errors.NotSupportedError):
                pass  # a server without GET_LOCK: migrations are idempotent anyway
            await cur.execute(dialect.create_migrations_table())
            await cur.execute("SELECT version FROM schema_migrations")
            applied = [int(v) for (v,) in await cur.fetchall()]
            for migration in plan(applied, target):
                # DDL commits by itself on MySQL: each statement is idempotent, and the record
                # comes last, so a migration cut short is simply run again
                for sql in migration.statements(dialect):
                    await cur.execute(sql)
                await cur.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (%s, %s, %s)",
                                  (migration.version, migration.name, time.time()))
                applied_now.append(migration.version)
            if locked:
                await cur.execute("SELECT RELEASE_LOCK(%s)", (lock,))
                await cur.fetchall()
            await cur.close()
        except BaseException:
            conn.close()  # also releases the lock
            raise
    return applied_now


# -- trio-flavoured ------------------------------------------------------------------------------


class MySqlStore(Store):
    def __init__(self, loop: Any, pool: Any, write_pool: Any, dialect: Dialect, description: str, database: str,
                 server_version: str, max_packet: int = 16 << 20,
                 write_connections: int = DEFAULT_WRITE_CONNECTIONS) -> None:
        super().__init__(dialect, description)
        self.server_version = server_version
        # trades (a few hundred bytes a row, up to CHUNK_ROWS rows) must fit a packet too
        self._chunk_bytes = max(1 << 18, min(CHUNK_BYTES, max_packet // 2))
        self._loop = loop
        self._pool = pool
        self._write_pool = write_pool
        self._write_connections = write_connections
        self._database = database
        self._closed = False

    async def _aio(self, fn: Any, *args: Any) -> Any:
        if self._closed:
            raise StoreUnavailable(f"{self.description}: the store is closed")
        try:
            return await trio_asyncio.aio_as_trio(fn, loop=self._loop)(*args)
        except Exception as exc:  # noqa: BLE001 - every driver error is classified
            raise _classify(exc, self.description) from exc

    async def migrate(self, *, target: int | None = None) -> list[int]:
        applied: list[int] = await self._aio(_migrate_aio, self._pool, self.dialect, self._database, target)
        return applied

    async def _execute_batch(self, statements: Statements) -> None:
        await self._aio(_write_aio, self._write_pool,
                        _split(statements, self._write_sql, self._chunk_bytes, self._write_connections))

    async def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = await self._aio(_fetch_aio, self._pool, sql, params)
        return rows

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        pools = (self._write_pool, self._pool)
        for pool in pools:
            pool.close()
        with trio.move_on_after(CLOSE_TIMEOUT) as scope:
            scope.shield = True
            try:
                for pool in pools:
                    await trio_asyncio.aio_as_trio(pool.wait_closed, loop=self._loop)()
            except Exception:  # noqa: BLE001 - closing a broken pool: drop what is left below
                scope.cancel()
        if scope.cancelled_caught:
            for pool in pools:
                pool.terminate()


@asynccontextmanager
async def open_mysql(url: DatabaseUrl, *, connect_timeout: float = 10.0) -> AsyncIterator[MySqlStore]:
    description = url.redacted()
    try:
        settings = connect_settings(url, connect_timeout)
    except (ValueError, OSError, ssl.SSLError) as exc:
        raise StoreUnavailable(f"invalid database settings in {description}: {exc}") from None
    try:
        async with trio_asyncio.open_loop() as loop:
            try:
                with trio.fail_after(settings.timeout):
                    pool, write_pool, version, max_packet = await trio_asyncio.aio_as_trio(
                        _create_pool_aio, loop=loop)(settings)
            except trio.TooSlowError:
                raise StoreUnavailable(f"{description}: no answer within {settings.timeout:g} s") from None
            except Exception as exc:  # noqa: BLE001 - classified
                hint = ""
                if settings.kwargs["ssl"] is not None and "WRONG_VERSION_NUMBER" in str(exc):
                    hint = " (TLS was asked for: does the server have TLS enabled?)"
                raise StoreUnavailable(f"cannot connect to {description}: {_describe(exc)}{hint}") from exc
            store = MySqlStore(loop, pool, write_pool, mysql_dialect_for(version), description, url.database,
                               version, max_packet, settings.write_connections)
            try:
                yield store
            finally:
                await store.close()
    except BaseExceptionGroup as group:
        raise _collapse(group) from None
