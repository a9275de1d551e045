"""Predictors against the fake OpenRouter over loopback: answers, retries, pauses, costs, restarts."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import pytest
import trio

from actors.ai import AiStats, ForecastRequest, ModelForecast, PredictorConfig, predictor_actor, request_id_for
from actors.catalog import default_http_client
from storage import ModelForecastRow
from supervision import Backoff, ChildSpec, Inbox, Registry
from tests._logs import capture_logs
from tests.fakes.openrouter import (
    DEFAULT_KEY,
    FakeOpenRouter,
    Reply,
    error_in_body,
    fenced,
    garbage,
    good,
    no_credits,
    open_fake_openrouter,
    prose,
    rate_limited,
    server_error,
    slow,
    unauthorized,
)

from ._helpers import cid, drain, running

A, B, C, D = "openai/gpt-4o-mini", "anthropic/claude-3.5-haiku", "google/gemini-2.0-flash-exp", "meta/llama"
MODELS = (A, B, C, D)


@attrs.define
class Rig:
    fake: FakeOpenRouter
    registry: Registry
    stats: AiStats
    inboxes: dict[str, Inbox[Any]]
    results: trio.MemoryReceiveChannel[ModelForecast]
    store: trio.MemoryReceiveChannel[Any]
    n: int = 0

    def request(self, model: str, *, deadline_in: float = 180.0, fid: str | None = None) -> ForecastRequest:
        self.n += 1
        fid = fid or f"fc-{self.n}"
        return ForecastRequest(request_id_for(fid, model), fid, cid("x"), model,
                               (("system", "You forecast."), ("user", "Will X happen?")), ("Yes", "No"), 0.4,
                               trio.current_time() + deadline_in)

    async def ask(self, *requests: ForecastRequest) -> list[ModelForecast]:
        """Send requests and wait for one result each (in completion order)."""
        with trio.fail_after(3600):  # virtual time: a missing result fails the test instead of hanging it
            for request in requests:
                await self.inboxes[request.model].send_channel.send(request)
            return [await self.results.receive() for _ in requests]


@asynccontextmanager
async def rig(*, models: tuple[str, ...] = MODELS, key: str = DEFAULT_KEY, known: tuple[str, ...] = MODELS,
              pause_seconds: float = 1800.0, attempts: int = 4) -> AsyncIterator[Rig]:
    stats = AiStats(enabled=True, budget_usd=1.0)
    results_send, results = trio.open_memory_channel[ModelForecast](100)
    store_send, store = trio.open_memory_channel[Any](100)
    inboxes: dict[str, Inbox[Any]] = {m: Inbox(f"predictor-{i}", 64) for i, m in enumerate(models)}
    async with open_fake_openrouter(models=known) as fake:
        children = [ChildSpec(id=f"predictor-{i}", inbox=inboxes[m], backoff=Backoff(min=0.5, max=5, jitter=0),
                              run=predictor_actor(
                                  PredictorConfig(model=m, base_url=fake.base_url, api_key=key, max_tokens=300,
                                                  temperature=0.2, timeout=60.0, attempts=attempts,
                                                  backoff=Backoff(min=2.0, max=60.0, factor=2.0, jitter=0.0),
                                                  pause_seconds=pause_seconds, app_url="https://example.org"),
                                  stats, results=results_send, store=store_send, http_client=default_http_client,
                                  wall_clock=lambda: 1_760_000_000.0 + trio.current_time()))
                    for i, m in enumerate(models)]
        async with running(children) as registry:
            yield Rig(fake, registry, stats, inboxes, results, store)
        assert fake.format_errors == [], fake.format_errors


def by_model(results: list[ModelForecast]) -> dict[str, ModelForecast]:
    return {r.model: r for r in results}


async def test_answers_in_every_shape_and_garbage(io_clock: trio.testing.MockClock) -> None:
    async with rig() as r:
        r.fake.script(A, good(0.81, 0.7, cost=0.0004, prompt_tokens=500, completion_tokens=80))
        r.fake.script(B, fenced(0.3, confidence=0.55))
        r.fake.script(C, prose(0.62))
        r.fake.script(D, garbage())
        results = by_model(await r.ask(*(r.request(m) for m in MODELS)))
        rows = drain(r.store)
    assert (results[A].ok, results[A].outcome, results[A].probability, results[A].confidence) == (True, "Yes", 0.81, 0.7)
    assert (results[A].prompt_tokens, results[A].completion_tokens, results[A].cost_usd) == (500, 80, 0.0004)
    assert results[A].latency_ms is not None and results[A].market_price == 0.4 and results[A].created_at > 0
    assert results[B].ok and results[B].outcome == "No" and results[B].probability == 0.3
    assert results[C].ok and results[C].probability == 0.62
    assert not results[D].ok and results[D].error is not None and results[D].error.startswith("unparseable (no JSON")
    assert results[D].cost_usd == pytest.approx(0.00021), "an unusable answer still costs"
    assert len(rows) == 4 and all(isinstance(row, ModelForecastRow) for row in rows)
    row = next(row for row in rows if row.model == D)
    assert not row.ok and row.error == results[D].error and row.request_id == f"fc-4:{D}"
    # what went over the wire
    call = r.fake.calls_for(A)[0]
    assert call.path == "/api/v1/chat/completions" and call.method == "POST"
    assert call.headers["authorization"] == f"Bearer {DEFAULT_KEY}"
    assert call.headers["http-referer"] == "https://example.org"
    assert call.headers["x-title"] == "Polymarket Insights"
    assert call.body["max_tokens"] == 300 and call.body["temperature"] == 0.2 and call.structured
    assert call.body["messages"] == [{"role": "system", "content": "You forecast."},
                                     {"role": "user", "content": "Will X happen?"}]
    assert r.stats.calls_total == 4 and r.stats.forecasts_ok == 3 and r.stats.forecasts_failed == {"unparseable": 1}
    assert r.stats.prompt_tokens_total == 500 + 3 * 412 and r.stats.completion_tokens_total == 80 + 3 * 64
    assert math.isclose(r.stats.cost_today_usd, 0.0004 + 3 * 0.00021) and r.stats.cost_estimated_calls == 0
    assert r.stats.models[A].answers == 1 and r.stats.models[D].failures == {"unparseable": 1}


async def test_429_waits_for_retry_after(io_clock: trio.testing.MockClock) -> None:
    async with rig(models=(A, B)) as r:
        r.fake.script(A, rate_limited(retry_after=7), good(0.6))
        r.fake.script(B, rate_limited(retry_after=None, metadata={"retry_after_seconds": 11}), good(0.4))
        results = by_model(await r.ask(r.request(A), r.request(B)))
    a_calls, b_calls = r.fake.calls_for(A), r.fake.calls_for(B)
    assert [c.status for c in a_calls] == [429, 200] and results[A].ok
    assert 7.0 <= a_calls[1].at - a_calls[0].at < 7.5, "Retry-After header honoured"
    assert 11.0 <= b_calls[1].at - b_calls[0].at < 11.5, "metadata.retry_after_seconds honoured"
    assert r.stats.call_failures["rate_limited"] == 2 and r.stats.forecasts_ok == 2


async def test_5xx_retries_with_backoff_a_bounded_number_of_times(io_clock: trio.testing.MockClock) -> None:
    async with rig(models=(A, B)) as r:
        r.fake.script(A, *[server_error()] * 4)
        r.fake.script(B, server_error(503), error_in_body(), good(0.55))
        results = by_model(await r.ask(r.request(A), r.request(B)))
    a_calls = r.fake.calls_for(A)
    assert len(a_calls) == 4, "four attempts, then it gives up"
    gaps = [round(b.at - a.at, 1) for a, b in zip(a_calls, a_calls[1:])]
    assert gaps == [2.0, 4.0, 8.0], "exponential backoff (no jitter here)"
    assert not results[A].ok and results[A].error == "server_error (HTTP 500: Internal Server Error)"
    assert results[B].ok and len(r.fake.calls_for(B)) == 3
    assert r.stats.forecasts_failed == {"server_error": 1}
    assert r.stats.call_failures == {"server_error": 6}


async def test_a_slow_model_times_out_and_is_retried(io_clock: trio.testing.MockClock) -> None:
    async with rig(models=(A,)) as r:
        r.fake.script(A, slow(1000), good(0.7))
        (result,) = await r.ask(r.request(A))
    calls = r.fake.calls_for(A)
    assert result.ok and len(calls) == 2
    assert 62.0 <= calls[1].at - calls[0].at < 62.5, "the 60 s per-call timeout, then 2 s of backoff"
    assert r.stats.call_failures == {"timeout": 1}


async def test_nothing_is_tried_after_the_round_deadline(io_clock: trio.testing.MockClock) -> None:
    async with rig(models=(A, B)) as r:
        r.fake.script(A, slow(1000))
        r.fake.script(B, rate_limited(retry_after=100), good())
        results = by_model(await r.ask(r.request(A, deadline_in=30), r.request(B, deadline_in=30)))
        assert trio.current_time() < 35
    assert results[A].error == "deadline (no answer before the analysis closed)"
    assert results[B].error is not None and results[B].error.endswith("no time left to retry")
    assert len(r.fake.calls_for(B)) == 1 and r.fake.pending_script(B) == 1


async def test_a_bad_key_pauses_every_model_and_is_logged_once(io_clock: trio.testing.MockClock) -> None:
    secret = "sk-or-v1-wrong-key-abcdef123456"
    with capture_logs("DEBUG") as logs:
        async with rig(models=(A, B), key=secret, pause_seconds=600) as r:
            first = by_model(await r.ask(r.request(A), r.request(B)))
            calls_before = len(r.fake.calls)
            second = by_model(await r.ask(r.request(A), r.request(B)))
            assert len(r.fake.calls) == calls_before, "no calls while paused"
            r.fake.api_key = secret                      # the operator fixed the key
            await trio.sleep(601)
            third = by_model(await r.ask(r.request(A)))
    assert all(f.error is not None and f.error.startswith("unauthorized (HTTP 401") for f in first.values())
    assert all(f.error is not None and f.error.startswith("paused (every model paused: unauthorized")
               for f in second.values())
    assert third[A].ok
    refused = [rec for rec in logs if "API key was refused" in rec["message"]]
    assert len(refused) == 1 and "600" not in refused[0]["message"] and "10 min" in refused[0]["message"]
    text = " ".join(rec["message"] + repr(rec["extra"]) for rec in logs)
    assert secret not in text, "the key never appears in logs"
    assert r.stats.forecasts_failed == {"unauthorized": 2, "paused": 2}


async def test_no_credits_pauses_every_model(io_clock: trio.testing.MockClock) -> None:
    with capture_logs("ERROR") as logs:
        async with rig(models=(A, B)) as r:
            r.fake.script(A, no_credits())
            (result,) = await r.ask(r.request(A))
            (other,) = await r.ask(r.request(B))
    assert result.error is not None and result.error.startswith("no_credits (HTTP 402: Insufficient credits")
    assert other.error is not None and other.error.startswith("paused") and not r.fake.calls_for(B)
    assert [rec["message"] for rec in logs if "no credits left" in rec["message"]]


async def test_an_unknown_model_is_paused_alone(io_clock: trio.testing.MockClock) -> None:
    with capture_logs("ERROR") as logs:
        async with rig(models=(A, "nope/model"), pause_seconds=1800) as r:
            first = by_model(await r.ask(r.request("nope/model"), r.request(A)))
            second = by_model(await r.ask(r.request("nope/model"), r.request(A)))
            await trio.sleep(1801)
            third = by_model(await r.ask(r.request("nope/model")))
    assert first["nope/model"].error == "unknown_model (HTTP 404: No endpoints found for nope/model.)"
    assert second["nope/model"].error is not None and second["nope/model"].error.startswith("paused (model paused")
    assert first[A].ok and second[A].ok, "other models carry on"
    assert third["nope/model"].error is not None and third["nope/model"].error.startswith("unknown_model"), \
        "tried again after the cool-down"
    assert len(r.fake.calls_for("nope/model")) == 2
    assert sum("nope/model" in rec["message"] and "paused for 30 min" in rec["message"] for rec in logs) == 2


async def test_without_structured_output_support_it_asks_again_plainly(io_clock: trio.testing.MockClock) -> None:
    async with rig(models=(A,)) as r:
        r.fake.reject_structured.add(A)
        r.fake.script(A, fenced(0.66), good(0.4))
        (first,) = await r.ask(r.request(A))
        (second,) = await r.ask(r.request(A))
    assert first.ok and first.probability == 0.66 and second.ok
    assert [(c.structured, c.status) for c in r.fake.calls_for(A)] == [(True, 400), (False, 200), (False, 200)]
    assert r.stats.models[A].structured_output is False


async def test_cost_is_estimated_when_the_server_reports_none(io_clock: trio.testing.MockClock) -> None:
    async with rig(models=(A,)) as r:
        r.fake.script(A, Reply(cost=None, prompt_tokens=800, completion_tokens=200))
        (result,) = await r.ask(r.request(A))
    assert result.cost_usd == pytest.approx(1000 * 5.0 / 1e6)
    assert r.stats.cost_estimated_calls == 1 and r.stats.cost_today_usd == pytest.approx(0.005)


async def test_killing_a_predictor_mid_call_redoes_the_call(io_clock: trio.testing.MockClock) -> None:
    async with rig(models=(A,)) as r:
        r.fake.script(A, slow(30, 0.9), good(0.35))
        await r.inboxes[A].send_channel.send(r.request(A))
        with trio.fail_after(60):
            await r.fake.wait_calls(1, A)
        assert r.fake.in_flight == 1
        assert r.registry.kill("predictor-0", "chaos")
        with trio.fail_after(600):
            result = await r.results.receive()
        await trio.sleep(60)                       # the abandoned call's answer goes nowhere
        assert drain(r.results) == []
    assert result.ok and result.probability == 0.35, "the redelivered request was asked again"
    assert len(r.fake.calls_for(A)) == 2
    assert r.registry.find("predictor-0").incarnation == 2  # type: ignore[union-attr]
