"""The AI part's ledger: spend against the daily budget, pauses, and counters.

One :class:`AiStats` per service (``Service.ai_stats``), outliving every AI actor's restarts.
Predictors write their model's entry and the spend; the scheduler reads the budget and the
pauses; ``/status`` and metrics read everything.  Trio is single-threaded, so plain fields do.
"""

from __future__ import annotations

import collections
from datetime import UTC, datetime

import attrs
from loguru import logger


def utc_day(epoch_seconds: float) -> str:
    """``YYYY-MM-DD`` (UTC) of a wall-clock time: the budget's day."""
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%Y-%m-%d")


@attrs.define
class ModelStats:
    """One model's counters.

    Attributes:
        calls: HTTP requests made (each retry counts).
        answers: Forecasts it gave (parsed, stored).
        failures: Failed forecasts by reason (after any retries).
        paused_until: trio time until which the model is not called (HTTP 404), None if not paused.
        structured_output: False once the model refused ``response_format`` (then asked without it).
    """

    model: str
    calls: int = 0
    answers: int = 0
    failures: collections.Counter[str] = attrs.field(factory=collections.Counter)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    last_latency_ms: float | None = None
    last_error: str | None = None
    paused_until: float | None = None
    pause_reason: str | None = None
    structured_output: bool = True


@attrs.define
class AiStats:
    """Counters, spend and pauses of the AI part (see the module docstring).

    Attributes:
        enabled: False when the AI part is off (no ``OPENROUTER_API_KEY``).
        budget_usd: ``AI_DAILY_BUDGET_USD``.
        day: The UTC day ``cost_today_usd`` counts (it resets when the day changes).
        cost_estimated_calls: Calls whose cost the server did not report (estimated from tokens).
        calls_total: HTTP requests to the LLM server (each retry counts).
        call_failures: Failed requests by reason, including those retried.
        forecasts_failed: Per-model forecasts that failed for good, by reason.
        rounds_started: Analyses started (``rounds_by_trigger``: ``whale`` / ``activity``).
        rounds_published: Swarm forecasts stored and broadcast.
        rounds_no_quorum: Analyses that ended with fewer answers than the quorum.
        late_answers: Answers that arrived after their analysis was closed.
        skipped_for_budget: Times the scheduler had a market to analyse but the budget was spent.
        whale_triggers: Whale trades the scheduler received.
        key_paused_until: trio time until which no model is called (HTTP 401/402).
    """

    enabled: bool = False
    models: dict[str, ModelStats] = attrs.field(factory=dict)
    budget_usd: float = 0.0
    day: str = ""
    cost_today_usd: float = 0.0
    cost_total_usd: float = 0.0
    cost_estimated_calls: int = 0
    calls_total: int = 0
    call_failures: collections.Counter[str] = attrs.field(factory=collections.Counter)
    forecasts_ok: int = 0
    forecasts_failed: collections.Counter[str] = attrs.field(factory=collections.Counter)
    prompt_tokens_total: int = 0
    completion_tokens_total: int = 0
    rounds_started: int = 0
    rounds_by_trigger: collections.Counter[str] = attrs.field(factory=collections.Counter)
    rounds_published: int = 0
    rounds_no_quorum: int = 0
    late_answers: int = 0
    skipped_for_budget: int = 0
    whale_triggers: int = 0
    key_paused_until: float | None = None
    key_pause_reason: str | None = None
    #: The UTC day whose budget exhaustion was logged (one line a day).
    budget_logged_day: str = ""

    def model(self, name: str) -> ModelStats:
        entry = self.models.get(name)
        if entry is None:
            entry = self.models[name] = ModelStats(name)
        return entry

    # -- budget ------------------------------------------------------------------------------

    def roll_day(self, wall_now: float) -> None:
        """Start a new day's spend when the UTC date changed."""
        today = utc_day(wall_now)
        if today != self.day:
            if self.day:
                logger.bind(actor="ai").info("AI spend on {day}: ${cost:.4f} of ${budget:.2f}", day=self.day,
                                             cost=self.cost_today_usd, budget=self.budget_usd)
            self.day, self.cost_today_usd = today, 0.0

    def record_cost(self, model: str, usd: float, wall_now: float, *, estimated: bool = False) -> None:
        self.roll_day(wall_now)
        self.cost_today_usd += usd
        self.cost_total_usd += usd
        self.model(model).cost_usd += usd
        if estimated:
            self.cost_estimated_calls += 1

    def budget_left(self, wall_now: float) -> float:
        self.roll_day(wall_now)
        return self.budget_usd - self.cost_today_usd

    def budget_reached(self, wall_now: float) -> bool:
        return self.budget_left(wall_now) <= 0.0

    # -- pauses ------------------------------------------------------------------------------

    def paused_reason(self, model: str, now: float) -> str | None:
        """Why ``model`` must not be called at trio time ``now`` (None: it may)."""
        if self.key_paused_until is not None and now < self.key_paused_until:
            return f"every model paused: {self.key_pause_reason}"
        entry = self.models.get(model)
        if entry is not None and entry.paused_until is not None and now < entry.paused_until:
            return f"model paused: {entry.pause_reason}"
        return None

    def available_models(self, models: tuple[str, ...], now: float) -> tuple[str, ...]:
        return tuple(m for m in models if self.paused_reason(m, now) is None)
