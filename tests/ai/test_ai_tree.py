"""The ai subtree as the service builds it, against the fake OpenRouter: whale → prediction, restarts, budget."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio

from actors import ServiceOptions, build_service
from actors.ai import AiPart, AiStats, build_ai
from actors.catalog import default_http_client
from actors.directory import MarketDirectory
from actors.market_state import MarketStateStore
from actors.messages import Broadcast
from config import load_settings
from storage import ModelForecastRow, SwarmForecastRow
from supervision import Registry
from tests._logs import capture_logs
from tests.fakes.openrouter import DEFAULT_KEY, DEFAULT_MODELS, FakeOpenRouter, good, open_fake_openrouter, slow

from ._helpers import cid, drain, market, running, whale


@attrs.define
class Tree:
    fake: FakeOpenRouter
    ai: AiPart
    registry: Registry
    hub: trio.MemoryReceiveChannel[Broadcast]
    store: trio.MemoryReceiveChannel[Any]

    async def prediction(self) -> Broadcast:
        with trio.fail_after(3600):  # virtual time: a missing prediction fails the test instead of hanging it
            while True:
                message = await self.hub.receive()
                if message.type == "prediction":
                    return message


@asynccontextmanager
async def tree(markets: list[Any], **env: str) -> AsyncIterator[Tree]:
    async with open_fake_openrouter() as fake:
        settings = load_settings({"OPENROUTER_API_KEY": DEFAULT_KEY, "OPENROUTER_BASE_URL": fake.base_url, **env},
                                 env_file=None)
        directory = MarketDirectory()
        directory.upsert(markets)
        hub_send, hub = trio.open_memory_channel[Broadcast](1000)
        store_send, store = trio.open_memory_channel[Any](1000)
        ai = build_ai(settings, AiStats(), directory=directory, market_state=MarketStateStore(),
                      wanted=lambda m: True, broadcast=hub_send, store=store_send, http_client=default_http_client,
                      wall_clock=lambda: 1_760_000_000.0 + trio.current_time())
        async with running([ai.child]) as registry:
            yield Tree(fake, ai, registry, hub, store)
        assert fake.format_errors == []


async def test_a_whale_triggers_a_stored_and_broadcast_swarm_forecast(io_clock: trio.testing.MockClock) -> None:
    async with tree([market("busy", volume=1e6), market("quiet", volume=10.0)], AI_ANALYSES_PER_HOUR="12") as t:
        t.fake.defaults[DEFAULT_MODELS[0]] = good(0.8, 0.6)
        t.fake.defaults[DEFAULT_MODELS[1]] = good(0.7, 0.7)
        t.fake.defaults[DEFAULT_MODELS[2]] = good(0.3, 0.8)
        first = await t.prediction()                      # the most active market, at once
        await t.ai.hints.send(whale("quiet", 40_000))
        second = await t.prediction()
        started = trio.current_time()
        rows = drain(t.store)
    assert first.data["condition_id"] == cid("busy") and first.data["trigger"] == "activity"
    assert second.data["condition_id"] == cid("quiet") and second.data["trigger"] == "whale"
    assert started < 60, "a whale is analysed without waiting for the activity spacing (300 s)"
    data = second.data
    assert second.key == f"prediction:{data['forecast_id']}" and second.market == cid("quiet")
    assert (data["outcome"], data["probability"], data["votes"]) == ("Yes", 0.7, {"Yes": 2, "No": 1})
    assert data["confidence"] == 0.265 and data["title"] == "Will quiet happen?" and data["market_price"] == 0.4
    assert [m["model"] for m in data["models"]] == list(DEFAULT_MODELS)
    assert {"model", "outcome", "probability", "confidence"} <= set(data["models"][0])
    model_rows = [r for r in rows if isinstance(r, ModelForecastRow) and r.request_id.startswith(data["forecast_id"])]
    swarm_rows = [r for r in rows if isinstance(r, SwarmForecastRow) and r.forecast_id == data["forecast_id"]]
    assert sorted(r.model for r in model_rows) == sorted(DEFAULT_MODELS) and all(r.ok for r in model_rows)
    assert len(swarm_rows) == 1 and swarm_rows[0].models_ok == 3 and swarm_rows[0].probability == 0.7
    whale_prompt = [c for c in t.fake.calls if "quiet" in c.user_prompt()][0].user_prompt()
    assert "BUY Yes for $40,000 at 0.600" in whale_prompt
    stats = t.ai.stats
    assert stats.rounds_started == 2 and stats.rounds_published == 2 and stats.calls_total == 6


async def test_killing_a_predictor_mid_call_loses_no_answer(io_clock: trio.testing.MockClock) -> None:
    victim = DEFAULT_MODELS[1]
    async with tree([market("a")]) as t:
        t.fake.script(victim, slow(40, 0.2), good(0.25))
        with trio.fail_after(60):
            await t.fake.wait_calls(1, victim)
        await trio.testing.wait_all_tasks_blocked()
        assert t.fake.in_flight >= 1
        assert t.registry.kill("predictor-anthropic-claude-3.5-haiku", "chaos")
        message = await t.prediction()
    assert message.data["models_failed"] == []
    assert {m["model"]: m["probability"] for m in message.data["models"]}[victim] == 0.25
    assert len(t.fake.calls_for(victim)) == 2, "the interrupted call was made again"
    assert t.ai.stats.rounds_published == 1


async def test_spend_reaching_the_budget_stops_new_analyses(io_clock: trio.testing.MockClock) -> None:
    # one analysis costs 3 × $0.00021 = $0.00063: more than this budget
    with capture_logs("WARNING") as logs:
        async with tree([market("a"), market("b"), market("c")], AI_DAILY_BUDGET_USD="0.0005",
                        AI_ANALYSES_PER_HOUR="3600") as t:
            await t.prediction()
            await t.ai.hints.send(whale("b"))
            await trio.sleep(600)
            assert drain(t.hub) == []
    stats = t.ai.stats
    assert stats.rounds_started == 1 and stats.cost_today_usd == 3 * 0.00021
    assert stats.skipped_for_budget >= 1
    assert sum("daily budget" in r["message"] for r in logs) == 1


async def test_without_a_key_the_ai_part_is_off_and_says_so_once() -> None:
    with capture_logs("INFO") as logs:
        svc = build_service(load_settings({}, env_file=None), ServiceOptions(seed=1))
    assert "ai" not in [c.id for c in svc.children] and svc.ai is None and not svc.ai_stats.enabled
    assert not any(name.startswith(("ai_", "predictor")) for name in svc.inboxes)
    assert [r["message"] for r in logs if "AI analysis" in r["message"]] == \
        ["AI analysis off: OPENROUTER_API_KEY is not set"]
    with capture_logs("INFO") as logs:
        svc = build_service(load_settings({"OPENROUTER_API_KEY": "sk-or-v1-x", "USE_SWARM_MODE": "false",
                                           "SWARM_MODELS": "a/one,b/two"}, env_file=None), ServiceOptions(seed=1))
    ids = [c.id for c in svc.children]
    assert ids.index("ai") == ids.index("pipeline") + 1 == ids.index("feeds") - 1, \
        "after the pipeline it writes to, before the feeds (stopped before it)"
    assert svc.ai is not None and svc.ai.models == ("a/one",) and svc.ai_stats.enabled
    assert {"ai_scheduler", "ai_swarm", "predictor-a-one"} <= set(svc.inboxes)
    on = [r["message"] for r in logs if "AI analysis" in r["message"]]
    assert len(on) == 1 and on[0].startswith("AI analysis on: 1 model(s) (a/one)") and "sk-or" not in on[0]
