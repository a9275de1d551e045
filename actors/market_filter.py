"""Market filter actor: keeps trades worth attention.

A trade is kept when its notional (size × price, USDC) is at least
``TRADE_NOTIONAL_THRESHOLD`` and its market is not excluded as crypto or sports
(:mod:`actors.market_rules`: Gamma tags and category first, whole-word keywords as the
fallback, plus the user's own rule).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs
import trio

from protocols.polymarket import MarketInfo, Trade
from supervision import ActorContext, deliver

from .directory import MarketDirectory
from .market_rules import Exclusion, MarketRules


@attrs.define
class FilterStats:
    received_total: int = 0
    kept_total: int = 0
    #: Dropped trades by reason: ``below_threshold``, ``excluded_crypto``, ``excluded_sports``,
    #: ``excluded_custom``.
    dropped: dict[str, int] = attrs.field(factory=dict)


def market_filter_actor(
    threshold: float,
    rules: MarketRules,
    directory: MarketDirectory,
    stats: FilterStats,
    *,
    kept: Sequence[trio.MemorySendChannel[Trade]] = (),
    every_trade: Sequence[trio.MemorySendChannel[Trade]] = (),
) -> Callable[..., Any]:
    """The filter's actor body.

    Every trade goes to ``every_trade`` (market state counts volume and last price from all
    of them); kept trades go to each of ``kept`` (whale watcher, storage).  Exclusion is
    decided once per market and cached until the catalog's record of it changes.

    Cancellation and restarts: the trade being handled is redelivered by the inbox; the
    consumers are idempotent by trade id.  A failing user rule is contained by the rules
    object (the market is kept and the error counted).
    """
    cache: dict[str, tuple[MarketInfo | None, Exclusion | None]] = {}

    def exclusion(trade: Trade) -> Exclusion | None:
        market = directory.markets.get(trade.condition_id)
        hit = cache.get(trade.condition_id)
        if hit is not None and hit[0] is market:
            return hit[1]
        decision = rules.exclusion_for(trade, market)
        if len(cache) > 200_000:
            cache.clear()
        cache[trade.condition_id] = (market, decision)
        return decision

    async def run(ctx: ActorContext, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        assert ctx.inbox is not None
        task_status.started()
        async for trade in ctx.inbox:
            stats.received_total += 1
            for channel in every_trade:
                await deliver(channel, trade)
            if trade.notional < threshold:
                reason = "below_threshold"
            else:
                excluded = exclusion(trade)
                if excluded is None:
                    stats.kept_total += 1
                    for channel in kept:
                        await deliver(channel, trade)
                    continue
                reason = f"excluded_{excluded.category}"
            stats.dropped[reason] = stats.dropped.get(reason, 0) + 1

    return run
