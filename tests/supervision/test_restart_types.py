"""Restart types: TEMPORARY never, TRANSIENT only after a crash, PERMANENT always."""

from __future__ import annotations

import trio

from supervision import ActorState, Backoff, ChildSpec, Registry, Restart, Strategy, SupervisorSpec, run_supervisor

from ._util import EventLog, run_until_gave_up, scripted

NO_JITTER = Backoff(min=1, max=8, factor=2, jitter=0)


async def run_for(seconds: float, spec: SupervisorSpec, children: list[ChildSpec], registry: Registry) -> None:
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: run_supervisor(spec, children, registry=registry, stop=stop))
        await trio.sleep(seconds)
        stop.set()


async def test_temporary_is_never_restarted_and_does_not_count(autojump_clock: trio.testing.MockClock) -> None:
    log = EventLog()
    registry = Registry()
    children = [
        ChildSpec(id="crasher", run=scripted(log, crash_after={1: 1}), restart=Restart.TEMPORARY, backoff=NO_JITTER),
        ChildSpec(id="quitter", run=scripted(log, return_after={1: 2}), restart=Restart.TEMPORARY, backoff=NO_JITTER),
        ChildSpec(id="other", run=scripted(log), backoff=NO_JITTER),
    ]
    # intensity 0: a counted restart would make the supervisor give up
    await run_for(10, SupervisorSpec(intensity=0, period=60), children, registry)
    assert log.events == [
        (0, "crasher", "start"), (0, "quitter", "start"), (0, "other", "start"),
        (1, "crasher", "crash"), (2, "quitter", "return"),
        (10, "other", "stop"),
    ]
    crasher, quitter = registry.get("root/crasher"), registry.get("root/quitter")
    assert crasher is not None and quitter is not None
    assert (crasher.state, crasher.restarts, crasher.crashes) == (ActorState.FAILED, 0, 1)
    assert (quitter.state, quitter.restarts, quitter.crashes) == (ActorState.STOPPED, 0, 0)


async def test_temporary_stopped_by_one_for_all_is_not_restarted(autojump_clock: trio.testing.MockClock) -> None:
    log = EventLog()
    registry = Registry()
    children = [
        ChildSpec(id="perm", run=scripted(log), backoff=NO_JITTER),
        ChildSpec(id="temp", run=scripted(log), restart=Restart.TEMPORARY, backoff=NO_JITTER),
        ChildSpec(id="flaky", run=scripted(log, crash_after={1: 2, 2: 3}), backoff=NO_JITTER),
    ]
    await run_for(20, SupervisorSpec(strategy=Strategy.ONE_FOR_ALL, intensity=5, period=60), children, registry)
    assert log.events == [
        (0, "perm", "start"), (0, "temp", "start"), (0, "flaky", "start"),
        (2, "flaky", "crash"), (2, "temp", "stop"), (2, "perm", "stop"),
        (3, "perm", "start"), (3, "flaky", "start"),             # temp is gone for good
        (6, "flaky", "crash"), (6, "perm", "stop"),
        (8, "perm", "start"), (8, "flaky", "start"),
        (20, "flaky", "stop"), (20, "perm", "stop"),
    ]
    temp = registry.get("root/temp")
    assert temp is not None and (temp.state, temp.restarts, temp.incarnation) == (ActorState.STOPPED, 0, 1)


async def test_temporary_stopped_by_rest_for_one_is_not_restarted(autojump_clock: trio.testing.MockClock) -> None:
    log = EventLog()
    children = [
        ChildSpec(id="flaky", run=scripted(log, crash_after={1: 2}), backoff=NO_JITTER),
        ChildSpec(id="temp", run=scripted(log), restart=Restart.TEMPORARY, backoff=NO_JITTER),
        ChildSpec(id="trans", run=scripted(log), restart=Restart.TRANSIENT, backoff=NO_JITTER),
    ]
    await run_for(10, SupervisorSpec(strategy=Strategy.REST_FOR_ONE, intensity=5, period=60), children, Registry())
    assert log.events == [
        (0, "flaky", "start"), (0, "temp", "start"), (0, "trans", "start"),
        (2, "flaky", "crash"), (2, "trans", "stop"), (2, "temp", "stop"),
        (3, "flaky", "start"), (3, "trans", "start"),           # a transient sibling is restarted
        (10, "trans", "stop"), (10, "flaky", "stop"),
    ]


async def test_transient_normal_return_is_final(autojump_clock: trio.testing.MockClock) -> None:
    log = EventLog()
    registry = Registry()
    children = [ChildSpec(id="t", run=scripted(log, return_after={1: 1}), restart=Restart.TRANSIENT,
                          backoff=NO_JITTER)]
    await run_for(10, SupervisorSpec(intensity=0, period=60), children, registry)
    assert log.events == [(0, "t", "start"), (1, "t", "return")]
    info = registry.get("root/t")
    assert info is not None and (info.state, info.restarts) == (ActorState.STOPPED, 0)


async def test_transient_is_restarted_after_a_crash(autojump_clock: trio.testing.MockClock) -> None:
    log = EventLog()
    registry = Registry()
    children = [ChildSpec(id="t", run=scripted(log, crash_after={1: 1}, return_after={2: 1}),
                          restart=Restart.TRANSIENT, backoff=NO_JITTER)]
    await run_for(10, SupervisorSpec(intensity=1, period=60), children, registry)
    assert log.events == [(0, "t", "start"), (1, "t", "crash"), (2, "t", "start"), (3, "t", "return")]
    info = registry.get("root/t")
    assert info is not None and (info.state, info.restarts, info.crashes) == (ActorState.STOPPED, 1, 1)


async def test_transient_crash_counts_towards_intensity(autojump_clock: trio.testing.MockClock) -> None:
    log = EventLog()
    children = [ChildSpec(id="t", run=scripted(log, crash_after={1: 1}), restart=Restart.TRANSIENT,
                          backoff=NO_JITTER)]
    exc = await run_until_gave_up(SupervisorSpec(intensity=0, period=60), children)
    assert exc.child_id == "t"


async def test_permanent_is_restarted_after_a_normal_return(autojump_clock: trio.testing.MockClock) -> None:
    log = EventLog()
    registry = Registry()
    children = [ChildSpec(id="p", run=scripted(log, return_after={1: 1, 2: 1}), backoff=NO_JITTER)]
    await run_for(10, SupervisorSpec(intensity=2, period=60), children, registry)
    assert log.events == [
        (0, "p", "start"), (1, "p", "return"), (2, "p", "start"), (3, "p", "return"), (5, "p", "start"),
        (10, "p", "stop"),
    ]
    info = registry.get("root/p")
    assert info is not None and (info.restarts, info.crashes, info.last_error) == (2, 0, None)
