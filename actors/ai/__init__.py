"""The AI swarm: a scheduler, one predictor per model, and a swarm aggregator, in the ``ai`` subtree.

::

    ai (one_for_one)
    ├── swarm               ForecastRound + ModelForecast → SwarmForecast → DB + ``prediction``
    ├── predictor-<model>   ForecastRequest → OpenRouter chat completion → ModelForecast (+ its row)
    └── scheduler           whale trades + market activity → ForecastRound + ForecastRequests

Start order puts consumers first, so shutdown stops the scheduler first.  Everything the actors
decide from (analysis times, open rounds, spend) lives in state objects built here once, so a
restart of any of them loses nothing; their inboxes redeliver what a crashed incarnation was
working on.  See :mod:`._scheduler`, :mod:`._predictor` and :mod:`._swarm` for the details and
the confidence formula.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import attrs
import trio

from storage import open_store
from supervision import Backoff, ChildSpec, Inbox, Strategy, SupervisorSpec, supervisor_child

from ._messages import ForecastRequest, ForecastRound, ModelForecast, WhaleNote, request_id_for
from ._predictor import HttpClientFactory, PredictorConfig, predictor_actor
from ._prompt import DEFAULT_SYSTEM_PROMPT, DEFAULT_USER_PROMPT, Prompts
from ._scheduler import AiHistory, SchedulerConfig, SchedulerState, scheduler_actor
from ._stats import AiStats, ModelStats, utc_day
from ._swarm import SwarmForecast, SwarmState, aggregate, prediction_data, swarm_actor

if TYPE_CHECKING:
    from config import DatabaseUrl, Settings
    from protocols.polymarket import MarketInfo, Trade

    from ..db_writer import DbStats
    from ..directory import MarketDirectory
    from ..market_state import MarketStateStore
    from ..messages import Broadcast


def swarm_models(settings: Settings) -> tuple[str, ...]:
    """The models asked: ``SWARM_MODELS`` without repeats, or only its first when swarm mode is off."""
    models = tuple(dict.fromkeys(settings.swarm_models))
    return models if settings.use_swarm_mode else models[:1]


def predictor_ids(models: tuple[str, ...]) -> dict[str, str]:
    """A child id per model (``predictor-openai-gpt-4o-mini``): no ``/`` (paths use it), unique."""
    ids: dict[str, str] = {}
    for index, model in enumerate(models):
        slug = "predictor-" + re.sub(r"[^A-Za-z0-9._-]+", "-", model).strip("-")
        ids[model] = slug if slug not in ids.values() else f"{slug}-{index}"
    return ids


@attrs.define
class AiPart:
    """The AI subtree and what it shares: built by :func:`build_ai`.

    Attributes:
        hints: Where the whale watcher sends whale trades (the scheduler's inbox).
        inboxes: The subtree's inboxes by name (for status and tests).
    """

    child: ChildSpec
    stats: AiStats
    scheduler_state: SchedulerState
    swarm_state: SwarmState
    prompts: Prompts
    models: tuple[str, ...]
    inboxes: dict[str, Inbox[Any]]

    @property
    def hints(self) -> trio.MemorySendChannel[Trade]:
        return self.inboxes["ai_scheduler"].send_channel


def build_ai(
    settings: Settings,
    stats: AiStats,
    *,
    directory: MarketDirectory,
    market_state: MarketStateStore,
    wanted: Callable[[MarketInfo], bool],
    broadcast: trio.MemorySendChannel[Broadcast] | None,
    store: trio.MemorySendChannel[Any] | None,
    http_client: HttpClientFactory,
    wall_clock: Callable[[], float] = time.time,
    rng: random.Random | None = None,
    scan_interval: float = 60.0,
    inboxes: dict[str, Inbox[Any]] | None = None,
    history: Callable[[], Awaitable[AiHistory]] | None = None,
) -> AiPart:
    """The ``ai`` subtree for ``settings`` (which must have an ``OPENROUTER_API_KEY``).

    ``inboxes`` may hold inboxes made earlier (``ai_scheduler``, which the whale watcher is
    given before the subtree is built); the missing ones are made here.  ``history`` reads what
    earlier runs recorded (see :func:`history_loader`).
    """
    assert settings.openrouter_api_key, "the AI part needs OPENROUTER_API_KEY"
    rng = rng if rng is not None else random.Random()
    models = swarm_models(settings)
    stats.enabled = True
    stats.budget_usd = settings.ai_daily_budget_usd
    for model in models:
        stats.model(model)
    prompts = Prompts.load(settings.ai_system_prompt_file, settings.ai_user_prompt_file,
                           include_market_price=settings.ai_include_market_price)
    ids = predictor_ids(models)
    inboxes = dict(inboxes or {})
    inboxes.setdefault("ai_scheduler", Inbox("ai_scheduler", 1024))
    inboxes.setdefault("ai_swarm", Inbox("ai_swarm", 1024))
    for model in models:
        inboxes.setdefault(ids[model], Inbox(ids[model], 64))
    swarm_state, scheduler_state = SwarmState(), SchedulerState()
    children = [ChildSpec(
        id="swarm", inbox=inboxes["ai_swarm"], shutdown=5, backoff=Backoff(min=0.1, max=5),
        run=swarm_actor(swarm_state, stats, broadcast=broadcast, store=store, wall_clock=wall_clock))]
    for model in models:
        config = PredictorConfig(
            model=model, base_url=settings.openrouter_base_url, api_key=settings.openrouter_api_key,
            app_url=settings.openrouter_app_url, max_tokens=settings.ai_max_tokens,
            temperature=settings.ai_temperature, timeout=settings.ai_model_timeout,
            pause_seconds=settings.ai_model_pause_minutes * 60,
            assumed_usd_per_million_tokens=settings.ai_assumed_usd_per_million_tokens)
        children.append(ChildSpec(
            id=ids[model], inbox=inboxes[ids[model]], shutdown=2, backoff=Backoff(min=0.5, max=30),
            run=predictor_actor(config, stats, results=inboxes["ai_swarm"].send_channel, store=store,
                                http_client=http_client, wall_clock=wall_clock, rng=random.Random(rng.random()))))
    scheduler_config = SchedulerConfig(
        models=models, analyses_per_hour=settings.ai_analyses_per_hour,
        reanalysis_seconds=settings.reanalysis_hours * 3600, quorum=settings.ai_swarm_quorum,
        deadline=settings.ai_swarm_deadline, scan_interval=scan_interval)
    children.append(ChildSpec(
        id="scheduler", inbox=inboxes["ai_scheduler"], shutdown=1, backoff=Backoff(min=1, max=60),
        run=scheduler_actor(scheduler_config, scheduler_state, stats, prompts, directory=directory,
                            market_state=market_state, wanted=wanted, rounds=inboxes["ai_swarm"].send_channel,
                            predictors={m: inboxes[ids[m]].send_channel for m in models},
                            wall_clock=wall_clock, rng=random.Random(rng.random()), history=history)))
    # Model calls fail for outside reasons (handled inside, never as crashes), so a crash here is
    # a bug: tolerate a burst, as the pipeline does, and let a persistent one escalate.
    child = supervisor_child("ai", SupervisorSpec(Strategy.ONE_FOR_ONE, intensity=30, period=60), children,
                             rng=random.Random(rng.random()))
    return AiPart(child=child, stats=stats, scheduler_state=scheduler_state, swarm_state=swarm_state,
                  prompts=prompts, models=models, inboxes=inboxes)


def history_loader(url: DatabaseUrl | None, db_stats: DbStats, reanalysis_seconds: float, *,
                   wall_clock: Callable[[], float] = time.time) -> Callable[[], Awaitable[AiHistory]]:
    """Reads today's LLM spend and the markets analysed within the reanalysis window from the
    database (``model_forecasts``), once the DB writer has the schema in place (waits up to a
    minute), over a short-lived connection of its own.  Raises what
    :func:`storage.open_store` raises when the database cannot be read."""

    async def load() -> AiHistory:
        await db_stats.wait_for_schema(2)   # (v2: model_forecasts)
        wall = wall_clock()
        day_start = datetime.fromisoformat(utc_day(wall)).replace(tzinfo=UTC).timestamp()
        async with open_store(url) as store:
            spend = await store.ai_spend_since(day_start)
            last = await store.last_forecast_times(wall - reanalysis_seconds)
        return AiHistory(day_start=day_start, spend_today_usd=spend, last_forecast=last)

    return load


def describe(settings: Settings) -> str:
    """One line for the start-up log."""
    models = swarm_models(settings)
    return (f"AI analysis on: {len(models)} model(s) ({', '.join(models)}) via {settings.openrouter_base_url}; "
            f"budget ${settings.ai_daily_budget_usd:.2f}/day, at most {settings.ai_analyses_per_hour} analyses/hour, "
            f"market price {'shown to' if settings.ai_include_market_price else 'withheld from'} the models")


__all__ = [
    "DEFAULT_SYSTEM_PROMPT", "DEFAULT_USER_PROMPT", "AiHistory", "AiPart", "AiStats", "ForecastRequest", "ForecastRound",
    "ModelForecast", "ModelStats", "PredictorConfig", "Prompts", "SchedulerConfig", "SchedulerState",
    "SwarmForecast", "SwarmState", "WhaleNote", "aggregate", "build_ai", "describe", "history_loader", "prediction_data",
    "predictor_actor", "predictor_ids", "request_id_for", "scheduler_actor", "swarm_actor", "swarm_models",
    "utc_day",
]
