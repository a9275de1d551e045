"""Start order and readiness: list order, each after the previous reported ready; failed
initial starts; start_timeout."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from supervision import (
    ActorState, Backoff, ChildSpec, Registry, SupervisorGaveUp, SupervisorSpec, run_supervisor, supervisor_child,
)

from ._util import Boom, EventLog, run_until_gave_up, scripted

NO_JITTER = Backoff(min=1, max=8, factor=2, jitter=0)


def raises_before_ready(log: EventLog, error: BaseException, after: float = 0) -> Any:
    async def run(ctx: Any, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        log.add(ctx, "begin")
        await trio.sleep(after)
        raise error

    return run


def never_ready(log: EventLog) -> Any:
    async def run(ctx: Any, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        log.add(ctx, "begin")
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            log.add(ctx, "cancelled")
            raise

    return run


async def test_children_start_in_order_each_after_the_previous_is_ready(
        autojump_clock: trio.testing.MockClock) -> None:
    log = EventLog()
    registry = Registry()
    children = [
        ChildSpec(id="a", run=scripted(log, ready_after=1)),
        ChildSpec(id="b", run=scripted(log, ready_after=2)),
        ChildSpec(id="c", run=scripted(log)),
    ]
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(lambda task_status: run_supervisor(SupervisorSpec(), children, registry=registry,
                                                               stop=stop, task_status=task_status))
        # run_supervisor reports ready once every child is ready
        assert trio.current_time() == 3
        assert {i.path: i.state for i in registry} == {
            "root": ActorState.RUNNING, "root/a": ActorState.RUNNING, "root/b": ActorState.RUNNING,
            "root/c": ActorState.RUNNING}
        stop.set()
    assert log.events[:3] == [(1, "a", "start"), (3, "b", "start"), (3, "c", "start")]
    assert registry.get("root").state is ActorState.STOPPED  # type: ignore[union-attr]


async def test_next_child_is_not_started_before_the_previous_is_ready(autojump_clock: trio.testing.MockClock) -> None:
    seq: list[str] = []

    async def slow(ctx: Any, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        seq.append("slow: begin")
        await trio.sleep(5)
        seq.append("slow: ready")
        task_status.started()
        await trio.sleep_forever()

    async def fast(ctx: Any, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        seq.append(f"fast: begin at {trio.current_time()}")
        task_status.started()
        await trio.sleep_forever()

    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: run_supervisor(SupervisorSpec(), [ChildSpec(id="slow", run=slow),
                                                                     ChildSpec(id="fast", run=fast)], stop=stop))
        await trio.sleep(10)
        stop.set()
    assert seq == ["slow: begin", "slow: ready", "fast: begin at 5.0"]


async def test_child_raising_before_ready_fails_the_initial_start(autojump_clock: trio.testing.MockClock) -> None:
    log = EventLog()
    registry = Registry()
    error = Boom("cannot bind")
    children = [
        ChildSpec(id="a", run=scripted(log)),
        ChildSpec(id="b", run=scripted(log, stop_takes=1)),
        ChildSpec(id="bad", run=raises_before_ready(log, error, after=2), backoff=NO_JITTER),
        ChildSpec(id="never", run=scripted(log)),
    ]
    # even a generous intensity does not retry an initial start
    exc = await run_until_gave_up(SupervisorSpec(intensity=100, period=1), children, registry=registry)
    assert type(exc) is SupervisorGaveUp
    assert exc.child_id == "bad" and exc.restarts == 0
    assert exc.__cause__ is error
    assert log.events == [
        (0, "a", "start"), (0, "b", "start"), (0, "bad", "begin"),
        (3, "b", "stop"), (3, "a", "stop"),   # already started siblings stopped in reverse order
    ]
    assert {i.path: i.state for i in registry} == {
        "root": ActorState.FAILED, "root/a": ActorState.STOPPED, "root/b": ActorState.STOPPED,
        "root/bad": ActorState.FAILED, "root/never": ActorState.STOPPED}
    assert registry.get("root/bad").restarts == 0  # type: ignore[union-attr]
    assert registry.get("root").state is ActorState.FAILED  # type: ignore[union-attr]


async def test_start_timeout_fails_the_initial_start(autojump_clock: trio.testing.MockClock) -> None:
    log = EventLog()
    children = [
        ChildSpec(id="a", run=scripted(log)),
        ChildSpec(id="stuck", run=never_ready(log), start_timeout=7),
    ]
    exc = await run_until_gave_up(SupervisorSpec(), children)
    assert exc.child_id == "stuck"
    assert isinstance(exc.__cause__, TimeoutError)
    assert log.events == [(0, "a", "start"), (0, "stuck", "begin"), (7, "stuck", "cancelled"), (7, "a", "stop")]


async def test_no_start_timeout_waits_for_readiness(autojump_clock: trio.testing.MockClock) -> None:
    log = EventLog()
    children = [ChildSpec(id="slow", run=scripted(log, ready_after=10_000), start_timeout=None)]
    started: list[float] = []
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(lambda task_status: run_supervisor(SupervisorSpec(), children, stop=stop,
                                                               task_status=task_status))
        started.append(trio.current_time())
        stop.set()
    assert started == [10_000]


async def test_failure_before_ready_on_a_restart_is_an_ordinary_failure(
        autojump_clock: trio.testing.MockClock) -> None:
    log = EventLog()
    runs = 0

    async def flaky(ctx: Any, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        nonlocal runs
        runs += 1
        log.add(ctx, "begin")
        if runs == 2:
            raise Boom("second start fails")
        if runs == 3:
            await trio.sleep_forever()  # never ready: start_timeout
        task_status.started()
        if runs == 1:
            raise Boom("first run crashes")
        await trio.sleep_forever()

    registry = Registry()
    child = ChildSpec(id="w", run=flaky, backoff=NO_JITTER, start_timeout=3)
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: run_supervisor(SupervisorSpec(intensity=3, period=60), [child],
                                                  registry=registry, stop=stop))
        await trio.sleep(20)
        info = registry.get("root/w")
        assert info is not None
        assert (info.state, info.incarnation, info.restarts, info.crashes) == (ActorState.RUNNING, 4, 3, 3)
        assert info.last_error == "TimeoutError: not ready within 3 s"
        stop.set()
    # crash at 0 -> +1; fails to start at 1 -> +2; start times out at 3 + 3 = 6 -> +4
    assert log.times("w", "begin") == [0, 1, 3, 10]


async def test_supervisor_without_children_runs_until_stopped(autojump_clock: trio.testing.MockClock) -> None:
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(lambda task_status: run_supervisor(SupervisorSpec(), [], stop=stop,
                                                               task_status=task_status))
        assert trio.current_time() == 0
        await trio.sleep(5)
        stop.set()
    assert trio.current_time() == 5


def test_duplicate_child_ids_are_rejected() -> None:
    log = EventLog()
    with pytest.raises(ValueError, match="duplicate"):
        trio.run(run_supervisor, SupervisorSpec(), [ChildSpec(id="x", run=scripted(log)),
                                                    ChildSpec(id="x", run=scripted(log))])


async def test_sub_supervisor_failing_to_start_fails_its_parents_start(autojump_clock: trio.testing.MockClock) -> None:
    log = EventLog()
    error = Boom("no database")
    sub = supervisor_child("db", SupervisorSpec(), [
        ChildSpec(id="pool", run=scripted(log)),
        ChildSpec(id="writer", run=raises_before_ready(log, error, after=1)),
    ])
    children = [ChildSpec(id="first", run=scripted(log)), sub, ChildSpec(id="never", run=scripted(log))]
    exc = await run_until_gave_up(SupervisorSpec(intensity=10), children)
    assert exc.supervisor == "root" and exc.child_id == "db"
    inner = exc.__cause__
    assert type(inner) is SupervisorGaveUp and inner.supervisor == "root/db" and inner.child_id == "writer"
    assert inner.__cause__ is error
    assert log.events == [(0, "first", "start"), (0, "pool", "start"), (0, "writer", "begin"),
                          (1, "pool", "stop"), (1, "first", "stop")]


async def test_context_of_an_incarnation(autojump_clock: trio.testing.MockClock) -> None:
    seen: list[tuple[str, str, int, bool, Any]] = []
    registry = Registry()

    async def actor(ctx: Any, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        seen.append((ctx.path, ctx.name, ctx.incarnation, ctx.info is registry.get(ctx.path), ctx.inbox))
        task_status.started()
        if ctx.incarnation == 1:
            raise Boom("once")
        await trio.sleep_forever()

    sub = supervisor_child("sub", SupervisorSpec(), [ChildSpec(id="leaf", run=actor, backoff=NO_JITTER)])
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: run_supervisor(SupervisorSpec(), [sub], registry=registry, stop=stop,
                                                  path="svc"))
        await trio.sleep(5)
        stop.set()
    assert seen == [("svc/sub/leaf", "leaf", 1, True, None), ("svc/sub/leaf", "leaf", 2, True, None)]
