"""Messages between the AI actors (internal)."""

from __future__ import annotations

import hashlib

import attrs

from storage import ModelForecastRow

#: Longest request id the ``model_forecasts`` table takes.
_MAX_REQUEST_ID = 128


def request_id_for(forecast_id: str, model: str) -> str:
    """``{forecast_id}:{model}``, or a hash of the model when that would be too long for the key."""
    rid = f"{forecast_id}:{model}"
    if len(rid) <= _MAX_REQUEST_ID:
        return rid
    return f"{forecast_id}:{hashlib.sha1(model.encode()).hexdigest()[:20]}"


@attrs.frozen(slots=True)
class WhaleNote:
    """One whale trade, as the prompt tells it."""

    timestamp: float
    action: str       # BUY / SELL
    outcome: str      # the outcome bought or sold
    notional: float   # USDC
    price: float


@attrs.frozen
class ForecastRound:
    """One analysis of one market: the scheduler tells the swarm aggregator what to expect.

    Attributes:
        deadline: trio time at which the aggregator publishes what it has.
        quorum: Answers needed to publish a swarm forecast.
        market_price: The first outcome's price when the round started (None if unknown).
        price_shown: Whether the models were shown that price.
        trigger: ``"whale"`` or ``"activity"``.
        opened_at: Wall-clock epoch seconds.
    """

    forecast_id: str
    condition_id: str
    title: str
    slug: str
    event_slug: str
    outcomes: tuple[str, ...]
    models: tuple[str, ...]
    quorum: int
    deadline: float
    market_price: float | None
    price_shown: bool
    trigger: str
    opened_at: float


@attrs.frozen
class ForecastRequest:
    """Ask one model for its forecast of one market (to that model's predictor)."""

    request_id: str
    forecast_id: str
    condition_id: str
    model: str
    #: ``(role, content)`` chat messages.
    messages: tuple[tuple[str, str], ...]
    outcomes: tuple[str, ...]
    market_price: float | None
    #: trio time after which an answer is of no use (the round's deadline).
    deadline: float


@attrs.frozen
class ModelForecast:
    """One model's answer (``ok``) or failure for one round, with what the call cost.

    ``error`` is the failure reason: a :class:`protocols.openrouter.FailureKind` value, or
    ``unparseable``, ``paused``, ``deadline`` — followed by details in parentheses.
    """

    request_id: str
    forecast_id: str
    condition_id: str
    model: str
    ok: bool
    outcome: str = ""
    probability: float | None = None
    confidence: float | None = None
    reasoning: str = ""
    error: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None
    latency_ms: float | None = None
    market_price: float | None = None
    created_at: float = 0.0

    @property
    def reason(self) -> str:
        """The failure's kind alone (``rate_limited``), "" when ok."""
        return (self.error or "").split(" ", 1)[0] if not self.ok else ""

    def to_row(self) -> ModelForecastRow:
        return ModelForecastRow(
            request_id=self.request_id, condition_id=self.condition_id, model=self.model, outcome=self.outcome,
            probability=self.probability, confidence=self.confidence, reasoning=self.reasoning, ok=self.ok,
            error=self.error, prompt_tokens=self.prompt_tokens, completion_tokens=self.completion_tokens,
            cost_usd=self.cost_usd, latency_ms=self.latency_ms, market_price=self.market_price,
            created_at=self.created_at)
