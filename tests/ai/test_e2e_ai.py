"""End to end over real sockets: the Nobel replay and the fake OpenRouter → stored forecasts and
``prediction`` messages to a real WebSocket client."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import pytest
import trio

from actors import ServiceOptions, build_service
from config import load_settings, parse_database_url
from storage import open_store
from supervision import run_supervisor
from tests.fakes.openrouter import DEFAULT_KEY, DEFAULT_MODELS, RecordedCall, Reply, open_fake_openrouter
from tests.frontend._client import OFFLINE_ENV, SAMPLE, Client

MARKETS = 20  # the sample's markets (all open, all politics)


def varied_answer(call: RecordedCall) -> Reply:
    """A different, deterministic forecast per market and model."""
    digest = hashlib.sha256((call.model + call.user_prompt()).encode()).digest()
    return Reply(probability=round(0.05 + 0.9 * digest[0] / 255, 3), confidence=round(0.3 + 0.6 * digest[1] / 255, 3))


async def test_the_replay_is_forecast_stored_and_streamed(tmp_path: Path) -> None:
    db = tmp_path / "insights.db"
    async with open_fake_openrouter() as fake:
        fake.default = varied_answer
        env = {**OFFLINE_ENV, "DATABASE_URL": f"sqlite:///{db}", "DB_JOURNAL_PATH": str(tmp_path / "journal.jsonl"),
               "OPENROUTER_API_KEY": DEFAULT_KEY, "OPENROUTER_BASE_URL": fake.base_url,
               "AI_ANALYSES_PER_HOUR": "36000", "AI_INCLUDE_MARKET_PRICE": "true"}
        svc = build_service(load_settings(env, env_file=None), ServiceOptions(seed=7, replay=SAMPLE, speed=0))
        stop = trio.Event()
        client = Client()
        async with trio.open_nursery() as nursery:
            await nursery.start(functools.partial(run_supervisor, svc.spec, svc.children, registry=svc.registry,
                                                  rng=svc.rng, stop=stop))
            url = f"ws://127.0.0.1:{svc.frontend_stats.bound_port}"
            # a live client that only wants predictions (resume from 0: nothing can slip past it)
            await client.session(url, requests=[{"type": "subscribe", "data": {"types": ["prediction"]}},
                                                {"type": "resume", "data": {"since": 0}}],
                                 until=lambda c: sum(m["type"] == "prediction" for m in c.messages) >= MARKETS,
                                 timeout=60)
            stop.set()   # graceful: the DB writer stops last and writes what it holds
        assert fake.format_errors == []
    predictions = [m for m in client.messages if m["type"] == "prediction"]
    after_subscribing = client.messages[[m["type"] for m in client.messages].index("subscribed") + 1:]
    assert {m["type"] for m in after_subscribing} == {"prediction"}
    by_market = {p["data"]["condition_id"]: p["data"] for p in predictions}
    assert len(predictions) == len(by_market) == MARKETS == len(svc.directory.markets), "each market forecast once"
    for data in predictions[0]["data"], predictions[-1]["data"]:
        for field in ("condition_id", "title", "outcome", "probability", "confidence", "votes", "models",
                      "market_price", "timestamp"):
            assert field in data, field
        assert data["title"].startswith("Will ") and data["title"].endswith("Nobel Peace Prize in 2025?")
        assert [m["model"] for m in data["models"]] == list(DEFAULT_MODELS) and sum(data["votes"].values()) == 3
        assert data["market_price"] is not None and data["market_price_shown"] is True
        assert data["timestamp"].endswith("Z") and 0 <= data["probability"] <= 1 and 0 <= data["confidence"] <= 1
    stats = svc.ai_stats
    assert stats.rounds_published == MARKETS and stats.rounds_by_trigger["whale"] >= 1
    assert stats.calls_total == 3 * MARKETS and stats.cost_today_usd > 0
    assert all("The market currently prices" in c.user_prompt() for c in fake.calls)
    async with open_store(parse_database_url(f"sqlite:///{db}")) as store:
        swarm_ids = await store.keys("swarm_forecasts")
        model_ids = await store.keys("model_forecasts")
    assert swarm_ids == {p["data"]["forecast_id"] for p in predictions}
    assert model_ids == {f"{fid}:{model}" for fid in swarm_ids for model in DEFAULT_MODELS}
    # a restarted service on the same database keeps to the budget and the reanalysis window:
    # nothing in the sample is analysed again, and today's spend carries over
    async with open_fake_openrouter() as fake:
        fake.default = varied_answer
        env["OPENROUTER_BASE_URL"] = fake.base_url
        again = build_service(load_settings(env, env_file=None), ServiceOptions(seed=8, replay=SAMPLE, speed=0))
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            await nursery.start(functools.partial(run_supervisor, again.spec, again.children,
                                                  registry=again.registry, rng=again.rng, stop=stop))
            with trio.fail_after(30):
                await again.replay_state.done.wait()  # type: ignore[union-attr]
                while not again.ai.scheduler_state.restored:  # type: ignore[union-attr]
                    await trio.sleep(0.05)
            await trio.sleep(1.0)          # (whale hints reach the scheduler and are turned down)
            stop.set()
    assert fake.calls == [] and again.ai_stats.rounds_started == 0
    assert again.ai_stats.cost_today_usd == pytest.approx(stats.cost_today_usd) and stats.cost_today_usd > 0
