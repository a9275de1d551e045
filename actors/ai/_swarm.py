"""Swarm aggregator actor: the models' forecasts for one market → one swarm forecast.

The consensus (:func:`aggregate`), for the models that answered:

- ``votes``: per outcome, how many models voted for it (a model's vote is the outcome its
  probability favours; see :class:`protocols.openrouter.ForecastAnswer`);
- ``outcome``: the outcome with the most votes; a tie goes to the outcome the median
  probability favours (the first outcome at exactly 0.5);
- ``probability``: the **median** of the models' probabilities of the first outcome (YES);
  ``probability_mean`` keeps their mean;
- ``confidence`` = ``agreement × (1 − 2·spread) × self_confidence``, where ``agreement`` is the
  share of answering models that voted for the consensus outcome, ``spread`` the (population)
  standard deviation of their probabilities (0 when they agree exactly, at most 0.5, so the
  middle factor is within 0..1), and ``self_confidence`` the median of the confidences the
  models reported (0.5 when none did).  It measures how much the swarm agrees and how sure its
  members say they are — not how likely the outcome is (that is ``probability``).

  Worked example: probabilities 0.8, 0.7, 0.3 and confidences 0.6, 0.7, 0.8 → votes 2–1,
  agreement 2/3, spread 0.2160, self_confidence 0.7 → 2/3 × 0.5680 × 0.7 = 0.2650.
"""

from __future__ import annotations

import collections
import math
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import trio

from protocols.client import iso_utc
from storage import SwarmForecastRow
from supervision import ActorContext, deliver

from ..messages import Broadcast
from ._messages import ForecastRound, ModelForecast, request_id_for
from ._stats import AiStats

#: Closed rounds remembered, so a redelivered or late message is recognised.
_CLOSED_MEMORY = 10_000


@attrs.frozen
class SwarmForecast:
    """The aggregated forecast of one round (see the module docstring for the formulas)."""

    forecast_id: str
    condition_id: str
    outcome: str
    probability: float
    probability_mean: float
    confidence: float
    votes: dict[str, int]
    answered: tuple[ModelForecast, ...]
    failed: tuple[ModelForecast, ...]
    agreement: float
    spread: float
    self_confidence: float


def aggregate(round_: ForecastRound, answers: Sequence[ModelForecast]) -> SwarmForecast | None:
    """The consensus of ``answers`` (ok and failed) for ``round_``; None when none answered."""
    order = {model: index for index, model in enumerate(round_.models)}
    answers = sorted(answers, key=lambda a: order.get(a.model, len(order)))  # the round's model order
    ok = [a for a in answers if a.ok and a.probability is not None]
    failed = tuple(a for a in answers if not (a.ok and a.probability is not None))
    if not ok:
        return None
    outcomes = round_.outcomes or ("Yes", "No")
    probabilities = [float(a.probability) for a in ok if a.probability is not None]
    median = statistics.median(probabilities)
    mean = statistics.fmean(probabilities)
    votes: dict[str, int] = {label: 0 for label in outcomes}
    for answer in ok:
        votes[answer.outcome or outcomes[0]] = votes.get(answer.outcome or outcomes[0], 0) + 1
    most = max(votes.values())
    tied = [label for label, n in votes.items() if n == most]
    if len(tied) == 1:
        outcome = tied[0]
    else:
        favoured = outcomes[0] if median >= 0.5 or len(outcomes) < 2 else outcomes[1]
        outcome = favoured if favoured in tied else tied[0]
    agreement = votes[outcome] / len(ok)
    spread = statistics.pstdev(probabilities) if len(probabilities) > 1 else 0.0
    reported = [a.confidence for a in ok if a.confidence is not None]
    self_confidence = statistics.median(reported) if reported else 0.5
    confidence = min(1.0, max(0.0, agreement * (1.0 - 2.0 * spread) * self_confidence))
    return SwarmForecast(
        forecast_id=round_.forecast_id, condition_id=round_.condition_id, outcome=outcome,
        probability=median, probability_mean=mean, confidence=confidence, votes=votes, answered=tuple(ok),
        failed=failed, agreement=agreement, spread=spread, self_confidence=self_confidence)


def _r(value: float | None, digits: int = 4) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, digits)


def prediction_data(round_: ForecastRound, forecast: SwarmForecast, created_at: float) -> dict[str, Any]:
    """The ``prediction`` message's data."""
    return {
        "forecast_id": forecast.forecast_id,
        "condition_id": round_.condition_id,
        "title": round_.title,
        "outcome": forecast.outcome,
        "probability": _r(forecast.probability),
        "probability_mean": _r(forecast.probability_mean),
        "confidence": _r(forecast.confidence),
        "votes": forecast.votes,
        "models": [{"model": a.model, "outcome": a.outcome, "probability": _r(a.probability),
                    "confidence": _r(a.confidence), "reasoning": a.reasoning} for a in forecast.answered],
        "models_failed": [{"model": a.model, "error": a.error or "failed"} for a in forecast.failed],
        "market_price": _r(round_.market_price, 6),
        "market_price_shown": round_.price_shown,
        "outcomes": list(round_.outcomes),
        "trigger": round_.trigger,
        "timestamp": iso_utc(created_at),
        "slug": round_.slug,
        "url": f"https://polymarket.com/event/{round_.event_slug}" if round_.event_slug else "",
    }


def swarm_row(round_: ForecastRound, forecast: SwarmForecast, created_at: float) -> SwarmForecastRow:
    return SwarmForecastRow(
        forecast_id=forecast.forecast_id, condition_id=round_.condition_id, outcome=forecast.outcome,
        probability=_r(forecast.probability, 6), probability_mean=_r(forecast.probability_mean, 6),
        confidence=_r(forecast.confidence, 6), votes=forecast.votes, models_ok=len(forecast.answered),
        models_failed=len(forecast.failed), market_price=round_.market_price, created_at=created_at)


@attrs.define
class OpenRound:
    round: ForecastRound
    answers: dict[str, ModelForecast] = attrs.field(factory=dict)  # by model

    @property
    def complete(self) -> bool:
        return all(model in self.answers for model in self.round.models)


@attrs.define
class SwarmState:
    """Open rounds and recently closed ones; owned by the aggregator's factory (survives restarts)."""

    open: dict[str, OpenRound] = attrs.field(factory=dict)
    closed: collections.OrderedDict[str, None] = attrs.field(factory=collections.OrderedDict)

    def close(self, forecast_id: str) -> None:
        self.open.pop(forecast_id, None)
        self.closed[forecast_id] = None
        while len(self.closed) > _CLOSED_MEMORY:
            self.closed.popitem(last=False)


def swarm_actor(
    state: SwarmState,
    stats: AiStats,
    *,
    broadcast: trio.MemorySendChannel[Broadcast] | None,
    store: trio.MemorySendChannel[Any] | None,
    wall_clock: Callable[[], float] = time.time,
) -> Callable[..., Any]:
    """The swarm aggregator's actor body; its inbox takes :class:`ForecastRound` (from the
    scheduler, before any of its requests go out) and :class:`ModelForecast` (from predictors).

    A round closes when every model asked has reported (answer or failure) or at its deadline,
    whichever is first.  With at least ``quorum`` answers it becomes a swarm forecast: a
    ``swarm_forecasts`` row to ``store`` and a ``prediction`` broadcast (key
    ``prediction:{forecast_id}``) to ``broadcast``; with fewer, it is logged and counted
    (``rounds_no_quorum``) and nothing is published.  Per-model rows are stored by the predictors.

    Cancellation and restarts: open rounds live in ``state``, so a restarted aggregator keeps
    waiting for them (deadlines are absolute trio times).  A message redelivered after a crash is
    harmless: answers are keyed by model, a closed round is remembered, the row is written once
    per ``forecast_id`` and the hub broadcasts a key once.  Answers arriving after their round
    closed are counted (``late_answers``); their rows were stored anyway.
    Errors: nothing a model says can make it raise; a crash is a bug, and restarts handle it.
    """

    async def publish(ctx: ActorContext, entry: OpenRound) -> None:
        round_ = entry.round
        missing = [m for m in round_.models if m not in entry.answers]
        answers = list(entry.answers.values()) + [
            ModelForecast(request_id_for(round_.forecast_id, m), round_.forecast_id, round_.condition_id, m, ok=False,
                          error="deadline (no answer before the analysis closed)") for m in missing]
        forecast = aggregate(round_, answers)
        answered = len(forecast.answered) if forecast is not None else 0
        if forecast is None or answered < round_.quorum:
            stats.rounds_no_quorum += 1
            ctx.log.warning(
                "no swarm forecast for {title!r}: {n} of {asked} models answered, quorum {q}{late}",
                title=round_.title, n=answered, asked=len(round_.models), q=round_.quorum,
                late=f" ({', '.join(missing)} did not report by the deadline)" if missing else "")
            state.close(round_.forecast_id)
            return
        created_at = wall_clock()
        if store is not None:
            await deliver(store, swarm_row(round_, forecast, created_at))
        if broadcast is not None:
            await deliver(broadcast, Broadcast("prediction", prediction_data(round_, forecast, created_at),
                                               market=round_.condition_id,
                                               key=f"prediction:{forecast.forecast_id}"))
        stats.rounds_published += 1
        ctx.log.info(
            "swarm forecast for {title!r}: {outcome} p={p:.3f} (mean {mean:.3f}) confidence {c:.2f}, votes {votes}, "
            "{n}/{asked} models{missing}; market {price}",
            title=round_.title, outcome=forecast.outcome, p=forecast.probability, mean=forecast.probability_mean,
            c=forecast.confidence, votes=forecast.votes, n=answered, asked=len(round_.models),
            missing=f" (no answer: {', '.join(missing)})" if missing else "",
            price="?" if round_.market_price is None else f"{round_.market_price:.3f}")
        state.close(round_.forecast_id)

    def note(message: Any) -> None:
        if isinstance(message, ForecastRound):
            if message.forecast_id not in state.open and message.forecast_id not in state.closed:
                state.open[message.forecast_id] = OpenRound(message)
        elif isinstance(message, ModelForecast):
            entry = state.open.get(message.forecast_id)
            if entry is None:
                stats.late_answers += 1
            elif message.model not in entry.answers:
                entry.answers[message.model] = message

    async def close_due(ctx: ActorContext) -> None:
        now = trio.current_time()
        for entry in list(state.open.values()):
            if entry.complete or now >= entry.round.deadline:
                await publish(ctx, entry)

    async def run(ctx: ActorContext, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        assert ctx.inbox is not None
        task_status.started()
        await close_due(ctx)  # rounds a previous incarnation left complete or overdue
        while True:
            deadline = min((e.round.deadline for e in state.open.values()), default=math.inf)
            message: Any = None
            with trio.move_on_at(deadline):
                try:
                    message = await ctx.inbox.receive()
                except trio.EndOfChannel:
                    return
            if message is not None:
                note(message)
            await close_due(ctx)

    return run
