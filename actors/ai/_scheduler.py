"""Scheduler actor: which markets to analyse, and when.

Order of preference: markets with whale trades since their last analysis (the largest whale flow
first), then the most active markets (Gamma's 24 h volume plus the live volume the service saw)
that are open and not excluded.  Never a market analysed within ``REANALYSIS_HOURS``; at most
``AI_ANALYSES_PER_HOUR`` analyses started in any hour; activity-picked analyses are spaced at
least an hour / ``AI_ANALYSES_PER_HOUR`` apart, so whale-triggered ones always find room soon.
No analysis starts once the day's spend reached ``AI_DAILY_BUDGET_USD``, nor while every model
is paused.
"""

from __future__ import annotations

import collections
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import attrs
import trio

from protocols.polymarket import MarketInfo, Trade
from supervision import ActorContext, deliver

from ..directory import MarketDirectory
from ..market_state import MarketStateStore
from ._messages import ForecastRequest, ForecastRound, WhaleNote, request_id_for
from ._prompt import Prompts
from ._stats import AiStats, utc_day

HOUR = 3600.0


@attrs.frozen
class SchedulerConfig:
    """How the scheduler chooses.

    Attributes:
        models: The models asked (``SWARM_MODELS``, or its first with ``USE_SWARM_MODE=false``).
        analyses_per_hour: ``AI_ANALYSES_PER_HOUR``.
        reanalysis_seconds: ``REANALYSIS_HOURS`` in seconds.
        quorum: ``AI_SWARM_QUORUM`` (a round asks fewer models when some are paused: then it
            needs at most as many answers as it asked for).
        deadline: ``AI_SWARM_DEADLINE_SECONDS``.
        scan_interval: Seconds between looks at the most active markets when nothing else wakes it.
        whales_in_prompt: Recent whale trades per market shown to the models.
        max_markets_tracked: Markets whose whale flow is remembered (least recent dropped first).
    """

    models: tuple[str, ...]
    analyses_per_hour: int = 12
    reanalysis_seconds: float = 8 * HOUR
    quorum: int = 2
    deadline: float = 180.0
    scan_interval: float = 60.0
    whales_in_prompt: int = 5
    max_markets_tracked: int = 10_000

    @property
    def activity_spacing(self) -> float:
        return HOUR / self.analyses_per_hour


@attrs.define
class MarketWhales:
    """Whale trades seen on one market."""

    notes: collections.deque[WhaleNote]
    #: USDC of whale trades since the market's last analysis (0: nothing new).
    pending_notional: float = 0.0
    #: trio time of the latest whale.
    latest: float = 0.0


@attrs.define
class SchedulerState:
    """What the scheduler remembers; owned by its factory, so it survives restarts."""

    #: trio time of each market's last analysis start.
    last_analysed: dict[str, float] = attrs.field(factory=dict)
    #: Whether the history of earlier runs was read (once per service).
    restored: bool = False
    #: trio times of the analyses started in the last hour, oldest first.
    started: collections.deque[float] = attrs.field(factory=collections.deque)
    last_activity_round: float = -math.inf
    whales: dict[str, MarketWhales] = attrs.field(factory=dict)
    seen_trades: collections.OrderedDict[str, None] = attrs.field(factory=collections.OrderedDict)
    #: Whether "every model is paused" was logged for the current pause.
    paused_logged: bool = False
    #: ``wanted`` answers cached per directory version.
    wanted_cache: dict[str, bool] = attrs.field(factory=dict)
    wanted_version: int = -1
    forecasts: int = 0


def market_price(cid: str, market: MarketInfo, market_state: MarketStateStore) -> float | None:
    """The first outcome's price: the last one the service saw, else Gamma's."""
    view = market_state.markets.get(cid)
    if view is not None and view.price is not None:
        return float(view.price)
    return float(market.outcome_prices[0]) if market.outcome_prices else None


@attrs.frozen
class AiHistory:
    """What earlier runs of the service recorded: the spend since ``day_start`` (00:00 UTC
    today) and when each market was last analysed (wall-clock epoch seconds)."""

    day_start: float
    spend_today_usd: float
    last_forecast: dict[str, float]


def scheduler_actor(
    config: SchedulerConfig,
    state: SchedulerState,
    stats: AiStats,
    prompts: Prompts,
    *,
    directory: MarketDirectory,
    market_state: MarketStateStore,
    wanted: Callable[[MarketInfo], bool],
    rounds: trio.MemorySendChannel[ForecastRound],
    predictors: Mapping[str, trio.MemorySendChannel[ForecastRequest]],
    wall_clock: Callable[[], float] = time.time,
    rng: random.Random | None = None,
    history: Callable[[], Awaitable[AiHistory]] | None = None,
) -> Callable[..., Any]:
    """The scheduler's actor body; its inbox takes the whale trades the whale watcher broadcast.

    At its first start it reads ``history`` (what earlier runs of the service recorded: today's
    spend, when each market was last analysed), so a restarted service keeps to the budget and
    the reanalysis window; if that fails it says so and starts from nothing.

    A round sends one :class:`ForecastRound` to the swarm aggregator (``rounds``), then one
    :class:`ForecastRequest` per available model to that model's predictor (``predictors``).
    Reaching the daily budget is logged once a day and counted in ``stats.skipped_for_budget``.

    Cancellation and restarts: everything it decides from lives in ``state`` (analysis times, the
    hourly window, whale flow), so a restart changes nothing; a whale trade delivered again is
    recognised by its trade id.  It waits on its inbox with a timeout, so a stop request ends it
    at once.  Errors: none expected (bad or unknown markets are skipped).
    """
    rng = rng if rng is not None else random.Random()

    def note_whale(trade: Trade) -> None:
        if trade.trade_id in state.seen_trades:
            return
        state.seen_trades[trade.trade_id] = None
        while len(state.seen_trades) > 4096:
            state.seen_trades.popitem(last=False)
        stats.whale_triggers += 1
        entry = state.whales.get(trade.condition_id)
        if entry is None:
            if len(state.whales) >= config.max_markets_tracked:
                oldest = min(state.whales, key=lambda c: state.whales[c].latest)
                del state.whales[oldest]
            entry = state.whales[trade.condition_id] = MarketWhales(collections.deque(maxlen=config.whales_in_prompt))
        outcome = trade.outcome
        entry.notes.append(WhaleNote(trade.timestamp, trade.side, outcome, float(trade.notional), float(trade.price)))
        entry.pending_notional += float(trade.notional)
        entry.latest = trio.current_time()

    def is_wanted(market: MarketInfo) -> bool:
        if state.wanted_version != directory.version:
            state.wanted_cache.clear()
            state.wanted_version = directory.version
        answer = state.wanted_cache.get(market.condition_id)
        if answer is None:
            answer = state.wanted_cache[market.condition_id] = bool(wanted(market))
        return answer

    def eligible(cid: str, now: float) -> MarketInfo | None:
        market = directory.markets.get(cid)
        if market is None or not market.active or market.closed or cid in directory.resolutions:
            return None
        last = state.last_analysed.get(cid)
        if last is not None and now - last < config.reanalysis_seconds:
            return None
        return market if is_wanted(market) else None

    def activity(cid: str, market: MarketInfo) -> float:
        view = market_state.markets.get(cid)
        return market.volume_24h + (view.live_volume if view is not None else 0.0)

    def whale_candidate(now: float) -> str | None:
        best, best_flow = None, 0.0
        for cid, entry in state.whales.items():
            if entry.pending_notional > best_flow and eligible(cid, now) is not None:
                best, best_flow = cid, entry.pending_notional
        return best

    def activity_candidate(now: float) -> str | None:
        if now - state.last_activity_round < config.activity_spacing:
            return None
        best, best_activity = None, 0.0
        for cid, market in directory.markets.items():
            if market.active and not market.closed:
                value = activity(cid, market)
                if value > best_activity and eligible(cid, now) is not None:
                    best, best_activity = cid, value
        return best

    def new_forecast_id() -> str:
        state.forecasts += 1
        return f"fc-{int(wall_clock() * 1000):x}-{rng.getrandbits(32):08x}{state.forecasts % 256:02x}"

    async def start_round(ctx: ActorContext, cid: str, trigger: str, models: tuple[str, ...], now: float) -> None:
        market = directory.markets[cid]
        wall = wall_clock()
        price = market_price(cid, market, market_state)
        whales = state.whales.get(cid)
        notes = tuple(whales.notes) if whales is not None else ()
        forecast_id = new_forecast_id()
        outcomes = market.outcomes or ("Yes", "No")
        round_ = ForecastRound(
            forecast_id=forecast_id, condition_id=cid, title=market.question, slug=market.slug,
            event_slug=market.event_slug, outcomes=outcomes, models=models,
            quorum=max(1, min(config.quorum, len(models))), deadline=now + config.deadline, market_price=price,
            price_shown=prompts.include_market_price and price is not None, trigger=trigger, opened_at=wall)
        state.last_analysed[cid] = now
        if len(state.last_analysed) > 50_000:   # forget analyses older than the window (memory stays bounded)
            for old in [c for c, t in state.last_analysed.items() if now - t >= config.reanalysis_seconds]:
                del state.last_analysed[old]
        state.started.append(now)
        if trigger == "activity":
            state.last_activity_round = now
        if whales is not None:
            whales.pending_notional = 0.0
        stats.rounds_started += 1
        stats.rounds_by_trigger[trigger] += 1
        ctx.log.info("analysing {title!r} ({trigger}): asking {n} model(s); {spent} spent today",
                     title=market.question, trigger=trigger, n=len(models),
                     spent=f"${stats.cost_today_usd:.4f} of ${stats.budget_usd:.2f}")
        messages = prompts.messages(market, whales=notes, market_price=price, today=wall)
        await deliver(rounds, round_)
        for model in models:
            await deliver(predictors[model], ForecastRequest(
                request_id=request_id_for(forecast_id, model), forecast_id=forecast_id, condition_id=cid,
                model=model, messages=messages, outcomes=outcomes, market_price=price, deadline=round_.deadline))

    async def schedule(ctx: ActorContext) -> None:
        """Start every analysis allowed now."""
        stats.roll_day(wall_clock())   # (keeps "spend today" right for /status even when idle)
        while True:
            now = trio.current_time()
            while state.started and now - state.started[0] >= HOUR:
                state.started.popleft()
            if len(state.started) >= config.analyses_per_hour:
                return
            cid = whale_candidate(now)
            trigger = "whale"
            if cid is None:
                cid, trigger = activity_candidate(now), "activity"
            if cid is None:
                return
            wall = wall_clock()
            if stats.budget_reached(wall):
                stats.skipped_for_budget += 1
                if stats.budget_logged_day != stats.day:
                    stats.budget_logged_day = stats.day
                    ctx.log.warning("AI: the daily budget of ${budget:.2f} is spent (${spent:.4f} on {day} UTC); "
                                    "no more analyses until the next UTC day", budget=stats.budget_usd,
                                    spent=stats.cost_today_usd, day=stats.day)
                return
            models = stats.available_models(config.models, now)
            if not models:
                if not state.paused_logged:
                    state.paused_logged = True
                    ctx.log.warning("AI: every model is paused; no analyses until a pause ends")
                return
            state.paused_logged = False
            await start_round(ctx, cid, trigger, models, now)

    def next_wake(now: float) -> float:
        wake = now + config.scan_interval
        if state.started and len(state.started) >= config.analyses_per_hour:
            wake = min(wake, state.started[0] + HOUR)
        spacing_ends = state.last_activity_round + config.activity_spacing
        if spacing_ends > now:
            wake = min(wake, spacing_ends)
        return wake

    async def restore(ctx: ActorContext) -> None:
        assert history is not None
        try:
            with trio.fail_after(90):
                past = await history()
        except Exception as exc:  # noqa: BLE001 - history is a guard, not a dependency
            ctx.log.warning("AI: could not read earlier forecasts ({err}); today's spend and the "
                            "reanalysis window start from nothing", err=type(exc).__name__)
            return
        wall, now = wall_clock(), trio.current_time()
        stats.roll_day(wall)
        if utc_day(past.day_start) == stats.day:
            stats.cost_today_usd = max(stats.cost_today_usd, past.spend_today_usd)
        for cid, at in past.last_forecast.items():
            state.last_analysed.setdefault(cid, now - max(0.0, wall - at))
        if past.spend_today_usd or past.last_forecast:
            ctx.log.info("AI: ${spent:.4f} spent today before this start; {n} market(s) analysed within "
                         "the reanalysis window", spent=past.spend_today_usd, n=len(past.last_forecast))

    async def run(ctx: ActorContext, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        assert ctx.inbox is not None
        task_status.started()
        if history is not None and not state.restored:
            await restore(ctx)
            state.restored = True
        while True:
            await schedule(ctx)
            with trio.move_on_at(next_wake(trio.current_time())):
                try:
                    trade = await ctx.inbox.receive()
                except trio.EndOfChannel:
                    return
                note_whale(trade)
                for more in ctx.inbox.drain_nowait():
                    note_whale(more)

    return run
