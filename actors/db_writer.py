"""DB writer actor: notable trades, markets and forecasts into the database, in batches.

Two tasks per incarnation:

- the *receiver* takes what is queued in the inbox into memory (``receive_batch`` of up to
  ``RECEIVE_CHUNK`` messages, then a checkpoint, or a sleep of a few milliseconds when that was
  not a full chunk, so that messages gather in the inbox instead of waking it up one by one).
  A trade becomes its parameters tuple at once (``trade_params``: no row object), and rows
  with the same key are merged there as the database would merge them.  Past
  ``memory_limit_rows``: while the database is up and the writer keeps taking batches, the
  receiver waits for it, so the inbox fills and pushes back on producers (writing rows beats
  journaling them); when the database is down (or takes no batch for ``ROOM_WAIT`` seconds,
  or a journal is being replayed) everything held in memory is appended (fsynced) to a local
  journal file, in receive order, so producers are never held up by an outage;
- the *writer* opens the store, migrates it, and writes what is held — first a batch that
  failed before, then the journal (replayed in order, then removed), then memory once
  ``batch_rows`` rows are held or the oldest has waited ``batch_seconds`` — in transactions
  of at most ``batch_rows`` rows, one crossing each (``Store.write_params``).  While a batch
  is being written the receiver goes on taking in and merging the next ones.  A failed write
  or connection closes the store and retries with ``retry_backoff``, the same rows again.

Rows held in memory and the journal's state belong to the actor's factory, not to an
incarnation: a killed incarnation's rows are still there for the next one, and the inbox
redelivers the batch that was being received (merged again: writes are idempotent), so a
batch interrupted mid-write is written again by the next incarnation, never lost, never
duplicated.  Rows only exist in this process's memory until written or journaled, like
anything queued in an inbox.

Graceful stop (the inbox ends after draining): with the database up and no journal to replay
first, the rows held are written within ``flush_timeout``; otherwise (or if that fails) they
are appended to the journal, which the next start replays before anything else.

A row the database refuses for its content (``StoreDataError``) is found by writing the batch
again in halves (recursively), then logged and appended to the ``*.rejected.jsonl`` file next
to the journal so one bad row never blocks the others.  One line is logged when the database
goes away (not one per retry) and one when it is back and the backlog is written.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import trio

import storage
from protocols.polymarket import MarketInfo, Trade
from storage import (
    MERGE_PARAMS,
    AlertDeliveryRow,
    TABLES,
    Journal,
    JournalChunk,
    MarketRow,
    ModelForecastRow,
    Params,
    Row,
    Store,
    StoreDataError,
    StoreUnavailable,
    SwarmForecastRow,
    TradeRow,
    row_from_params,
    trade_params,
)
from supervision import ActorContext, Backoff

if TYPE_CHECKING:
    from config import DatabaseUrl


# -- messages -------------------------------------------------------------------------------------


@attrs.frozen(slots=True)
class StoreTrade:
    """Store a notable trade; ``is_whale`` marks it a whale (a whale mark is never undone)."""

    trade: Trade
    is_whale: bool = False


@attrs.frozen(slots=True)
class StoreMarket:
    """Store (upsert) a market; ``updated_at`` defaults to the time the writer receives it and
    a ``last_price`` of None keeps the price already stored."""

    info: MarketInfo
    last_price: float | None = None
    updated_at: float | None = None


#: What the writer's inbox accepts (a bare ``Trade`` is stored as notable, not whale).
DbMessage = (StoreTrade | StoreMarket | Trade | MarketRow | TradeRow | ModelForecastRow | SwarmForecastRow
             | AlertDeliveryRow)

_ROW_CLASSES = (MarketRow, TradeRow, ModelForecastRow, SwarmForecastRow, AlertDeliveryRow)
_IS_WHALE = TradeRow.COLUMNS.index("is_whale")


def to_row(message: Any, received_at: float) -> Row:
    """The row a message stores.

    Raises:
        TypeError: not a message the writer knows; ValueError: an invalid value.
    """
    cls = message.__class__
    if cls is StoreTrade:
        return TradeRow.from_trade(message.trade, is_whale=message.is_whale)
    if cls is Trade:
        return TradeRow.from_trade(message, is_whale=False)
    if cls is StoreMarket:
        updated_at = received_at if message.updated_at is None else message.updated_at
        return MarketRow.from_market(message.info, last_price=message.last_price, updated_at=updated_at)
    if cls in _ROW_CLASSES:
        row: Row = message
        return row
    raise TypeError(f"the DB writer cannot store a {cls.__name__}")


def to_params(message: Any, received_at: float) -> tuple[str, str, Params]:
    """``(table, key, parameters)`` of the row a message stores (``to_row`` without building
    a row object for trades: the writer's hot path).

    Raises:
        TypeError: not a message the writer knows; ValueError: an invalid value.
    """
    cls = message.__class__
    if cls is StoreTrade:
        params = trade_params(message.trade, message.is_whale)
        return "trades", params[0], params
    if cls is Trade:
        params = trade_params(message, False)
        return "trades", params[0], params
    row = to_row(message, received_at)
    return row.TABLE, row.key, row.params()


# -- statistics ----------------------------------------------------------------------------------


@attrs.define
class DbStats:
    """The DB writer's counters (for ``/status``, ``/readyz`` and metrics).

    Times ending in ``_at``/``_since`` are wall-clock epoch seconds.
    """

    #: ``"starting"`` (not connected yet), ``"up"`` or ``"down"``.
    state: str = "starting"
    #: The database, password hidden.
    database: str = ""
    schema_version: int = 0
    #: Rows in committed batches (a batch written again after a crash counts again).
    rows_written: int = 0
    batches_written: int = 0
    #: Failed connection or write attempts (each one is retried).
    retries: int = 0
    #: Times the database went from up (or starting) to down.
    outages: int = 0
    down_since: float | None = None
    last_error: str | None = None
    #: Rows held in memory, not yet written (nor journaled).
    rows_buffered: int = 0
    #: Rows in the journal not yet replayed, and the journal file's size.
    journal_rows: int = 0
    journal_bytes: int = 0
    rows_journaled: int = 0
    rows_replayed: int = 0
    #: Rows the database refused for their content (kept in the rejected file).
    rows_rejected: int = 0
    #: Inbox messages taken in (a message redelivered after a crash counts again).
    messages_received: int = 0
    #: Inbox messages that were not something to store (logged and dropped).
    messages_invalid: int = 0
    #: Receive time of the oldest row not yet in the database (memory or journal).
    oldest_unwritten_at: float | None = None

    @property
    def db_up(self) -> bool:
        return self.state == "up"

    def oldest_unwritten_age(self, now: float | None = None) -> float:
        """Seconds since the oldest row not yet in the database was received (0 if none)."""
        if self.oldest_unwritten_at is None:
            return 0.0
        return max(0.0, (time.time() if now is None else now) - self.oldest_unwritten_at)

    async def wait_for_schema(self, version: int, timeout: float = 60.0) -> None:
        """Until the writer has migrated the database to at least ``version``, or ``timeout``
        seconds (then the caller reads anyway, and fails if the tables are missing): for actors
        that read what earlier runs stored over a connection of their own."""
        with trio.move_on_after(timeout):
            while self.schema_version < version:
                await trio.sleep(0.1)

    def as_dict(self, now: float | None = None) -> dict[str, Any]:
        data = attrs.asdict(self)
        data["db_up"] = self.db_up
        data["oldest_unwritten_age"] = self.oldest_unwritten_age(now)
        return data


# -- rows held in memory ---------------------------------------------------------------------------


class _Pending:
    """Rows received and not yet written or journaled, as parameters (``row.params()``), by
    table then key, in receive order; a row whose key is already held is merged into it the way
    the database would merge it (``MERGE_PARAMS``)."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[str, tuple[Params, float]]] = {t: {} for t in TABLES}
        self.count = 0

    def add(self, table: str, key: str, params: Params, at: float) -> None:
        held = self.tables[table]
        old = held.get(key)
        if old is None:
            held[key] = (params, at)
            self.count += 1
        else:
            merged = MERGE_PARAMS[table](old[0], params)
            if merged is not old[0]:
                held[key] = (merged, old[1])  # keeps its place and its receive time

    def take(self, limit: int) -> tuple[dict[str, list[Params]], list[float]]:
        """Up to ``limit`` rows, oldest first within each table (markets first): their
        parameters by table, and their receive times in that order."""
        out: dict[str, list[Params]] = {}
        times: list[float] = []
        for table, held in self.tables.items():
            room = limit - len(times)
            if room <= 0:
                break
            if not held:
                continue
            if len(held) <= room:
                items: Any = held.values()
                self.tables[table] = {}
            else:
                items = [held.pop(k) for k in list(itertools.islice(held, room))]
            out[table] = [p for p, _ in items]
            times.extend([t for _, t in items])
        self.count -= len(times)
        return out, times

    def oldest_at(self) -> float | None:
        times = [next(iter(held.values()))[1] for held in self.tables.values() if held]
        return min(times) if times else None


@attrs.define(eq=False)
class _Work:
    """A batch being written: taken from memory, or a chunk of the journal."""

    #: Parameters by table, in write order.
    tables: dict[str, list[Params]]
    count: int
    times: list[float] | None  # receive times, in the order of rows() (memory only)
    oldest_at: float | None
    chunk: JournalChunk | None = None

    @property
    def from_journal(self) -> bool:
        return self.chunk is not None

    def rows(self) -> Iterator[tuple[str, Params]]:
        for table, params in self.tables.items():
            for p in params:
                yield table, p

    def rows_with_times(self) -> Iterator[tuple[Row, float]]:
        """``(row, received_at)`` of each row, for the journal (memory work only)."""
        assert self.times is not None
        for (table, params), at in zip(self.rows(), self.times, strict=True):
            yield row_from_params(table, params), at

    @classmethod
    def of_chunk(cls, chunk: JournalChunk) -> _Work:
        tables: dict[str, list[Params]] = {}
        for row in chunk.rows:
            tables.setdefault(row.TABLE, []).append(row.params())
        return cls({t: tables[t] for t in TABLES if t in tables}, len(chunk.rows), None, chunk.first_at, chunk)


class _Outage(Exception):
    """Internal: the database failed; the reason is in ``args[0]``."""


# -- the actor ---------------------------------------------------------------------------------------


OpenStore = Callable[..., AbstractAsyncContextManager[Store]]

#: After a receive that did not fill a chunk, the receiver sleeps this long (at most
#: ``batch_seconds``) so that messages gather in the inbox instead of each waking it up.
RECEIVE_LINGER = 0.005
#: Most messages the receiver takes in one go before letting other tasks run: the writer's
#: database round trips (and, on MySQL, the asyncio loop's callbacks) wait for the trio thread,
#: so a long stretch of receiving would hold each write up.
RECEIVE_CHUNK = 512
#: With memory full and the database up, the receiver waits this long for the writer to take
#: a batch (the inbox fills meanwhile and pushes back on producers) before journaling instead.
ROOM_WAIT = 1.0


def db_writer_actor(
    url: DatabaseUrl | None,
    stats: DbStats,
    *,
    batch_rows: int = 500,
    batch_seconds: float = 0.5,
    memory_limit_rows: int = 50_000,
    journal_path: Path | str = Path("polymarket_insights.journal.jsonl"),
    rejected_path: Path | str | None = None,
    retry_backoff: Backoff = Backoff(min=0.5, max=30.0, factor=2.0, jitter=0.2),
    write_timeout: float = 30.0,
    connect_timeout: float = 10.0,
    flush_timeout: float = 5.0,
    default_sqlite_path: str = "polymarket_insights.db",
    open_store: OpenStore = storage.open_store,
    wall_clock: Callable[[], float] = time.time,
    rng: random.Random | None = None,
) -> Callable[..., Any]:
    """The DB writer's actor body (see the module docstring for the design).

    Args:
        url: ``DATABASE_URL`` (``None``: SQLite at ``default_sqlite_path``).
        stats: Counters this actor keeps up to date.
        batch_rows: Most rows per transaction, and per inbox receive.
        batch_seconds: Longest wait for a batch to fill once a first message is there.
        memory_limit_rows: Rows held in memory before they go to the journal.
        journal_path: The journal file (created only when needed, removed once replayed).
        rejected_path: Where refused rows go (default: ``<journal stem>.rejected.jsonl``).
        retry_backoff: Delay between failed connection or write attempts.
        write_timeout: Longest a batch write may take before the database counts as down.
        connect_timeout: Longest connecting may take.
        flush_timeout: On a graceful stop, how long writing the rows held may take before
            they go to the journal instead (keep the child's ``shutdown`` above it).
        open_store: ``storage.open_store`` or a stand-in (tests).

    Cancellation and restarts: see the module docstring; a cancelled incarnation loses
    nothing (rows held and the journal outlive it), a graceful stop flushes.  Errors: database
    failures never end the actor; an exception escaping it is a bug (the supervisor restarts
    it with everything held).
    """
    if batch_rows < 1 or memory_limit_rows < 1:
        raise ValueError("batch_rows and memory_limit_rows must be >= 1")
    rng = rng if rng is not None else random.Random()
    journal_path = Path(journal_path)
    journal = Journal(journal_path)
    rejected = Journal(Path(rejected_path) if rejected_path is not None
                       else journal_path.with_name(journal_path.name.split(".")[0] + ".rejected.jsonl"))
    pending = _Pending()
    inflight: list[_Work | None] = [None]  # boxed: shared by the incarnations' tasks
    batch_since: list[float | None] = [None]  # trio time the oldest row held in memory came in
    linger = min(batch_seconds, RECEIVE_LINGER)
    recovery: dict[str, Any] = {}  # set while catching up after an outage
    announced: list[bool] = []  # the journal left by an earlier run was mentioned
    stats.database = url.redacted() if url is not None else f"sqlite:///{default_sqlite_path}"

    def refresh() -> None:
        work = inflight[0]
        memory_work = work is not None and not work.from_journal
        stats.rows_buffered = pending.count + (work.count if memory_work and work is not None else 0)
        stats.journal_rows = journal.rows
        stats.journal_bytes = journal.size
        candidates = [t for t in (work.oldest_at if work is not None else None, journal.oldest_at,
                                  pending.oldest_at()) if t is not None]
        stats.oldest_unwritten_at = min(candidates) if candidates else None

    async def run(ctx: ActorContext, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        assert ctx.inbox is not None
        inbox = ctx.inbox
        log = ctx.log
        wake = [trio.Event()]
        room = [trio.Event()]  # set when the writer takes rows from memory, or the database goes down
        receiving_done = trio.Event()
        attempt_scope = [trio.CancelScope()]
        write_scope: list[trio.CancelScope | None] = [None]
        flush_deadline = [float("inf")]

        def poke() -> None:
            wake[0].set()

        # -- journal ------------------------------------------------------------------------

        async def spill(reason: str) -> bool:
            """Move every row held in memory (after a memory batch being retried) to the journal."""
            with trio.CancelScope(shield=True):  # all or nothing: never half in memory, half journaled
                work = inflight[0]
                moved: list[tuple[Row, float]] = []
                if work is not None and not work.from_journal:
                    moved.extend(work.rows_with_times())
                saved = dict(pending.tables), pending.count, batch_since[0]
                tables, times = pending.take(pending.count)
                moved.extend(_Work(tables, len(times), times, None).rows_with_times())
                batch_since[0] = None
                if not moved:
                    return True
                try:
                    await journal.append(moved)
                except OSError as exc:
                    pending.tables, pending.count, batch_since[0] = saved
                    log.error("cannot append to the journal {path} ({err}): holding {n} rows in memory",
                              path=str(journal.path), err=exc, n=len(moved))
                    return False
                if work is not None and inflight[0] is work and not work.from_journal:
                    inflight[0] = None  # in the journal now; a write still under way is harmless
                stats.rows_journaled += len(moved)
                log.bind(rows=len(moved)).debug("journaled {n} rows ({reason})", n=len(moved), reason=reason)
                refresh()
                return True

        async def final_spill() -> None:
            """On a graceful stop: whatever is still held goes to the journal."""
            with trio.CancelScope(shield=True):
                if await spill("shutting down") and journal.pending:
                    await journal.compact()  # the next run replays only what was not replayed
                    log.warning("stopped with {n} rows not yet in the database: they are in the journal {path} "
                                "and will be written at the next start", n=journal.rows, path=str(journal.path))
                refresh()

        # -- receiving ----------------------------------------------------------------------

        async def wait_for_room() -> None:
            """Memory is full: while the database is up and the writer takes batches, wait for
            it (the inbox fills and pushes back on producers: writing them beats journaling
            them); when it is down, replaying the journal, or takes nothing for ROOM_WAIT
            seconds, journal what is held (producers are never held up by an outage)."""
            while pending.count >= memory_limit_rows and stats.state == "up" and not journal.pending:
                room[0] = trio.Event()
                with trio.move_on_after(ROOM_WAIT) as scope:
                    await room[0].wait()
                if scope.cancelled_caught:
                    break
            if pending.count >= memory_limit_rows and not await spill("memory limit reached"):
                # the disk refuses too: hold on and let the inbox push back for a while
                await trio.sleep(retry_backoff.max)

        async def receive_loop() -> None:
            chunk = min(batch_rows, RECEIVE_CHUNK)
            while True:
                try:
                    # what is queued now (waiting for a first message); batching by time is the
                    # writer's business, so no waiting here for more, which costs a wake-up each
                    messages = await inbox.receive_batch(chunk, 0)
                except trio.EndOfChannel:
                    return
                at = wall_clock()
                trades = pending.tables["trades"]
                added = 0
                for message in messages:
                    cls = message.__class__
                    try:
                        if cls is StoreTrade:  # the hot path, inlined: most messages are trades
                            params = trade_params(message.trade, message.is_whale)
                        elif cls is Trade:
                            params = trade_params(message, False)
                        else:
                            pending.add(*to_params(message, at), at)
                            continue
                    except (TypeError, ValueError) as exc:
                        stats.messages_invalid += 1
                        log.error("dropping a message that cannot be stored ({err}): {msg!r:.200}", err=exc,
                                  msg=message)
                        continue
                    held = trades.get(params[0])
                    if held is None:
                        trades[params[0]] = (params, at)
                        added += 1
                    elif params[_IS_WHALE] and not held[0][_IS_WHALE]:  # MERGE_PARAMS["trades"]
                        trades[params[0]] = (params, held[1])
                pending.count += added
                if pending.count and batch_since[0] is None:
                    batch_since[0] = trio.current_time()
                stats.messages_received += len(messages)
                poke()
                if pending.count >= memory_limit_rows:
                    await wait_for_room()
                refresh()
                if len(messages) < chunk:
                    # let the next messages gather in the inbox rather than waking up for each
                    await trio.sleep(linger)
                else:
                    await trio.lowlevel.checkpoint()  # let the writer's I/O run

        # -- writing ------------------------------------------------------------------------

        async def next_work() -> _Work | None:
            while True:
                work = inflight[0]
                if receiving_done.is_set() and (journal.pending or (work is not None and work.from_journal)):
                    return None  # stopping: leave the replay to the next start, journal the rest
                if work is not None:
                    return work
                if journal.pending:
                    chunk = await journal.read(batch_rows)
                    if not chunk.rows:  # only blank or damaged lines were left
                        journal.advance(chunk)
                        await journal.remove_if_replayed()
                        refresh()
                        continue
                    inflight[0] = _Work.of_chunk(chunk)
                    return inflight[0]
                since = batch_since[0]
                if pending.count and (pending.count >= batch_rows or receiving_done.is_set() or since is None
                                      or trio.current_time() >= since + batch_seconds):
                    tables, times = pending.take(batch_rows)
                    if not pending.count:
                        batch_since[0] = None
                    inflight[0] = _Work(tables, len(times), times, min(times))
                    room[0].set()
                    return inflight[0]
                return None

        def timeout() -> float:
            if receiving_done.is_set():
                return max(0.0, min(write_timeout, flush_deadline[0] - trio.current_time()))
            return write_timeout

        async def write(store: Store, tables: dict[str, list[Params]]) -> None:
            limit = timeout()
            try:
                with trio.fail_after(limit) as scope:  # a graceful stop may bring the deadline in
                    write_scope[0] = scope
                    await store.write_params(tables)
            except trio.TooSlowError:
                raise _Outage(f"a write took more than {limit:g} s" if not receiving_done.is_set()
                              else "the database did not take the rows in time for the shutdown") from None
            except StoreUnavailable as exc:
                raise _Outage(str(exc)) from exc
            finally:
                write_scope[0] = None

        async def write_alone(store: Store, work: _Work, error: StoreDataError) -> int:
            """After a StoreDataError: the batch again in halves, and each half that fails in
            halves again, down to the rows refused alone (a few bad rows in a large batch cost a
            few dozen writes, not one per row); refused ones go to the rejected file.  Rows are
            written in their order.  Returns how many were refused."""
            rows = list(work.rows())
            refused: list[tuple[Row, float]] = []

            async def split(lo: int, hi: int, exc: StoreDataError) -> None:  # rows[lo:hi] failed together
                if hi - lo == 1:
                    table, params = rows[lo]
                    row = row_from_params(table, params)
                    log.error("the database refused a {table} row ({err}); kept in {path}: {row!r:.300}",
                              table=table, err=exc, path=str(rejected.path), row=row)
                    refused.append((row, work.times[lo] if work.times else wall_clock()))
                    return
                mid = (lo + hi) // 2
                for a, b in ((lo, mid), (mid, hi)):
                    part: dict[str, list[Params]] = {}
                    for table, params in rows[a:b]:
                        part.setdefault(table, []).append(params)
                    try:
                        await write(store, part)
                    except StoreDataError as again:
                        await split(a, b, again)

            await split(0, len(rows), error)
            if refused:
                with trio.CancelScope(shield=True):
                    try:
                        await rejected.append(refused)
                    except OSError as exc:
                        log.error("cannot write the rejected rows to {path}: {err}", path=str(rejected.path), err=exc)
                stats.rows_rejected += len(refused)
            return len(refused)

        async def write_work(store: Store, work: _Work) -> None:
            refused = 0
            try:
                await write(store, work.tables)
            except StoreDataError as exc:
                refused = await write_alone(store, work, exc)
            if inflight[0] is work:
                inflight[0] = None
            if work.chunk is not None:
                journal.advance(work.chunk)
                stats.rows_replayed += work.count
                if recovery:
                    recovery["replayed"] += work.count
                await journal.remove_if_replayed()
            stats.rows_written += work.count - refused
            stats.batches_written += 1
            refresh()
            caught_up(pending.count < batch_rows)

        def caught_up(little_left: bool) -> None:
            """After an outage: one line once what was held meanwhile is written."""
            if not recovery or inflight[0] is not None or journal.pending or not little_left:
                return
            log.info("database {db} is back after {down:.1f} s down: wrote the {n:,} rows held meanwhile "
                     "({replayed:,} replayed from the journal)", db=stats.database,
                     down=wall_clock() - recovery["since"], n=stats.rows_written - recovery["written"],
                     replayed=recovery["replayed"])
            recovery.clear()
            stats.down_since = None

        async def drain(store: Store) -> None:
            """Write until stopped and flushed; raises _Outage when the database fails."""
            while True:
                work = await next_work()
                if work is None:
                    if receiving_done.is_set():
                        return
                    # until more rows come in, or the batch held is batch_seconds old
                    with trio.move_on_at(batch_since[0] + batch_seconds if batch_since[0] is not None
                                         else float("inf")):
                        await wake[0].wait()
                    wake[0] = trio.Event()
                    continue
                await write_work(store, work)

        def went_down(error: str) -> None:
            stats.retries += 1
            stats.last_error = error
            if stats.state == "down":
                log.debug("database still unavailable: {err}", err=error)
                return
            stats.state = "down"
            room[0].set()  # a receiver waiting for room journals instead
            stats.outages += 1
            if stats.down_since is None:
                stats.down_since = wall_clock()
            recovery.clear()
            log.warning("database {db} unavailable: {err}; holding rows in memory (up to {limit:,}), then in the "
                        "journal {path}; retrying in the background", db=stats.database, err=error,
                        limit=memory_limit_rows, path=str(journal.path))

        def came_up(store: Store, version: int, applied: list[int]) -> None:
            was = stats.state
            stats.state = "up"
            stats.schema_version = version
            stats.last_error = None
            if was == "down" and stats.down_since is not None:
                recovery.update(since=stats.down_since, written=stats.rows_written, replayed=0)
                caught_up(pending.count == 0)
            elif was == "starting":
                log.info("database {db} ready (schema version {v}{migrated})", db=store.description, v=version,
                         migrated=f", migrated {applied}" if applied else "")

        async def attempt() -> tuple[bool, bool]:
            """One connection: open, migrate, drain.  Returns ``(stopped and flushed, connected)``."""
            connected = False
            try:
                async with open_store(url, default_sqlite_path=default_sqlite_path,
                                      connect_timeout=connect_timeout) as store:
                    try:
                        with trio.fail_after(max(write_timeout, connect_timeout)):
                            applied = await store.migrate()
                            version = await store.schema_version()
                    except trio.TooSlowError:
                        raise _Outage("migrating the schema took too long") from None
                    except StoreUnavailable as exc:
                        raise _Outage(str(exc)) from exc
                    connected = True
                    came_up(store, version, applied)
                    await drain(store)
                    return True, connected
            except StoreUnavailable as exc:  # opening failed
                went_down(str(exc))
            except _Outage as exc:
                went_down(str(exc.args[0]))
            return False, connected

        async def writer_loop() -> None:
            failures = 0
            while not receiving_done.is_set():
                # cancelled on a graceful stop unless connected: rows then go to the journal
                attempt_scope[0] = trio.CancelScope()
                with attempt_scope[0]:
                    done, connected = await attempt()
                    if done or receiving_done.is_set():
                        break
                    if connected:
                        failures = 0
                    delay = retry_backoff.delay(failures, rng)
                    failures += 1
                    with trio.move_on_after(delay):
                        await receiving_done.wait()
            await final_spill()

        # -- the incarnation ------------------------------------------------------------------

        await journal.scan()
        refresh()
        if journal.rows and not announced:
            announced.append(True)
            log.info("replaying {n} rows from the journal {path} left by an earlier run", n=journal.rows,
                     path=str(journal.path))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(writer_loop)
            task_status.started()
            await receive_loop()
            flush_deadline[0] = trio.current_time() + flush_timeout
            receiving_done.set()
            if stats.state != "up":
                attempt_scope[0].cancel()  # not connected: do not wait for a connection, journal it
            elif write_scope[0] is not None:
                write_scope[0].deadline = min(write_scope[0].deadline, flush_deadline[0])
            poke()

    return run


__all__ = ["DbMessage", "DbStats", "StoreMarket", "StoreTrade", "db_writer_actor", "to_row"]
