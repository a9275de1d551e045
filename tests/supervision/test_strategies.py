"""Strategies: which siblings are stopped (reverse order) and restarted (start order), and
how many restarts one exit counts."""

from __future__ import annotations

import trio

from supervision import ActorState, Backoff, ChildSpec, Registry, Strategy, SupervisorSpec, run_supervisor

from ._util import EventLog, run_until_gave_up, scripted

NO_JITTER = Backoff(min=1, max=8, factor=2, jitter=0)


async def run_for(seconds: float, spec: SupervisorSpec, children: list[ChildSpec],
                  registry: Registry | None = None) -> None:
    """Run a root supervisor for ``seconds`` of virtual time, then stop it."""
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: run_supervisor(spec, children, registry=registry, stop=stop))
        await trio.sleep(seconds)
        stop.set()


def abc(log: EventLog, crashing: str, crash_after: dict[int, float], **kwargs: object) -> list[ChildSpec]:
    return [ChildSpec(id=name, run=scripted(log, crash_after=crash_after if name == crashing else None),
                      backoff=NO_JITTER, **kwargs)  # type: ignore[arg-type]
            for name in "abc"]


START = [(0, "a", "start"), (0, "b", "start"), (0, "c", "start")]
STOP_AT_10 = [(10, "c", "stop"), (10, "b", "stop"), (10, "a", "stop")]


async def test_one_for_one_restarts_only_the_dead_child(autojump_clock: trio.testing.MockClock) -> None:
    log = EventLog()
    registry = Registry()
    await run_for(10, SupervisorSpec(strategy=Strategy.ONE_FOR_ONE, intensity=1, period=60),
                  abc(log, "b", {1: 5}), registry)
    assert log.events == [*START, (5, "b", "crash"), (6, "b", "start"), *STOP_AT_10]
    assert [registry.get(f"root/{n}").restarts for n in "abc"] == [0, 1, 0]  # type: ignore[union-attr]


async def test_one_for_all_stops_others_in_reverse_and_restarts_all_in_order(
        autojump_clock: trio.testing.MockClock) -> None:
    log = EventLog()
    registry = Registry()
    # intensity 1: the whole group restart counts as ONE restart, so this does not escalate
    await run_for(10, SupervisorSpec(strategy=Strategy.ONE_FOR_ALL, intensity=1, period=60),
                  abc(log, "b", {1: 5}), registry)
    assert log.events == [
        *START,
        (5, "b", "crash"), (5, "c", "stop"), (5, "a", "stop"),
        (6, "a", "start"), (6, "b", "start"), (6, "c", "start"),
        *STOP_AT_10,
    ]
    assert [registry.get(f"root/{n}").restarts for n in "abc"] == [1, 1, 1]  # type: ignore[union-attr]
    assert [registry.get(f"root/{n}").incarnation for n in "abc"] == [2, 2, 2]  # type: ignore[union-attr]


async def test_one_for_all_counts_one_restart_per_group(autojump_clock: trio.testing.MockClock) -> None:
    log = EventLog()
    exc = await run_until_gave_up(SupervisorSpec(strategy=Strategy.ONE_FOR_ALL, intensity=1, period=60),
                                  abc(log, "c", {1: 5, 2: 5}))
    assert exc.restarts == 2 and exc.child_id == "c"
    assert log.events == [
        *START,
        (5, "c", "crash"), (5, "b", "stop"), (5, "a", "stop"),
        (6, "a", "start"), (6, "b", "start"), (6, "c", "start"),
        (11, "c", "crash"), (11, "b", "stop"), (11, "a", "stop"),  # gives up: stops the rest, reverse
    ]


async def test_one_for_all_restarts_wait_for_readiness_in_start_order(autojump_clock: trio.testing.MockClock) -> None:
    log = EventLog()
    children = [
        ChildSpec(id="a", run=scripted(log, ready_after=2), backoff=NO_JITTER),
        ChildSpec(id="b", run=scripted(log, ready_after=1), backoff=NO_JITTER),
        ChildSpec(id="c", run=scripted(log, crash_after={1: 1}), backoff=NO_JITTER),
    ]
    await run_for(20, SupervisorSpec(strategy=Strategy.ONE_FOR_ALL, intensity=1, period=60), children)
    assert log.events == [
        (2, "a", "start"), (3, "b", "start"), (3, "c", "start"),
        (4, "c", "crash"), (4, "b", "stop"), (4, "a", "stop"),
        (7, "a", "start"), (8, "b", "start"), (8, "c", "start"),  # delay 1, then a ready after 2, b after 1
        (20, "c", "stop"), (20, "b", "stop"), (20, "a", "stop"),
    ]


async def test_rest_for_one_restarts_the_dead_child_and_later_siblings(autojump_clock: trio.testing.MockClock) -> None:
    log = EventLog()
    registry = Registry()
    await run_for(10, SupervisorSpec(strategy=Strategy.REST_FOR_ONE, intensity=1, period=60),
                  abc(log, "b", {1: 5}), registry)
    assert log.events == [
        *START,
        (5, "b", "crash"), (5, "c", "stop"),
        (6, "b", "start"), (6, "c", "start"),
        *STOP_AT_10,
    ]
    assert [registry.get(f"root/{n}").restarts for n in "abc"] == [0, 1, 1]  # type: ignore[union-attr]


async def test_rest_for_one_first_child_restarts_everyone(autojump_clock: trio.testing.MockClock) -> None:
    log = EventLog()
    await run_for(10, SupervisorSpec(strategy=Strategy.REST_FOR_ONE, intensity=1, period=60),
                  abc(log, "a", {1: 5}))
    assert log.events == [
        *START,
        (5, "a", "crash"), (5, "c", "stop"), (5, "b", "stop"),
        (6, "a", "start"), (6, "b", "start"), (6, "c", "start"),
        *STOP_AT_10,
    ]


async def test_rest_for_one_last_child_restarts_alone(autojump_clock: trio.testing.MockClock) -> None:
    log = EventLog()
    await run_for(10, SupervisorSpec(strategy=Strategy.REST_FOR_ONE, intensity=1, period=60),
                  abc(log, "c", {1: 5}))
    assert log.events == [*START, (5, "c", "crash"), (6, "c", "start"), *STOP_AT_10]


async def test_group_stop_uses_each_childs_shutdown(autojump_clock: trio.testing.MockClock) -> None:
    """Siblings stopped by a strategy get the graceful request, then are cancelled after
    their shutdown, one after the other in reverse order; the restart delay runs after."""
    log = EventLog()
    registry = Registry()
    children = [
        ChildSpec(id="a", run=scripted(log, ignore_stop=True), shutdown=2, backoff=NO_JITTER),
        ChildSpec(id="b", run=scripted(log, crash_after={1: 5}), backoff=NO_JITTER),
        ChildSpec(id="c", run=scripted(log, stop_takes=1.5), backoff=NO_JITTER),
    ]
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: run_supervisor(SupervisorSpec(strategy=Strategy.ONE_FOR_ALL, intensity=1,
                                                                 period=60), children, registry=registry, stop=stop))
        await trio.sleep(6)
        states = {i.path: i.state for i in registry if i.path != "root"}
        assert states["root/a"] is ActorState.RUNNING and states["root/c"] is ActorState.STOPPING
        await trio.sleep(1)
        assert registry.get("root/a").state is ActorState.STOPPING  # type: ignore[union-attr]
        await trio.sleep(2)
        assert {i.path: i.state for i in registry if i.path != "root"} == {
            "root/a": ActorState.BACKOFF, "root/b": ActorState.BACKOFF, "root/c": ActorState.BACKOFF}
        assert registry.get("root/b").next_restart_in == 1  # type: ignore[union-attr]
        await trio.sleep(11)
        stop.set()
    assert log.since(5) == [
        (5, "b", "crash"), (6.5, "c", "stop"), (8.5, "a", "cancelled"),
        (9.5, "a", "start"), (9.5, "b", "start"), (9.5, "c", "start"),
        (21.5, "c", "stop"), (21.5, "b", "stop"), (23.5, "a", "cancelled"),
    ]
