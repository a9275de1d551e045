"""Helpers for the DB writer tests: run the actor under a real supervisor, inject faults."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import trio

import storage
from actors.db_writer import DbStats, db_writer_actor
from config import DatabaseUrl
from storage import Params, Store, StoreUnavailable, WriteBatch
from supervision import Backoff, ChildSpec, Inbox, Registry, SupervisorSpec, run_supervisor

#: Fast retries for tests.
FAST = Backoff(min=0.02, max=0.2, factor=2.0, jitter=0.0)


@attrs.define
class Writer:
    """A DB writer running under ``run_supervisor`` (path ``root/db_writer``)."""

    inbox: Inbox[Any]
    stats: DbStats
    registry: Registry
    journal_path: Path
    stop_event: trio.Event = attrs.field(factory=trio.Event)
    done: trio.Event = attrs.field(factory=trio.Event)
    sent: int = 0

    async def send(self, messages: Iterable[Any], *, within: float = 5.0) -> None:
        """Send every message; fails if the inbox pushes back for longer than ``within``."""
        with trio.fail_after(within):
            for message in messages:
                await self.inbox.send_channel.send(message)
                self.sent += 1

    async def drained(self, timeout: float = 10.0) -> None:
        """Wait until the writer has taken in every message sent (``inbox.pending()`` can read 0
        while a message is being handed to the blocked receiver)."""
        await wait_until(lambda: self.stats.messages_received >= self.sent and self.inbox.pending() == 0,
                         timeout, "the inbox drained")

    async def stop(self) -> None:
        self.stop_event.set()
        with trio.fail_after(20):
            await self.done.wait()

    @property
    def info(self) -> Any:
        return self.registry.get("root/db_writer")


@asynccontextmanager
async def running_writer(url: DatabaseUrl | None, tmp_path: Path, *, inbox_size: int = 256,
                         **options: Any) -> AsyncIterator[Writer]:
    stats = DbStats()
    inbox: Inbox[Any] = Inbox("db_writer", inbox_size)
    registry = Registry()
    options.setdefault("journal_path", tmp_path / "journal.jsonl")
    options.setdefault("retry_backoff", FAST)
    options.setdefault("batch_seconds", 0.02)
    options.setdefault("default_sqlite_path", str(tmp_path / "default.db"))
    writer = Writer(inbox, stats, registry, Path(options["journal_path"]))
    spec = ChildSpec(id="db_writer", run=db_writer_actor(url, stats, **options), inbox=inbox, shutdown=15,
                     backoff=Backoff(min=0.01, max=0.05, jitter=0.0))

    async def supervise(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            await run_supervisor(SupervisorSpec(intensity=20, period=10), [spec], registry=registry,
                                 stop=writer.stop_event, task_status=task_status)
        finally:
            writer.done.set()

    async with trio.open_nursery() as nursery:
        await nursery.start(supervise)  # returns once the writer reported ready
        try:
            yield writer
        finally:
            if not writer.done.is_set():
                await writer.stop()


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    with trio.move_on_after(timeout):
        while not predicate():
            await trio.sleep(0.005)
        return
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@attrs.define
class Faults:
    """A stand-in ``open_store`` around the real one that can make the database "down",
    hold a write (``hold_writes``: after the real write committed, or before) or slow every
    write down (``write_delay``)."""

    down: bool = False
    hold_writes: str | None = None  # None, "after_commit" or "before_commit"
    write_delay: float = 0.0  # each write waits this long first (a slow database)
    holding: trio.Event = attrs.field(factory=trio.Event)
    writes: int = 0

    @asynccontextmanager
    async def open_store(self, url: DatabaseUrl | None, **kwargs: Any) -> AsyncIterator[Store]:
        if self.down:
            raise StoreUnavailable("injected: connection refused")
        async with storage.open_store(url, **kwargs) as store:
            yield _FaultyStore(store, self)


class _FaultyStore:
    def __init__(self, store: Store, faults: Faults) -> None:
        self._store = store
        self._faults = faults
        self.description = store.description

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def write(self, batch: WriteBatch) -> None:
        await self.write_params({table: [row.params() for row in rows] for table, rows in batch.tables()})

    async def write_params(self, tables: Mapping[str, Sequence[Params]]) -> None:
        faults = self._faults
        if faults.down:
            raise StoreUnavailable("injected: connection lost")
        if faults.write_delay:
            await trio.sleep(faults.write_delay)
        if faults.hold_writes == "before_commit":
            faults.holding.set()
            await trio.sleep_forever()
        await self._store.write_params(tables)
        faults.writes += 1
        if faults.hold_writes == "after_commit":
            faults.holding.set()
            await trio.sleep_forever()
