"""Markets, whale trades and a small harness for the AI actors (private to tests/ai)."""

from __future__ import annotations

import functools
import hashlib
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from protocols.polymarket import MarketInfo, Trade
from supervision import ChildSpec, Registry, SupervisorSpec, run_supervisor


def cid(name: str) -> str:
    """A condition id (``0x`` + 64 hex) from a short name."""
    return "0x" + hashlib.sha256(name.encode()).hexdigest()


def market(name: str, *, question: str | None = None, volume: float = 1000.0, active: bool = True,
           closed: bool = False, outcomes: tuple[str, ...] = ("Yes", "No"), prices: tuple[float, ...] = (0.4, 0.6),
           category: str = "Politics", end_date: float | None = 1_760_054_400.0, **extra: Any) -> MarketInfo:
    values: dict[str, Any] = dict(
        condition_id=cid(name), question=question or f"Will {name} happen?", slug=f"{name}-slug",
        event_slug=f"{name}-event", event_title=f"The {name} event",
        description=f"This market resolves to Yes if {name} happens before the end date.", category=category,
        tags=(category.lower(),), end_date=end_date, outcomes=outcomes,
        token_ids=tuple(f"{name}-token-{i}" for i in range(len(outcomes))), volume_24h=volume, active=active,
        closed=closed, outcome_prices=prices)
    values.update(extra)
    return MarketInfo(**values)


def whale(name: str, notional: float = 25_000.0, *, n: int = 0, price: float = 0.6, outcome: str = "Yes",
          side: str = "BUY", timestamp: float = 1_760_000_000.0) -> Trade:
    size = notional / price
    tid = hashlib.sha1(f"{name}-{n}-{notional}".encode()).hexdigest()[:20]
    return Trade(trade_id=tid, fill_key=tid, condition_id=cid(name), asset_id=f"{name}-token-0", side=side,
                 outcome=outcome, outcome_index=0, price=price, size=size, notional=notional, timestamp=timestamp,
                 transaction_hash="0x" + tid, wallet="0xwallet", trader="whale", title=f"Will {name} happen?",
                 slug=f"{name}-slug", event_slug=f"{name}-event", source="rtds.trades")


@asynccontextmanager
async def running(children: list[ChildSpec], *, intensity: int = 30) -> AsyncIterator[Registry]:
    """Run ``children`` under a one-for-one root supervisor; stop it in order on exit."""
    registry = Registry()
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(functools.partial(run_supervisor, SupervisorSpec(intensity=intensity, period=60),
                                              children, registry=registry, rng=random.Random(1), stop=stop))
        try:
            yield registry
        finally:
            stop.set()


def drain(channel: trio.MemoryReceiveChannel[Any]) -> list[Any]:
    """Everything queued in ``channel`` right now."""
    items = []
    while True:
        try:
            items.append(channel.receive_nowait())
        except trio.WouldBlock:
            return items
