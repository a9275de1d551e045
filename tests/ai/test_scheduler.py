"""The scheduler: whales first, then activity; the reanalysis window, the hourly cap, the budget."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio

from actors.ai import AiStats, ForecastRequest, ForecastRound, Prompts, SchedulerConfig, SchedulerState, scheduler_actor
from actors.directory import MarketDirectory, Resolution
from actors.market_state import MarketStateStore, MarketView
from config import ConfigError, load_settings
from protocols.polymarket import MarketInfo
from supervision import ChildSpec, Inbox
from tests._logs import capture_logs

from ._helpers import cid, drain, market, running, whale

MODELS = ("m/a", "m/b", "m/c")
HOUR = 3600.0
#: 2025-10-09 00:00:00 UTC
MIDNIGHT = 1_759_968_000.0


class Harness:
    def __init__(self, markets: list[MarketInfo], *, models: tuple[str, ...] = MODELS, budget: float = 1.0,
                 wall_base: float = MIDNIGHT + 10 * HOUR, wanted: Callable[[MarketInfo], bool] = lambda m: True,
                 prompts: Prompts | None = None, **config: Any) -> None:
        self.directory = MarketDirectory()
        self.directory.upsert(markets)
        self.market_state = MarketStateStore()
        self.stats = AiStats(enabled=True, budget_usd=budget)
        self.state = SchedulerState()
        self.inbox: Inbox[Any] = Inbox("ai_scheduler", 1000)
        self.rounds_send, self.rounds = trio.open_memory_channel[Any](1000)
        self.requests: dict[str, trio.MemoryReceiveChannel[Any]] = {}
        senders = {}
        for model in models:
            senders[model], self.requests[model] = trio.open_memory_channel[Any](1000)
        self.wall_base = wall_base
        self.config = SchedulerConfig(models=models, **config)
        self.child = ChildSpec(id="scheduler", inbox=self.inbox, run=scheduler_actor(
            self.config, self.state, self.stats, prompts or Prompts(), directory=self.directory,
            market_state=self.market_state, wanted=wanted, rounds=self.rounds_send, predictors=senders,
            wall_clock=self.wall))
        self.started: list[tuple[float, str, str]] = []   # (time, market name's cid, trigger)

    def wall(self) -> float:
        return self.wall_base + trio.current_time()

    def collect(self) -> list[ForecastRound]:
        rounds = drain(self.rounds)
        return rounds

    async def whale(self, *trades: Any) -> None:
        for trade in trades:
            self.inbox.send_channel.send_nowait(trade)
        await trio.testing.wait_all_tasks_blocked()


def names(rounds: list[ForecastRound], markets: list[MarketInfo]) -> list[str]:
    by_cid = {m.condition_id: m.slug.removesuffix("-slug") for m in markets}
    return [by_cid[r.condition_id] for r in rounds]


async def test_whale_markets_go_first_then_the_most_active(autojump_clock: trio.testing.MockClock) -> None:
    markets = [market("busy", volume=100_000), market("quiet", volume=500), market("mid", volume=50_000)]
    h = Harness(markets, analyses_per_hour=12)   # activity rounds at least 300 s apart
    h.market_state.markets[cid("mid")] = MarketView(cid("mid"), live_volume=60_000.0)  # 110,000 in all
    async with running([h.child]):
        await trio.sleep(1)
        first = h.collect()
        await trio.sleep(9)
        await h.whale(whale("quiet", 30_000, timestamp=1_760_000_000))
        second = h.collect()
        await trio.sleep(100)
        assert h.collect() == [], "activity rounds are spaced; nothing else wants analysis"
        await trio.sleep(200)
        third = h.collect()
    assert names(first, markets) == ["mid"] and first[0].trigger == "activity"
    assert names(second, markets) == ["quiet"] and second[0].trigger == "whale", "a whale does not wait"
    assert names(third, markets) == ["busy"]
    assert h.stats.rounds_by_trigger == {"activity": 2, "whale": 1} and h.stats.whale_triggers == 1
    whale_requests = [r for r in drain(h.requests["m/a"]) if r.forecast_id == second[0].forecast_id]
    assert len(whale_requests) == 1
    prompt = whale_requests[0].messages[1][1]
    assert "Will quiet happen?" in prompt and "BUY Yes for $30,000 at 0.600" in prompt
    assert "2025-10-09 08:53 UTC" in prompt


async def test_a_round_asks_every_model_once_with_the_same_prompt(autojump_clock: trio.testing.MockClock) -> None:
    h = Harness([market("a", prices=(0.35, 0.65))], deadline=120.0, quorum=2)
    async with running([h.child]):
        await trio.sleep(1)
    (round_,) = h.collect()
    assert isinstance(round_, ForecastRound)
    assert round_.models == MODELS and round_.quorum == 2 and round_.deadline == 120.0
    assert round_.market_price == 0.35 and round_.price_shown is False and round_.outcomes == ("Yes", "No")
    requests: list[ForecastRequest] = [drain(h.requests[m])[0] for m in MODELS]
    assert [r.model for r in requests] == list(MODELS)
    assert {r.request_id for r in requests} == {f"{round_.forecast_id}:{m}" for m in MODELS}
    assert len({r.messages for r in requests}) == 1 and requests[0].deadline == round_.deadline
    system, user = requests[0].messages
    assert system[0] == "system" and "JSON" in system[1]
    assert user[0] == "user" and "Will a happen?" in user[1] and "resolves to Yes if a happens" in user[1]
    assert "0.35" not in user[1] and "market currently prices" not in user[1], "blind by default"
    assert "Today is 2025-10-09 (UTC)" in user[1] and "Closes: 2025-10-10 00:00 UTC" in user[1]
    assert "none seen" in user[1]


async def test_the_price_is_shown_when_configured(autojump_clock: trio.testing.MockClock) -> None:
    h = Harness([market("a", prices=(0.35, 0.65))], prompts=Prompts(include_market_price=True))
    h.market_state.markets[cid("a")] = MarketView(cid("a"), price=0.71)
    async with running([h.child]):
        await trio.sleep(1)
    (round_,) = h.collect()
    assert round_.market_price == 0.71 and round_.price_shown is True
    assert 'The market currently prices "Yes" at 0.710' in drain(h.requests["m/a"])[0].messages[1][1]


async def test_the_reanalysis_window_holds(autojump_clock: trio.testing.MockClock) -> None:
    h = Harness([market("a")], analyses_per_hour=3600, reanalysis_seconds=8 * HOUR, scan_interval=60.0)
    async with running([h.child]):
        await trio.sleep(1)
        assert len(h.collect()) == 1
        await h.whale(whale("a", n=1))
        await trio.sleep(HOUR)
        await h.whale(whale("a", n=2))
        await trio.sleep(8 * HOUR - HOUR - 10)
        assert h.collect() == [], "whales within the window do not re-analyse"
        await trio.sleep(80)
        again = h.collect()
        await h.whale(whale("a", n=2))     # delivered again (a whale watcher restart): no new flow
        await trio.sleep(8 * HOUR)
        third = h.collect()
    assert len(again) == 1 and again[0].trigger == "whale"
    assert 8 * HOUR <= h.state.last_analysed[cid("a")] - 8 * HOUR < 8 * HOUR + 60
    assert len(third) == 1 and third[0].trigger == "activity"
    assert h.stats.whale_triggers == 2


async def test_no_more_than_n_analyses_an_hour(autojump_clock: trio.testing.MockClock) -> None:
    markets = [market(f"m{i}", volume=0.0) for i in range(5)]   # no activity: only whales count
    h = Harness(markets, analyses_per_hour=2)
    async with running([h.child]):
        await h.whale(*[whale(f"m{i}", 10_000 + i) for i in range(5)])
        await trio.sleep(HOUR - 1)
        within_the_hour = h.collect()
        await trio.sleep(1)
        await trio.testing.wait_all_tasks_blocked()
        next_hour = h.collect()
        await trio.sleep(HOUR)
        await trio.testing.wait_all_tasks_blocked()
        last = h.collect()
    # the biggest whale flow first
    assert names(within_the_hour, markets) == ["m4", "m3"]
    assert names(next_hour, markets) == ["m2", "m1"]
    assert names(last, markets) == ["m0"]


async def test_the_budget_stops_scheduling_until_the_next_day(autojump_clock: trio.testing.MockClock) -> None:
    h = Harness([market("a"), market("b")], budget=0.50, wall_base=MIDNIGHT + 24 * HOUR - 100, scan_interval=60.0)
    h.stats.record_cost("m/a", 0.51, h.wall_base)
    with capture_logs("WARNING") as logs:
        async with running([h.child]):
            await h.whale(whale("a"))
            await trio.sleep(50)
            assert h.collect() == []
            await h.whale(whale("b"))
            skipped = h.stats.skipped_for_budget
            await trio.sleep(80)         # the clock passed midnight UTC (t=100): a new budget at the next look (t=120)
            rounds = h.collect()
    assert skipped >= 2
    budget_lines = [r for r in logs if "daily budget" in r["message"]]
    assert len(budget_lines) == 1, "said once a day"
    assert "$0.50" in budget_lines[0]["message"] and "2025-10-09" in budget_lines[0]["message"]
    assert len(rounds) >= 1 and {r.trigger for r in rounds} == {"whale"}
    assert h.stats.day == "2025-10-10" and h.stats.cost_today_usd == 0.0


async def test_excluded_closed_resolved_and_paused(autojump_clock: trio.testing.MockClock) -> None:
    markets = [market("sports", volume=9e6, category="Sports"), market("closed", volume=8e6, closed=True),
               market("inactive", volume=7e6, active=False), market("resolved", volume=6e6),
               market("ok", volume=10.0)]
    h = Harness(markets, analyses_per_hour=3600, wanted=lambda m: m.category != "Sports")
    h.directory.resolve(Resolution(cid("resolved"), "t", "Yes", 1.0))
    now = 0.0
    h.stats.model("m/b").paused_until = now + 100
    h.stats.model("m/b").pause_reason = "unknown_model (HTTP 404)"
    with capture_logs("WARNING") as logs:
        async with running([h.child]):
            await trio.sleep(5)
            first = h.collect()
            h.stats.key_paused_until, h.stats.key_pause_reason = 1000.0, "no_credits (HTTP 402)"
            h.directory.upsert([market("new", volume=1.0)])
            markets.append(market("new"))
            await h.whale(whale("sports"), whale("ok"), whale("new"))
            await trio.sleep(500)
            during_pause = h.collect()
            await trio.sleep(600)
            after = h.collect()
            await trio.sleep(HOUR)
            last = h.collect()
    assert names(first, markets) == ["ok"] and first[0].models == ("m/a", "m/c") and first[0].quorum == 2
    assert during_pause == []
    assert sum("every model is paused" in r["message"] for r in logs) == 1, "said once per pause"
    assert names(after, markets) == ["new"] and after[0].models == MODELS
    assert last == [], "excluded, closed, inactive and resolved markets are never analysed"


def test_prompt_files_replace_the_defaults(tmp_path: Path) -> None:
    system = tmp_path / "system.txt"
    system.write_text("You are terse. Answer JSON {\"probability\": p}.\n")
    user = tmp_path / "user.txt"
    user.write_text("Q: $question (${first_outcome}) closes $end_date; price $market_price; cost $$5\n$whale_flow")
    settings = load_settings({"AI_SYSTEM_PROMPT_FILE": str(system), "AI_USER_PROMPT_FILE": str(user),
                              "AI_INCLUDE_MARKET_PRICE": "true"}, env_file=None)
    prompts = Prompts.load(settings.ai_system_prompt_file, settings.ai_user_prompt_file,
                           include_market_price=settings.ai_include_market_price)
    (_, sys_text), (_, user_text) = prompts.messages(market("a"), whales=(), market_price=0.25, today=MIDNIGHT)
    assert sys_text == 'You are terse. Answer JSON {"probability": p}.'
    assert user_text == "Q: Will a happen? (Yes) closes 2025-10-10 00:00 UTC; price 0.250; cost $5\nnone seen"
    blind = Prompts(user=prompts.user, include_market_price=False)
    assert "price withheld" in blind.messages(market("a"), whales=(), market_price=0.25, today=MIDNIGHT)[1][1]


@pytest.mark.parametrize("text,fragment", [
    ("Hello $nope", "unknown placeholder $nope"),
    ("Costs $5", "stray $"),
    ("   ", "empty"),
])
def test_bad_prompt_files_stop_start_up(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "user.txt"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings({"AI_USER_PROMPT_FILE": str(path)}, env_file=None)
    assert info.value.variable == "AI_USER_PROMPT_FILE" and fragment in str(info.value)
    with pytest.raises(ConfigError, match="readable"):
        load_settings({"AI_SYSTEM_PROMPT_FILE": str(tmp_path / "missing.txt")}, env_file=None)
