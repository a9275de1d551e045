"""Whale watcher actor: kept trades at or above ``WHALE_TRADE_THRESHOLD`` become ``whale_trade``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import trio

from protocols.client import iso_utc
from protocols.polymarket import Trade
from supervision import ActorContext, deliver

from .db_writer import StoreTrade
from .directory import MarketDirectory
from .messages import Broadcast

#: Size tiers, as multiples of the whale threshold: (minimum multiple, name), largest first.
TIERS: tuple[tuple[float, str], ...] = ((10.0, "mega_whale"), (5.0, "big_whale"), (1.0, "whale"))


def tier_for(notional: float, threshold: float) -> str:
    """``whale`` from 1x the threshold, ``big_whale`` from 5x, ``mega_whale`` from 10x."""
    for multiple, name in TIERS:
        if notional >= multiple * threshold:
            return name
    return "whale"


def is_near_settlement(price: float, ignore: float) -> bool:
    """Within ``ignore`` of 0 or 1 (``price <= ignore`` or ``price >= 1 - ignore``)."""
    return price <= ignore or price >= 1.0 - ignore


@attrs.define
class WhaleStats:
    whales_total: int = 0
    near_settlement_total: int = 0
    #: Whale trades not passed to the AI scheduler because its inbox was full.
    analysis_dropped_total: int = 0


def whale_data(trade: Trade, directory: MarketDirectory, threshold: float) -> dict[str, Any]:
    """The ``whale_trade`` message data (the seed's fields first)."""
    market = directory.markets.get(trade.condition_id)
    question = (market.question if market is not None else "") or trade.title
    event_slug = (market.event_slug if market is not None else "") or trade.event_slug
    slug = (market.slug if market is not None else "") or trade.slug
    outcome = trade.outcome or (
        market.outcomes[market.token_ids.index(trade.asset_id)]
        if market is not None and trade.asset_id in market.token_ids and len(market.outcomes) == len(market.token_ids)
        else "")
    return {
        "market": question,
        "side": outcome.upper() if outcome else trade.side,
        "amount": round(trade.notional, 2),
        "price": trade.price,
        "timestamp": iso_utc(trade.timestamp),
        "action": trade.side,
        "outcome": outcome,
        "size": trade.size,
        "condition_id": trade.condition_id,
        "asset_id": trade.asset_id,
        "slug": slug,
        "event_slug": event_slug,
        "url": f"https://polymarket.com/event/{event_slug}" if event_slug else "https://polymarket.com",
        "wallet": trade.wallet,
        "trader": trade.trader,
        "transaction_hash": trade.transaction_hash,
        "trade_id": trade.trade_id,
        "tier": tier_for(trade.notional, threshold),
    }


def whale_watcher_actor(
    threshold: float,
    ignore_price: float,
    directory: MarketDirectory,
    stats: WhaleStats,
    *,
    broadcast: trio.MemorySendChannel[Broadcast] | None,
    store: trio.MemorySendChannel[Any] | None = None,
    analysis: trio.MemorySendChannel[Trade] | None = None,
) -> Callable[..., Any]:
    """The whale watcher's actor body.

    A whale is a kept trade with notional >= ``threshold``; it is broadcast unless its price
    is within ``ignore_price`` of 0 or 1 (near-settlement sweeps).  Every whale, broadcast or
    not, also goes to ``store`` as ``StoreTrade(trade, is_whale=True)`` (storage marks it).
    Broadcast whales also go to ``analysis`` (the AI scheduler) without waiting: a hint the
    scheduler has no room for is counted (``analysis_dropped_total``) and dropped, so the AI
    never slows whale alerts down.

    Cancellation and restarts: redelivered trades are broadcast again with the same key, and
    the hub drops the repeat.
    """

    async def run(ctx: ActorContext, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        assert ctx.inbox is not None
        task_status.started()
        async for trade in ctx.inbox:
            if trade.notional < threshold:
                continue
            if store is not None:
                await deliver(store, StoreTrade(trade, is_whale=True))
            if is_near_settlement(trade.price, ignore_price):
                stats.near_settlement_total += 1
                continue
            stats.whales_total += 1
            data = whale_data(trade, directory, threshold)
            ctx.log.info("whale: ${amount:,.0f} {action} {side} @ {price:.3f} on {market!r}", **data)
            if broadcast is not None:
                await deliver(broadcast, Broadcast("whale_trade", data, market=trade.condition_id,
                                               amount=data["amount"], key=f"whale:{trade.trade_id}"))
            if analysis is not None:
                try:
                    analysis.send_nowait(trade)
                except trio.WouldBlock:
                    stats.analysis_dropped_total += 1

    return run
