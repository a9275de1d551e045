"""Market state actor: per-market price, best bid/ask and 24 h volume → throttled ``market_update``."""

from __future__ import annotations

import collections
import heapq
import time
from collections.abc import Callable
from typing import Any

import attrs
import trio

from protocols.client import iso_utc
from protocols.polymarket import PriceTick, Trade
from supervision import ActorContext, deliver

from .db_writer import StoreMarket
from .directory import MarketDirectory
from .messages import Broadcast

DAY = 86_400.0


@attrs.define
class MarketView:
    """What the service knows of one market's trading (read by status and storage)."""

    condition_id: str
    price: float | None = None          # last price of the first outcome (YES)
    best_bid: float | None = None
    best_ask: float | None = None
    live_notional: collections.deque[tuple[float, float]] = attrs.field(factory=collections.deque)
    live_volume: float = 0.0             # sum of live_notional (trades within 24 h)
    updated_at: float = 0.0              # epoch seconds of the newest information
    last_emit: float = -1e18             # trio time of the last market_update
    dirty: bool = False


@attrs.define
class MarketStateStore:
    """Owned by the market state actor; survives its restarts."""

    markets: dict[str, MarketView] = attrs.field(factory=dict)
    updates_total: int = 0
    ticks_total: int = 0
    #: Newest trade time seen: the 24 h window ends here (so a replay of old trades works too).
    latest_trade_ts: float = 0.0


def market_state_actor(
    directory: MarketDirectory,
    store: MarketStateStore,
    broadcast: trio.MemorySendChannel[Broadcast] | None,
    *,
    interval: float = 1.0,
    wall_clock: Callable[[], float] = time.time,
    persist: trio.MemorySendChannel[Any] | None = None,
) -> Callable[..., Any]:
    """The market state actor body; its inbox takes :class:`PriceTick` (alone or in a list,
    one per CLOB frame) and :class:`Trade`.

    The price is the first outcome's (YES): ticks of the second token of a two-outcome market
    are mirrored (1 − p).  24 h volume is Gamma's figure plus the live notional of trades seen
    in the last 24 h.  ``market_update`` goes out at most once per ``interval`` seconds per
    market: a burst of ticks becomes one update carrying the latest state.  Each update of a
    market the catalog knows is also sent to ``persist`` (the DB writer) with its last price.

    Cancellation: pending (throttled) updates are lost with the incarnation but the state is
    kept in ``store``; the next tick of that market re-emits.
    """

    def first_token_price(tick_asset: str, market_tokens: tuple[str, ...], value: float | None) -> float | None:
        if value is None or not market_tokens:
            return value if not market_tokens else None
        if tick_asset == market_tokens[0]:
            return value
        if len(market_tokens) == 2 and tick_asset == market_tokens[1]:
            return 1.0 - value
        return None

    def view(cid: str) -> MarketView:
        v = store.markets.get(cid)
        if v is None:
            v = store.markets[cid] = MarketView(cid)
        return v

    def data_for(v: MarketView) -> dict[str, Any]:
        market = directory.markets.get(v.condition_id)
        gamma_volume = market.volume_24h if market is not None else 0.0
        event_slug = market.event_slug if market is not None else ""
        return {
            "condition_id": v.condition_id,
            "title": market.question if market is not None else "",
            "price": None if v.price is None else round(v.price, 6),
            "volume_24h": round(gamma_volume + v.live_volume, 2),
            "timestamp": iso_utc(v.updated_at or wall_clock()),
            "best_bid": v.best_bid,
            "best_ask": v.best_ask,
            "slug": market.slug if market is not None else "",
            "url": f"https://polymarket.com/event/{event_slug}" if event_slug else "",
        }

    def apply(message: Any, v: MarketView) -> None:
        market = directory.markets.get(v.condition_id)
        tokens = market.token_ids if market is not None else ()
        if isinstance(message, PriceTick):
            store.ticks_total += 1
            if not tokens or message.asset_id == tokens[0]:
                if message.best_bid is not None:
                    v.best_bid = message.best_bid
                if message.best_ask is not None:
                    v.best_ask = message.best_ask
            price = first_token_price(message.asset_id, tokens, message.last_price)
            if price is not None:
                v.price = price
            v.updated_at = max(v.updated_at, message.timestamp)
        else:
            trade: Trade = message
            price = first_token_price(trade.asset_id, tokens, trade.price)
            if price is not None:
                v.price = price
            v.live_notional.append((trade.timestamp, trade.notional))
            v.live_volume += trade.notional
            v.updated_at = max(v.updated_at, trade.timestamp)
            store.latest_trade_ts = max(store.latest_trade_ts, trade.timestamp)
        cutoff = store.latest_trade_ts - DAY
        while v.live_notional and v.live_notional[0][0] < cutoff:
            v.live_volume -= v.live_notional.popleft()[1]

    async def run(ctx: ActorContext, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        assert ctx.inbox is not None
        due: list[tuple[float, str]] = []    # (trio time, condition id) of throttled updates
        wake = trio.Event()

        async def emit(v: MarketView) -> None:
            v.dirty = False
            v.last_emit = trio.current_time()
            store.updates_total += 1
            if broadcast is not None:
                await deliver(broadcast, Broadcast("market_update", data_for(v), market=v.condition_id))
            market = directory.markets.get(v.condition_id)
            if persist is not None and market is not None and v.price is not None:
                await deliver(persist, StoreMarket(market, last_price=v.price, updated_at=v.updated_at or None))

        async def flusher() -> None:
            nonlocal wake
            while True:
                if not due:
                    await wake.wait()
                    wake = trio.Event()
                    continue
                when, cid = due[0]
                if trio.current_time() < when:
                    with trio.move_on_at(when):
                        await wake.wait()
                        wake = trio.Event()
                    continue
                heapq.heappop(due)
                v = store.markets.get(cid)
                if v is not None and v.dirty:
                    await emit(v)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(flusher)
            task_status.started()
            async for message in ctx.inbox:
                for item in message if message.__class__ is list else (message,):
                    v = view(item.condition_id)
                    apply(item, v)
                    now = trio.current_time()
                    if now - v.last_emit >= interval:
                        await emit(v)
                    elif not v.dirty:
                        v.dirty = True
                        heapq.heappush(due, (v.last_emit + interval, v.condition_id))
                        wake.set()
            nursery.cancel_scope.cancel()

    return run
