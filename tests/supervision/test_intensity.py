"""Intensity: escalation (stop all in reverse, then raise), nesting, the sliding window."""

from __future__ import annotations

import trio

from supervision import (
    ActorState, Backoff, ChildSpec, Registry, Restart, SupervisorGaveUp, SupervisorSpec, run_supervisor,
    supervisor_child,
)

from ._util import Boom, EventLog, run_until_gave_up, scripted

NO_JITTER = Backoff(min=1, max=8, factor=2, jitter=0)


async def test_escalation_stops_every_child_in_reverse_order_before_raising(
        autojump_clock: trio.testing.MockClock) -> None:
    log = EventLog()
    registry = Registry()
    children = [
        ChildSpec(id="a", run=scripted(log), backoff=NO_JITTER),
        ChildSpec(id="b", run=scripted(log, crash_after={1: 1, 2: 1}), backoff=NO_JITTER),
        ChildSpec(id="c", run=scripted(log, stop_takes=2), backoff=NO_JITTER),
        ChildSpec(id="d", run=scripted(log, ignore_stop=True), shutdown=3, backoff=NO_JITTER),
    ]
    exc = await run_until_gave_up(SupervisorSpec(intensity=1, period=60), children, registry=registry)
    raised_at = trio.current_time()
    assert type(exc) is SupervisorGaveUp
    assert exc.child_id == "b"
    assert exc.restarts == 2
    assert isinstance(exc.__cause__, Boom) and str(exc.__cause__) == "b #2"
    # b: crash at 1, restart at 2, crash at 3 -> 2 restarts > intensity 1: stop d, c, a (reverse), then raise
    assert log.since(3) == [
        (3, "b", "crash"),
        (6, "d", "cancelled"),   # ignores the request: cancelled after its shutdown of 3 s
        (8, "c", "stop"),        # graceful, takes 2 s
        (8, "a", "stop"),
    ]
    assert raised_at == 8
    states = {i.path: i.state for i in registry}
    assert states == {"root": ActorState.FAILED, "root/a": ActorState.STOPPED, "root/b": ActorState.FAILED,
                      "root/c": ActorState.STOPPED, "root/d": ActorState.STOPPED}
    root = registry.get("root")
    assert root is not None and root.state is ActorState.FAILED
    assert root.last_error is not None and "gave up on child 'b'" in root.last_error


async def test_intensity_zero_gives_up_on_the_first_restart(autojump_clock: trio.testing.MockClock) -> None:
    log = EventLog()
    exc = await run_until_gave_up(SupervisorSpec(intensity=0, period=5),
                             [ChildSpec(id="w", run=scripted(log, crash_after={1: 2}), backoff=NO_JITTER)])
    assert exc.restarts == 1
    assert log.events == [(0, "w", "start"), (2, "w", "crash")]


async def test_sub_supervisor_that_gives_up_is_restarted_by_its_parent(autojump_clock: trio.testing.MockClock) -> None:
    log = EventLog()
    registry = Registry()
    sub = supervisor_child(
        "sub", SupervisorSpec(intensity=0, period=60),
        [ChildSpec(id="x", run=scripted(log)),
         ChildSpec(id="y", run=scripted(log, crash_after={1: 1}), backoff=NO_JITTER)],
        backoff=Backoff(min=2, max=8, jitter=0),
    )
    other = ChildSpec(id="other", run=scripted(log))
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: run_supervisor(SupervisorSpec(intensity=1, period=60), [sub, other],
                                                  registry=registry, stop=stop))
        await trio.sleep(10)
        info = registry.get("root/sub")
        assert info is not None
        assert info.is_supervisor
        assert (info.restarts, info.crashes, info.state) == (1, 1, ActorState.RUNNING)
        assert info.last_error is not None and info.last_error.startswith("SupervisorGaveUp: ")
        stop.set()
    assert log.events == [
        (0, "x", "start"), (0, "y", "start"), (0, "other", "start"),
        (1, "y", "crash"), (1, "x", "stop"),                   # sub gives up: stops x, then fails
        (3, "x", "start"), (3, "y", "start"),                  # root restarts sub after 2 s: one restart
        (10, "other", "stop"), (10, "y", "stop"), (10, "x", "stop"),  # reverse order, depth first
    ]


async def test_root_gives_up_when_its_sub_supervisor_keeps_giving_up(autojump_clock: trio.testing.MockClock) -> None:
    log = EventLog()
    sub = supervisor_child(
        "sub", SupervisorSpec(intensity=0, period=60),
        [ChildSpec(id="y", run=scripted(log, crash_after={1: 1, 2: 1}), backoff=NO_JITTER)],
        backoff=Backoff(min=2, max=8, jitter=0),
    )
    exc = await run_until_gave_up(SupervisorSpec(intensity=1, period=60), [sub])
    assert type(exc) is SupervisorGaveUp and exc.supervisor == "root" and exc.child_id == "sub"
    inner = exc.__cause__
    assert type(inner) is SupervisorGaveUp and inner.supervisor == "root/sub" and inner.child_id == "y"
    assert isinstance(inner.__cause__, Boom)
    # a fresh sub-supervisor (fresh window) each time: y crashes at 1, sub restarted at 3,
    # y's 2nd incarnation crashes at 4, sub gives up again -> root's 2nd restart > 1
    assert log.events == [(0, "y", "start"), (1, "y", "crash"), (3, "y", "start"), (4, "y", "crash")]
    assert trio.current_time() == 4


async def test_crashes_spaced_more_than_period_apart_never_escalate(autojump_clock: trio.testing.MockClock) -> None:
    log = EventLog()
    # each incarnation lives 10 s, the restart delay is 1 s: exits are 11 s apart, period is 10 s
    child = ChildSpec(id="w", run=scripted(log, crash_after={n: 10 for n in range(1, 31)}),
                      backoff=Backoff(min=1, max=1, jitter=0, reset_after=100))
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: run_supervisor(SupervisorSpec(intensity=1, period=10), [child], stop=stop))
        await trio.sleep(400)
        stop.set()
    assert log.times("w", "crash") == [10 + 11 * n for n in range(30)]
    assert log.times("w", "start")[-1] == 330
    assert log.events[-1] == (400, "w", "stop")


async def test_crashes_closer_than_period_escalate(autojump_clock: trio.testing.MockClock) -> None:
    log = EventLog()
    # lives 8 s, restarts after 1 s: exits 9 s apart inside a 10 s window
    child = ChildSpec(id="w", run=scripted(log, crash_after={n: 8 for n in range(1, 31)}),
                      backoff=Backoff(min=1, max=1, jitter=0, reset_after=100))
    await run_until_gave_up(SupervisorSpec(intensity=1, period=10), [child])
    assert log.times("w", "crash") == [8, 17]


async def test_window_includes_a_restart_exactly_period_ago(autojump_clock: trio.testing.MockClock) -> None:
    """OTP's ``add_restart`` keeps restarts with ``R >= Now - Period``."""
    log = EventLog()
    # lives 9 s, restarts after 1 s: exits exactly 10 s apart, period 10 s
    child = ChildSpec(id="w", run=scripted(log, crash_after={n: 9 for n in range(1, 31)}),
                      backoff=Backoff(min=1, max=1, jitter=0, reset_after=100))
    await run_until_gave_up(SupervisorSpec(intensity=1, period=10), [child])
    assert log.times("w", "crash") == [9, 19]


async def test_window_slides(autojump_clock: trio.testing.MockClock) -> None:
    """Old restarts leave the window: 3 quick crashes, a quiet spell, 3 quick crashes again."""
    log = EventLog()
    plan: dict[int, float] = {1: 0, 2: 0, 3: 30, 4: 0, 5: 0}
    child = ChildSpec(id="w", run=scripted(log, crash_after=plan),
                      backoff=Backoff(min=1, max=1, jitter=0, reset_after=100))
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: run_supervisor(SupervisorSpec(intensity=3, period=10), [child], stop=stop))
        await trio.sleep(100)
        stop.set()
    # exits at 0, 1, 32, 33, 34: never more than 3 inside any 10 s window
    assert log.times("w", "crash") == [0, 1, 32, 33, 34]
    assert log.events[-1] == (100, "w", "stop")


async def test_returns_of_permanent_children_count_towards_intensity(autojump_clock: trio.testing.MockClock) -> None:
    log = EventLog()
    child = ChildSpec(id="w", run=scripted(log, return_after={1: 1, 2: 1}), restart=Restart.PERMANENT,
                      backoff=NO_JITTER)
    exc = await run_until_gave_up(SupervisorSpec(intensity=1, period=60), [child])
    assert exc.__cause__ is None
    assert log.events == [(0, "w", "start"), (1, "w", "return"), (2, "w", "start"), (3, "w", "return")]


