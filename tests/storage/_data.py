"""Row factories shared by the storage tests."""

from __future__ import annotations

from hashlib import sha1
from typing import Any

from protocols.polymarket import MarketInfo, Trade
from storage import MarketRow, ModelForecastRow, SwarmForecastRow, TradeRow

T0 = 1_760_000_000.0


def condition(i: int) -> str:
    return "0x" + f"{i:064x}"


def _hex(text: str, n: int = 40) -> str:
    return sha1(text.encode()).hexdigest()[:n]


def trade(i: int, *, market: int = 0, wallet: str | None = None) -> Trade:
    """A distinct notable trade (random-looking ids, like real ones; one of 500 wallets)."""
    price = 0.01 + (i % 97) / 100
    size = 1000.0 + i
    return Trade(
        trade_id=_hex(f"t{i}", 20), fill_key=_hex(f"f{i}", 20), condition_id=condition(market),
        asset_id=str(10**70 + i), side="BUY" if i % 2 else "SELL", outcome="Yes" if i % 3 else "Nö – ünïcode",
        outcome_index=0, price=price, size=size, notional=price * size, timestamp=T0 + i,
        transaction_hash="0x" + f"{i:064x}", wallet=wallet or "0x" + _hex(f"w{i % 500}"), trader="someone",
        title="Will it?", slug="will-it", event_slug="will-it-event", source="rtds.trades")


def trade_row(i: int, *, whale: bool = False, market: int = 0) -> TradeRow:
    return TradeRow.from_trade(trade(i, market=market), is_whale=whale)


def market_info(i: int, *, question: str = "Will it rain?", volume: float = 1234.5) -> MarketInfo:
    return MarketInfo(
        condition_id=condition(i), question=question, slug=f"rain-{i}", event_slug=f"weather-{i}",
        event_title="Weather", description="", category="Weather", tags=("weather", "rain"), end_date=T0 + 86400,
        outcomes=("Yes", "No"), token_ids=("1", "2"), volume_24h=volume, active=True, closed=False,
        outcome_prices=(0.4, 0.6))


def market_row(i: int, *, last_price: float | None = 0.4, updated_at: float = T0, **kw: Any) -> MarketRow:
    return MarketRow.from_market(market_info(i, **kw), last_price=last_price, updated_at=updated_at)


def model_forecast(i: int, *, ok: bool = True) -> ModelForecastRow:
    return ModelForecastRow(
        request_id=f"req-{i}", condition_id=condition(i % 5), model="openai/gpt-4o-mini", outcome="Yes",
        probability=0.62 if ok else None, confidence=0.7 if ok else None, reasoning="because" * 100 if ok else "",
        ok=ok, error=None if ok else "timeout", prompt_tokens=812, completion_tokens=95, cost_usd=0.00031,
        latency_ms=1234.5, market_price=0.58, created_at=T0 + i)


def swarm_forecast(i: int) -> SwarmForecastRow:
    return SwarmForecastRow(
        forecast_id=f"fc-{i}", condition_id=condition(i % 5), outcome="Yes", probability=0.6,
        probability_mean=0.61, confidence=0.8, votes={"openai/gpt-4o-mini": 0.62, "google/gemini": 0.58},
        models_ok=2, models_failed=1, market_price=0.58, created_at=T0 + i)
