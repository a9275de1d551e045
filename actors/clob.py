"""CLOB market channel: token shards (≤ 500 per connection), one actor per shard.

The catalog decides which tokens to watch (:meth:`ClobShards.update`); each shard actor keeps
one connection subscribed to its share, adding and dropping tokens on the live connection
with ``operation`` messages, and sends ``PING`` every 10 s.  Frames go through
:class:`ClobIngest` (shared with replay): price ticks to market state, trades to the trade
merger, new markets and resolutions to the catalog.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs
import trio

from protocols.polymarket import (
    CLOB_PING,
    MalformedFrame,
    MarketResolved,
    NewMarket,
    PriceTick,
    TickSizeChange,
    Trade,
    clob_operation_message,
    clob_subscribe_message,
    is_keepalive,
    parse_clob_frame,
)
from supervision import ActorContext, deliver

from ._ws_client import Connector, open_ws
from ._wsfeed import run_ws_session
from .feed_health import FeedHealth

if TYPE_CHECKING:
    from .recorder import Recorder

MAX_TOKENS_PER_CONNECTION = 500


class ClobShards:
    """Which tokens each CLOB connection should be subscribed to (written by the catalog).

    Tokens stay on the shard they were given (no reshuffling on updates); new tokens go to
    the first shard with room.  Tokens beyond ``shards × per_shard`` are counted as overflow
    and watched by nobody (logged by the catalog).
    """

    def __init__(self, shards: int, per_shard: int = MAX_TOKENS_PER_CONNECTION) -> None:
        if not 1 <= per_shard <= MAX_TOKENS_PER_CONNECTION:
            raise ValueError(f"per_shard must be 1..{MAX_TOKENS_PER_CONNECTION}")
        self.per_shard = per_shard
        self.desired: list[set[str]] = [set() for _ in range(shards)]
        self.overflow: set[str] = set()
        self._changed: list[trio.Event] = [trio.Event() for _ in range(shards)]

    def total(self) -> int:
        return sum(len(s) for s in self.desired)

    def update(self, tokens: set[str]) -> tuple[int, int]:
        """Make the union of the shards equal ``tokens`` (as far as capacity allows).

        Returns ``(added, removed)``.
        """
        added = removed = 0
        touched: set[int] = set()
        for index, shard in enumerate(self.desired):
            gone = shard - tokens
            if gone:
                shard -= gone
                removed += len(gone)
                touched.add(index)
        current = set().union(*self.desired)
        self.overflow = set()
        for token in sorted(tokens - current):
            for index, shard in enumerate(self.desired):
                if len(shard) < self.per_shard:
                    shard.add(token)
                    added += 1
                    touched.add(index)
                    break
            else:
                self.overflow.add(token)
        for index in touched:
            self._changed[index].set()
            self._changed[index] = trio.Event()
        return added, removed

    async def wait_changed(self, index: int) -> None:
        await self._changed[index].wait()


@attrs.define
class ClobSinks:
    """Where CLOB events go (send channels of the consuming actors' inboxes; None drops them)."""

    #: Price ticks: one ``PriceTick``, or a list of them for a frame that carried several.
    ticks: trio.MemorySendChannel[PriceTick | list[PriceTick]] | None = None
    trades: trio.MemorySendChannel[Trade] | None = None
    catalog: trio.MemorySendChannel[Any] | None = None


class ClobIngest:
    """Parses CLOB frames and routes the events; shared by the shard actors and replay."""

    def __init__(self, sinks: ClobSinks, health: FeedHealth) -> None:
        self.sinks = sinks
        self.health = health

    async def handle_text(self, text: str, log: Any) -> None:
        """Parse one text frame and forward its events.

        Errors: malformed frames and elements are counted (``health.malformed_total``) and
        logged at most once a minute; never raised.
        """
        health = self.health
        try:
            parsed = parse_clob_frame(text)
        except MalformedFrame as exc:
            health.drop_malformed(log, f"a malformed frame ({exc.reason})", text)
            return
        if parsed.malformed:
            health.drop_malformed(log, f"{parsed.malformed} malformed events of a frame", text, parsed.malformed)
        if not parsed.events:
            if is_keepalive(text):
                health.keepalives_total += 1
            return
        sinks = self.sinks
        ticks = [event for event in parsed.events if event.__class__ is PriceTick]
        if ticks and sinks.ticks is not None:
            # one message per frame, not per tick: a price_change burst costs one channel hop
            await deliver(sinks.ticks, ticks[0] if len(ticks) == 1 else ticks)  # type: ignore[arg-type]
        if len(ticks) == len(parsed.events):
            return
        for event in parsed.events:
            cls = event.__class__
            if cls is PriceTick:
                continue
            elif cls is Trade:
                health.count("trades")
                if sinks.trades is not None:
                    await deliver(sinks.trades, event)  # type: ignore[arg-type]
            elif cls is NewMarket or cls is MarketResolved:
                health.count(cls.__name__)
                if sinks.catalog is not None:
                    await deliver(sinks.catalog, event)
            elif cls is TickSizeChange:
                health.count("tick_size_change")


def clob_shard_actor(
    index: int,
    url: str,
    shards: ClobShards,
    ingest: ClobIngest,
    *,
    ping_interval: float = 10.0,
    silence_timeout: float = 60.0,
    connect: Connector = open_ws,
    recorder: Recorder | None = None,
    wall_clock: Callable[[], float] = time.time,
) -> Callable[..., Any]:
    """One CLOB connection for shard ``index``.

    Idle (no connection) while its shard has no tokens.  On connect it subscribes to the
    whole shard with ``initial_dump`` and ``custom_feature_enabled``; later changes are sent
    as ``operation`` subscribe/unsubscribe messages on the same connection.

    Cancellation: the socket is closed; nothing else to save.
    Errors: a dropped or silent connection fails the actor (:class:`~actors._wsfeed.FeedStalled`,
    ``FeedDisconnected``, ``OSError``) so its supervisor reconnects with backoff.
    """
    health = ingest.health

    async def run(ctx: ActorContext, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        with ctx.stop_scope():
            while not shards.desired[index]:
                await shards.wait_changed(index)
            async with connect(url) as ws:
                subscribed = set(shards.desired[index])
                await ws.send_message(clob_subscribe_message(sorted(subscribed)))
                health.connected = True
                health.connects_total += 1
                health.connected_since = wall_clock()
                ctx.log.info("clob shard {i} connected, {n} tokens", i=index, n=len(subscribed))

                async def on_text(text: str) -> None:
                    if recorder is not None:
                        await recorder.frame("clob", text)
                    await ingest.handle_text(text, ctx.log)

                async def follow_changes() -> None:
                    nonlocal subscribed
                    while True:
                        await shards.wait_changed(index)
                        desired = set(shards.desired[index])
                        add, drop = sorted(desired - subscribed), sorted(subscribed - desired)
                        if add:
                            await ws.send_message(clob_operation_message(add, "subscribe"))
                        if drop:
                            await ws.send_message(clob_operation_message(drop, "unsubscribe"))
                        subscribed = desired

                try:
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(follow_changes)
                        await run_ws_session(ws, health=health, on_text=on_text, ping_text=CLOB_PING,
                                             ping_interval=ping_interval, silence_timeout=silence_timeout,
                                             wall_clock=wall_clock)
                finally:
                    health.connected = False

    return run
