"""Backoff: exact restart times under MockClock, the cap, jitter bounds, reset_after, log lines."""

from __future__ import annotations

import random
from typing import Any

import pytest
import trio

from supervision import Backoff, ChildSpec, Registry, SupervisorGaveUp, SupervisorSpec, run_supervisor

from ._util import Boom, EventLog, scripted


def crash_loop(starts: list[float], errors: list[BaseException], *, healthy_from: int | None = None) -> Any:
    """An actor that crashes right after reporting ready, until incarnation ``healthy_from``."""

    async def run(ctx: Any, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        starts.append(trio.current_time())
        task_status.started()
        if healthy_from is not None and ctx.incarnation >= healthy_from:
            await trio.sleep_forever()
        error = Boom(f"boom #{ctx.incarnation}")
        errors.append(error)
        raise error

    return run


async def test_exact_restart_times_then_gives_up(autojump_clock: trio.testing.MockClock,
                                                 log_records: list[dict[str, Any]]) -> None:
    starts: list[float] = []
    errors: list[BaseException] = []
    child = ChildSpec(id="flaky", run=crash_loop(starts, errors),
                      backoff=Backoff(min=1, max=8, factor=2, jitter=0))

    with pytest.raises(SupervisorGaveUp) as caught:
        await run_supervisor(SupervisorSpec(intensity=4, period=60), [child])

    exc = caught.value
    assert type(exc) is SupervisorGaveUp
    assert not isinstance(exc, BaseExceptionGroup)
    assert starts == [0, 1, 3, 7, 15]
    assert trio.current_time() == 15
    assert exc.child_id == "flaky"
    assert exc.supervisor == "root"
    assert exc.restarts == 5
    assert len(errors) == 5
    assert exc.__cause__ is errors[-1]

    # one error line with a traceback per crash, one info line per restart with its delay
    crash_lines = [r for r in log_records if r["level"].name == "ERROR" and "crashed" in r["message"]]
    assert [r["exception"].value for r in crash_lines] == errors
    assert all(r["exception"].traceback is not None for r in crash_lines)
    assert all(r["extra"]["actor"] == "root" and r["extra"]["child"] == "flaky" for r in crash_lines)
    assert [r["extra"]["incarnation"] for r in crash_lines] == [1, 2, 3, 4, 5]
    restart_lines = [r["message"] for r in log_records if r["level"].name == "INFO" and "restarting" in r["message"]]
    assert restart_lines == [f"restarting ['flaky'] in {d:.3f} s" for d in (1, 2, 4, 8)]
    give_up = [r for r in log_records if "gives up" in r["message"]]
    assert len(give_up) == 1 and give_up[0]["level"].name == "ERROR"


async def test_delay_is_capped_at_max(autojump_clock: trio.testing.MockClock) -> None:
    starts: list[float] = []
    errors: list[BaseException] = []
    registry = Registry()
    child = ChildSpec(id="flaky", run=crash_loop(starts, errors, healthy_from=8),
                      backoff=Backoff(min=1, max=8, factor=2, jitter=0))
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: run_supervisor(SupervisorSpec(intensity=100, period=60), [child],
                                                  registry=registry, stop=stop))
        await trio.sleep(200)
        stop.set()
    assert [b - a for a, b in zip(starts, starts[1:], strict=False)] == [1, 2, 4, 8, 8, 8, 8]
    info = registry.get("root/flaky")
    assert info is not None and info.restarts == 7 and info.crashes == 7 and info.incarnation == 8


async def test_jitter_stays_within_bounds_and_uses_the_injected_rng(autojump_clock: trio.testing.MockClock) -> None:
    jitter = 0.5
    backoff = Backoff(min=1, max=8, factor=2, jitter=jitter)

    async def one_run(seed: int) -> list[float]:
        starts: list[float] = []
        child = ChildSpec(id="flaky", run=crash_loop(starts, [], healthy_from=9), backoff=backoff)
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: run_supervisor(SupervisorSpec(intensity=100, period=60), [child],
                                                      rng=random.Random(seed), stop=stop))
            await trio.sleep(300)
            stop.set()
        return [b - a for a, b in zip(starts, starts[1:], strict=False)]

    delays = await one_run(1234)
    bases = [1, 2, 4, 8, 8, 8, 8, 8]
    assert len(delays) == len(bases)
    for delay, base in zip(delays, bases, strict=True):
        assert base <= delay <= base * (1 + jitter) + 1e-9
    assert any(delay > base for delay, base in zip(delays, bases, strict=True))  # jitter is applied
    # exactly one rng draw per restart, in order
    rng = random.Random(1234)
    assert delays == pytest.approx([b * (1 + rng.uniform(0, jitter)) for b in bases])
    assert await one_run(1234) == pytest.approx(delays)
    assert await one_run(99) != pytest.approx(delays)


def test_backoff_delay_formula() -> None:
    rng = random.Random(0)
    b = Backoff(min=0.5, max=30, factor=3, jitter=0)
    assert [b.delay(n, rng) for n in range(6)] == [0.5, 1.5, 4.5, 13.5, 30, 30]
    assert b.delay(10_000, rng) == 30  # no overflow on long streaks
    assert Backoff(min=1, max=9).effective_reset_after == 5
    assert Backoff(min=1, max=9, reset_after=2).effective_reset_after == 2
    for bad in (dict(min=-1), dict(max=-1), dict(jitter=-0.1), dict(factor=0.5)):
        with pytest.raises(ValueError):
            Backoff(**bad)  # type: ignore[arg-type]


async def test_reset_after_a_long_life_restarts_at_min_again(autojump_clock: trio.testing.MockClock) -> None:
    log = EventLog()
    # lifetimes per incarnation: 0, 0, 0, 5 (= reset_after: resets), 0, 4 (< reset_after: keeps growing), 0
    lifetimes = {1: 0, 2: 0, 3: 0, 4: 5, 5: 0, 6: 4, 7: 0}
    child = ChildSpec(id="w", run=scripted(log, crash_after=lifetimes),
                      backoff=Backoff(min=1, max=8, factor=2, jitter=0, reset_after=5))
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: run_supervisor(SupervisorSpec(intensity=100, period=60), [child], stop=stop))
        await trio.sleep(100)
        stop.set()
    # 0 +1 1 +2 3 +4 7 (lives 5) 12 +1 13 +2 15 (lives 4) 19 +4 23 +8 31
    assert log.times("w", "start") == [0, 1, 3, 7, 13, 15, 23, 31]
    assert log.times("w", "crash") == [0, 1, 3, 12, 13, 19, 23]


async def test_default_reset_after_is_mid_of_min_and_max(autojump_clock: trio.testing.MockClock) -> None:
    log = EventLog()
    # default reset_after = (1 + 9) / 2 = 5: a life of 4.5 keeps the streak, a life of 5 resets it
    lifetimes = {1: 0, 2: 0, 3: 4.5, 4: 5}
    child = ChildSpec(id="w", run=scripted(log, crash_after=lifetimes),
                      backoff=Backoff(min=1, max=9, factor=2, jitter=0))
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: run_supervisor(SupervisorSpec(intensity=100, period=60), [child], stop=stop))
        await trio.sleep(100)
        stop.set()
    # 0 +1 1 +2 3 (4.5) 7.5 +4 11.5 (5) 16.5 +1 17.5
    assert log.times("w", "start") == [0, 1, 3, 11.5, 17.5]
