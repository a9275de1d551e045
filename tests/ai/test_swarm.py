"""Swarm aggregation: consensus and confidence by hand, quorum and deadline under MockClock."""

from __future__ import annotations

import math
from typing import Any

import orjson
import pytest
import trio

from actors.ai import AiStats, ForecastRound, ModelForecast, SwarmState, aggregate, request_id_for, swarm_actor
from storage import SwarmForecastRow
from supervision import ChildSpec, Inbox

from ._helpers import cid, drain, running

MODELS = ("m/a", "m/b", "m/c")


def round_(models: tuple[str, ...] = MODELS, *, quorum: int = 2, deadline: float = 100.0, fid: str = "fc-1",
           outcomes: tuple[str, ...] = ("Yes", "No")) -> ForecastRound:
    return ForecastRound(forecast_id=fid, condition_id=cid("x"), title="Will X happen?", slug="x", event_slug="x-ev",
                         outcomes=outcomes, models=models, quorum=quorum, deadline=deadline, market_price=0.42,
                         price_shown=False, trigger="whale", opened_at=1_760_000_000.0)


def answer(model: str, p: float | None, c: float | None = None, *, fid: str = "fc-1", outcome: str | None = None,
           ok: bool = True, error: str | None = None) -> ModelForecast:
    vote = outcome if outcome is not None else ("" if p is None else ("Yes" if p >= 0.5 else "No"))
    return ModelForecast(request_id_for(fid, model), fid, cid("x"), model, ok=ok, outcome=vote, probability=p,
                         confidence=c, reasoning=f"{model} thinks so", error=error, market_price=0.42,
                         created_at=1_760_000_001.0)


# -- the formulas, checked by hand (README: "Confidence") --------------------------------------------


def test_unanimous_swarm() -> None:
    f = aggregate(round_(), [answer("m/a", 0.7, 0.6), answer("m/b", 0.8, 0.7), answer("m/c", 0.75, 0.8)])
    assert f is not None
    assert f.votes == {"Yes": 3, "No": 0} and f.outcome == "Yes"
    assert f.probability == pytest.approx(0.75) and f.probability_mean == pytest.approx(0.75)
    # spread = sqrt((0.05² + 0.05² + 0) / 3) = 0.040825; 1 × (1 − 0.081650) × median(0.6, 0.7, 0.8)
    assert f.spread == pytest.approx(0.0408248, abs=1e-6)
    assert f.confidence == pytest.approx(1 * 0.9183503 * 0.7, abs=1e-6)  # 0.642845


def test_two_against_one() -> None:
    f = aggregate(round_(), [answer("m/a", 0.8, 0.6), answer("m/b", 0.7, 0.7), answer("m/c", 0.3, 0.8)])
    assert f is not None
    assert f.votes == {"Yes": 2, "No": 1} and f.outcome == "Yes"
    assert f.probability == pytest.approx(0.7) and f.probability_mean == pytest.approx(0.6)
    # agreement 2/3; spread sqrt((0.2² + 0.1² + 0.3²)/3) = 0.216025; self-confidence 0.7
    assert f.agreement == pytest.approx(2 / 3) and f.spread == pytest.approx(0.2160247, abs=1e-6)
    assert f.confidence == pytest.approx(2 / 3 * 0.5679506 * 0.7, abs=1e-6)  # 0.265044


def test_a_tie_goes_to_the_side_of_the_median() -> None:
    f = aggregate(round_(("m/a", "m/b")), [answer("m/a", 0.9, 0.5), answer("m/b", 0.2, 0.5)])
    assert f is not None and f.votes == {"Yes": 1, "No": 1}
    assert f.probability == pytest.approx(0.55) and f.outcome == "Yes"
    assert f.confidence == pytest.approx(0.5 * (1 - 2 * 0.35) * 0.5)  # 0.075
    g = aggregate(round_(("m/a", "m/b")), [answer("m/a", 0.6), answer("m/b", 0.1)])  # no confidences: 0.5
    assert g is not None and g.probability == pytest.approx(0.35) and g.outcome == "No"
    assert g.self_confidence == 0.5 and g.confidence == pytest.approx(0.5 * 0.5 * 0.5)


def test_one_model_and_failures() -> None:
    f = aggregate(round_(), [answer("m/a", 0.3, 0.9), answer("m/b", None, ok=False, error="timeout"),
                             answer("m/c", None, ok=False, error="unparseable (no JSON object)")])
    assert f is not None and f.outcome == "No" and f.votes == {"Yes": 0, "No": 1}
    assert (f.probability, f.probability_mean, f.confidence) == (0.3, 0.3, 0.9)
    assert [a.model for a in f.answered] == ["m/a"] and [a.model for a in f.failed] == ["m/b", "m/c"]
    assert aggregate(round_(), [answer("m/b", None, ok=False, error="timeout")]) is None


def test_multi_outcome_votes_use_the_labels() -> None:
    r = round_(outcomes=("Over", "Under"))
    f = aggregate(r, [answer("m/a", 0.3, outcome="Under"), answer("m/b", 0.4, outcome="Under"),
                      answer("m/c", 0.6, outcome="Over")])
    assert f is not None and f.votes == {"Over": 1, "Under": 2} and f.outcome == "Under"


# -- the actor: quorum, deadline, redelivery -------------------------------------------------------


class Harness:
    def __init__(self) -> None:
        self.inbox: Inbox[Any] = Inbox("ai_swarm", 100)
        self.hub_send, self.hub = trio.open_memory_channel[Any](100)
        self.db_send, self.db = trio.open_memory_channel[Any](100)
        self.stats = AiStats(enabled=True)
        self.state = SwarmState()
        self.published_at: list[float] = []

    def child(self) -> ChildSpec:
        return ChildSpec(id="swarm", inbox=self.inbox, run=swarm_actor(
            self.state, self.stats, broadcast=self.hub_send, store=self.db_send, wall_clock=lambda: 1_760_000_500.0))

    async def send(self, *messages: Any) -> None:
        for message in messages:
            await self.inbox.send_channel.send(message)
        await trio.testing.wait_all_tasks_blocked()

    async def next_broadcast(self) -> Any:
        with trio.fail_after(1000):  # virtual time: fails instead of hanging
            message = await self.hub.receive()
        self.published_at.append(trio.current_time())
        return message


async def test_all_answers_publish_at_once(autojump_clock: trio.testing.MockClock) -> None:
    h = Harness()
    async with running([h.child()]):
        await h.send(round_(deadline=100.0))
        await trio.sleep(10)
        await h.send(answer("m/a", 0.8, 0.6), answer("m/b", 0.7, 0.7), answer("m/c", 0.3, 0.8))
        message = await h.next_broadcast()
    assert h.published_at == [10.0], "no waiting for the deadline once everyone reported"
    assert message.type == "prediction" and message.key == "prediction:fc-1" and message.market == cid("x")
    data = message.data
    for field in ("condition_id", "title", "outcome", "probability", "confidence", "votes", "models", "market_price",
                  "timestamp"):
        assert field in data, field
    assert data["outcome"] == "Yes" and data["probability"] == 0.7 and data["confidence"] == 0.265
    assert data["votes"] == {"Yes": 2, "No": 1} and data["market_price"] == 0.42
    assert data["models"][0] == {"model": "m/a", "outcome": "Yes", "probability": 0.8, "confidence": 0.6,
                                 "reasoning": "m/a thinks so"}
    assert data["timestamp"] == "2025-10-09T09:01:40Z" and data["models_failed"] == []
    rows = drain(h.db)
    assert len(rows) == 1 and isinstance(rows[0], SwarmForecastRow)
    row = rows[0]
    assert (row.forecast_id, row.outcome, row.models_ok, row.models_failed) == ("fc-1", "Yes", 3, 0)
    assert orjson.loads(row.votes) == {"Yes": 2, "No": 1} and row.market_price == 0.42
    assert math.isclose(row.probability_mean or 0, 0.6) and h.stats.rounds_published == 1


async def test_quorum_publishes_at_the_deadline(autojump_clock: trio.testing.MockClock) -> None:
    h = Harness()
    async with running([h.child()]):
        await h.send(round_(deadline=100.0))
        await trio.sleep(5)
        await h.send(answer("m/a", 0.8, 0.6), answer("m/b", None, ok=False, error="server_error (HTTP 500)"))
        await trio.sleep(5)
        await h.send(answer("m/c", 0.6, 0.6))  # ok=2 now, but m/b failed and everyone reported: publish
        message = await h.next_broadcast()
        assert h.published_at == [10.0]
        await h.send(round_(deadline=200.0, fid="fc-2"), answer("m/a", 0.4, 0.5, fid="fc-2"),
                     answer("m/c", 0.2, 0.5, fid="fc-2"))
        second = await h.next_broadcast()
    assert message.data["models_failed"] == [{"model": "m/b", "error": "server_error (HTTP 500)"}]
    assert h.published_at[1] == 200.0, "two of three answered: wait for the third until the deadline"
    assert second.data["outcome"] == "No" and second.data["probability"] == pytest.approx(0.3)
    assert second.data["models_failed"] == [{"model": "m/b", "error": "deadline (no answer before the analysis closed)"}]
    rows = drain(h.db)
    assert [(r.forecast_id, r.models_ok, r.models_failed) for r in rows] == [("fc-1", 2, 1), ("fc-2", 2, 1)]


async def test_below_quorum_nothing_is_published(autojump_clock: trio.testing.MockClock) -> None:
    h = Harness()
    async with running([h.child()]):
        await h.send(round_(deadline=50.0), answer("m/a", 0.8, 0.6))
        await trio.sleep(49)
        assert h.stats.rounds_no_quorum == 0
        await trio.sleep(2)
        assert h.stats.rounds_no_quorum == 1 and drain(h.hub) == [] and drain(h.db) == []
        await h.send(answer("m/b", 0.7, 0.7))       # too late
        assert h.stats.late_answers == 1 and drain(h.hub) == []
        assert "fc-1" in h.state.closed and not h.state.open


async def test_redelivered_messages_and_restarts_change_nothing(autojump_clock: trio.testing.MockClock) -> None:
    h = Harness()
    async with running([h.child()]) as registry:
        await h.send(round_(deadline=100.0), round_(deadline=100.0), answer("m/a", 0.8, 0.6), answer("m/a", 0.1, 0.1))
        assert len(h.state.open["fc-1"].answers) == 1, "one answer per model: a repeat is ignored"
        assert registry.kill("swarm", "chaos")
        await trio.sleep(1)                                    # backoff, restart; the open round is kept
        assert registry.find("swarm").incarnation == 2       # type: ignore[union-attr]
        await h.send(answer("m/b", 0.7, 0.7))
        message = await h.next_broadcast()
    assert h.published_at == [100.0] and message.data["probability"] == pytest.approx(0.75)
    assert message.data["votes"] == {"Yes": 2, "No": 0}
