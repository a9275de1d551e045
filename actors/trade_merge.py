"""Trade merger: one stream of unique trades from RTDS, the CLOB channel, backfill and replay.

Every source sends its :class:`~protocols.polymarket.Trade` objects here; each real trade leaves
exactly once, in arrival order, toward the pipeline.
"""

from __future__ import annotations

import collections
import math
import time
from collections.abc import Callable
from typing import Any

import attrs
import trio

from protocols.polymarket import Trade
from supervision import ActorContext, deliver

from ._recent import RecentKeys
from .catalog import LookupMarket
from .directory import MarketDirectory
from .feed_health import FeedHealth

FuzzyKey = tuple[str, str, float, float]


def fuzzy_key(trade: Trade) -> FuzzyKey:
    """Wallet- and transaction-free identity, to match a CLOB fill with the same fill elsewhere."""
    return (trade.asset_id, trade.side, round(trade.size, 4), round(trade.price, 4))


@attrs.define
class MergeStats:
    received_total: int = 0
    emitted_total: int = 0
    duplicates_total: int = 0
    clob_suppressed_total: int = 0
    clob_emitted_total: int = 0
    by_source: dict[str, int] = attrs.field(factory=dict)


class TradeDeduper:
    """Remembers the identities of the last ``capacity`` trades (bounded memory).

    Exact identity is ``trade_id``.  CLOB ``last_trade_price`` trades carry no wallet; they
    are matched with RTDS/Data API trades by :func:`fuzzy_key` within ``fuzzy_window``
    seconds of trade time.  The fuzzy index keeps CLOB trades as long as their ids (a backfill
    after an outage may bring their Data API twins much later), but other trades only while
    their time is within ``fuzzy_horizon`` seconds of the newest trade seen: CLOB trades are
    live, so only recent ones can ever match them.  That keeps the index (most of the memory)
    small while RTDS is up, however long the service runs.

    ``capacity`` only has to cover the trades that can come again from another source: the ones
    seen just before a drop, while the backfill after it runs, and the CLOB fills of an RTDS
    outage.  100,000 ids (about 12 MB with the ids themselves, in a :class:`RecentKeys`) span
    2.8 hours at 10 trades/s, 17 minutes at 100/s, and the other guards stay (trade rows are
    upserts by id; the hub drops a whale broadcast whose key it has seen).
    """

    def __init__(self, capacity: int = 100_000, fuzzy_window: float = 60.0, fuzzy_horizon: float = 600.0) -> None:
        self.capacity = capacity
        self.fuzzy_window = fuzzy_window
        self.fuzzy_horizon = fuzzy_horizon
        self._ids: RecentKeys[str] = RecentKeys(capacity)
        self._fuzzy: dict[FuzzyKey, list[tuple[float, bool]]] = {}
        #: Insertion order of the index's entries: CLOB ones, and the others (with their time).
        self._clob_order: collections.deque[FuzzyKey] = collections.deque()
        self._other_order: collections.deque[tuple[FuzzyKey, float]] = collections.deque()
        self._newest = -math.inf

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def fuzzy_entries(self) -> int:
        return len(self._clob_order) + len(self._other_order)

    def seen(self, trade_id: str) -> bool:
        return trade_id in self._ids

    def _fuzzy_match(self, trade: Trade, *, clob: bool) -> bool:
        """Is there a remembered trade from the *other* kind of source close in time?"""
        entries = self._fuzzy.get(fuzzy_key(trade))
        if not entries:
            return False
        return any(is_clob != clob and abs(ts - trade.timestamp) <= self.fuzzy_window for ts, is_clob in entries)

    def is_duplicate(self, trade: Trade) -> bool:
        if trade.trade_id in self._ids:
            return True
        return self._fuzzy_match(trade, clob=trade.source == "clob")

    def _forget(self, key: FuzzyKey, clob: bool) -> None:
        entries = self._fuzzy.get(key)
        if not entries:
            return
        for index, (_, is_clob) in enumerate(entries):   # the oldest entry of that kind
            if is_clob == clob:
                del entries[index]
                break
        if not entries:
            del self._fuzzy[key]

    def remember(self, trade: Trade) -> None:
        self._ids.add(trade.trade_id)
        key, clob = fuzzy_key(trade), trade.source == "clob"
        self._fuzzy.setdefault(key, []).append((trade.timestamp, clob))
        if clob:
            self._clob_order.append(key)
            while len(self._clob_order) > self.capacity:
                self._forget(self._clob_order.popleft(), True)
        else:
            self._other_order.append((key, trade.timestamp))
        self._newest = max(self._newest, trade.timestamp)
        oldest_kept = self._newest - self.fuzzy_horizon
        others = self._other_order
        while others and (others[0][1] < oldest_kept or len(others) > self.capacity):
            self._forget(others.popleft()[0], False)


def trade_merge_actor(
    out: trio.MemorySendChannel[Trade] | None,
    deduper: TradeDeduper,
    stats: MergeStats,
    *,
    rtds_health: FeedHealth | None = None,
    directory: MarketDirectory | None = None,
    catalog: trio.MemorySendChannel[Any] | None = None,
    rtds_stale_after: float = 15.0,
    wall_clock: Callable[[], float] = time.time,
) -> Callable[..., Any]:
    """The merger's actor body.

    CLOB trades stand in only while RTDS is down (not connected, or silent for more than
    ``rtds_stale_after`` seconds): with RTDS up they would duplicate its taker rows, which
    the CLOB may report split per maker fill.  Trades for markets the directory does not
    know trigger a catalog lookup.

    Cancellation and restarts: the deduper outlives incarnations, and a trade in flight when
    the actor died is redelivered by the inbox, then recognised if it had already left.
    """

    def rtds_up() -> bool:
        if rtds_health is None:
            return False
        last = rtds_health.last_frame_at
        return rtds_health.connected and last is not None and wall_clock() - last <= rtds_stale_after

    async def run(ctx: ActorContext, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        assert ctx.inbox is not None
        task_status.started()
        async for trade in ctx.inbox:
            stats.received_total += 1
            if deduper.is_duplicate(trade):
                stats.duplicates_total += 1
                continue
            if trade.source == "clob":
                if rtds_up():
                    stats.clob_suppressed_total += 1
                    continue
                stats.clob_emitted_total += 1
            deduper.remember(trade)
            stats.emitted_total += 1
            stats.by_source[trade.source] = stats.by_source.get(trade.source, 0) + 1
            if directory is not None and catalog is not None and trade.condition_id not in directory.markets:
                try:
                    catalog.send_nowait(LookupMarket(trade.condition_id))
                except trio.WouldBlock:
                    pass  # the next trade of that market asks again
            if out is not None:
                await deliver(out, trade)

    return run
