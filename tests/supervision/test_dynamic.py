"""DynamicSupervisor: temporary children started at run time, contained crashes, the cap,
stop with the parent, registry entries, nursery-like start_soon."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from supervision import (
    ActorState, ChildSpec, DynamicSupervisor, Registry, SupervisorNotRunning, SupervisorSpec,
    TooManyChildren, run_supervisor,
)

from ._util import Boom, EventLog, capture_logs


def session(log: EventLog, *, crash_after: float | None = None, return_after: float | None = None,
            ignore_stop: bool = False) -> Any:
    async def run(ctx: Any, label: str) -> None:
        log.add(label, "start")
        try:
            if crash_after is not None:
                await trio.sleep(crash_after)
                log.add(label, "crash")
                raise Boom(label)
            if return_after is not None:
                await trio.sleep(return_after)
                log.add(label, "return")
                return
            if ignore_stop:
                await trio.sleep_forever()
            await ctx.stopping.wait()
            log.add(label, "stop")
        except trio.Cancelled:
            log.add(label, "cancelled")
            raise

    return run


async def start_tree(nursery: trio.Nursery, dyn: DynamicSupervisor, registry: Registry, stop: trio.Event,
                     *, shutdown: float = 5) -> None:
    await nursery.start(lambda task_status: run_supervisor(
        SupervisorSpec(intensity=0, period=60), [ChildSpec(id="sessions", run=dyn.run, shutdown=shutdown)],
        registry=registry, stop=stop, task_status=task_status))


async def test_children_run_crash_contained_and_registry_tracks_them(autojump_clock: trio.testing.MockClock) -> None:
    log = EventLog()
    registry = Registry(wall_clock=lambda: 1_000 + trio.current_time())
    dyn = DynamicSupervisor(max_children=10)
    stop = trio.Event()
    with capture_logs() as records:
        async with trio.open_nursery() as nursery:
            await start_tree(nursery, dyn, registry, stop)
            assert dyn.running
            p1 = dyn.start_child(session(log, crash_after=1), "s1", name="client")
            p2 = dyn.start_child(session(log), "s2")
            p3 = dyn.start_child(session(log, return_after=2), "s3")
            assert (p1, p2, p3) == ("root/sessions/client-1", "root/sessions/child-2", "root/sessions/child-3")
            await trio.testing.wait_all_tasks_blocked()
            info = registry.get(p1)
            assert info is not None and (info.state, info.incarnation, info.started_at) == (ActorState.RUNNING, 1, 1000)
            assert len(dyn) == 3
            await trio.sleep(1)
            await trio.testing.wait_all_tasks_blocked()
            # the crash is contained: no restart, siblings and the dynamic supervisor keep running
            assert registry.get(p1) is None
            assert dyn.crashed_total == 1 and dyn.running and len(dyn) == 2
            sessions = registry.get("root/sessions")
            assert sessions is not None and (sessions.state, sessions.restarts) == (ActorState.RUNNING, 0)
            await trio.sleep(2)
            await trio.testing.wait_all_tasks_blocked()
            assert registry.get(p3) is None and registry.get(p2) is not None and len(dyn) == 1
            stop.set()
    # children run concurrently: same-time starts come in trio's (arbitrary) scheduling order
    assert sorted(log.events[:3]) == [(0, "s1", "start"), (0, "s2", "start"), (0, "s3", "start")]
    assert log.events[3:] == [(1, "s1", "crash"), (2, "s3", "return"), (3, "s2", "stop")]
    assert (dyn.started_total, dyn.crashed_total, dyn.rejected_total) == (3, 1, 0)
    assert registry.get(p2) is None and not dyn.running
    crash_lines = [r for r in records if "temporary actor" in r["message"]]
    assert len(crash_lines) == 1
    assert crash_lines[0]["level"].name == "ERROR" and isinstance(crash_lines[0]["exception"].value, Boom)


async def test_cap_raises_too_many_children(autojump_clock: trio.testing.MockClock) -> None:
    log = EventLog()
    registry = Registry()
    dyn = DynamicSupervisor(max_children=2)
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        await start_tree(nursery, dyn, registry, stop)
        dyn.start_child(session(log, return_after=1), "a")
        dyn.start_child(session(log), "b")
        with pytest.raises(TooManyChildren):
            dyn.start_child(session(log), "c")
        assert dyn.rejected_total == 1
        await trio.sleep(1)
        await trio.testing.wait_all_tasks_blocked()  # let "a" finish returning at t=1
        dyn.start_child(session(log), "d")  # room again once one ended
        stop.set()
    assert sorted((t, n) for t, n, w in log.events if w == "start") == [(0, "a"), (0, "b"), (1, "d")]
    assert (dyn.started_total, dyn.rejected_total) == (3, 1)


async def test_stopping_the_dynamic_supervisor_stops_its_children(autojump_clock: trio.testing.MockClock) -> None:
    log = EventLog()
    registry = Registry()
    dyn = DynamicSupervisor(max_children=5, shutdown=2)
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        await start_tree(nursery, dyn, registry, stop)
        dyn.start_child(session(log), "polite")
        dyn.start_child(session(log, ignore_stop=True), "stubborn")
        await trio.sleep(4)
        stop.set()
    # graceful request to all, then the stubborn one is cancelled after `shutdown`
    assert log.since(4) == [(4, "polite", "stop"), (6, "stubborn", "cancelled")]
    assert trio.current_time() == 6
    assert [i.path for i in registry] == ["root", "root/sessions"]
    assert not dyn.running and len(dyn) == 0
    with pytest.raises(SupervisorNotRunning):
        dyn.start_child(session(log), "late")


async def test_parent_shutdown_bounds_the_dynamic_supervisor(autojump_clock: trio.testing.MockClock) -> None:
    log = EventLog()
    dyn = DynamicSupervisor(max_children=5, shutdown=10)
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        await start_tree(nursery, dyn, Registry(), stop, shutdown=3)
        dyn.start_child(session(log, ignore_stop=True), "stubborn")
        await trio.sleep(1)
        stop.set()
    assert log.since(1) == [(4, "stubborn", "cancelled")]


async def test_kill_a_dynamic_child(autojump_clock: trio.testing.MockClock) -> None:
    log = EventLog()
    registry = Registry(wall_clock=lambda: 5_000.0)
    dyn = DynamicSupervisor(max_children=5)
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        await start_tree(nursery, dyn, registry, stop)
        path = dyn.start_child(session(log), "victim", name="v")
        await trio.sleep(1)
        info = registry.get(path)
        assert info is not None
        assert registry.kill("v-1", "test")
        await trio.testing.wait_all_tasks_blocked()
        assert dyn.crashed_total == 1
        assert info.state is ActorState.FAILED and info.crashes == 1
        assert info.last_error == f"ActorKilled: {path}: test" and info.last_error_at == 5_000.0
        assert registry.get(path) is None and not registry.kill(path)
        stop.set()
    assert log.events == [(0, "victim", "start"), (1, "victim", "cancelled")]


async def test_not_running_before_run(autojump_clock: trio.testing.MockClock) -> None:
    dyn = DynamicSupervisor(max_children=1)
    assert not dyn.running
    with pytest.raises(SupervisorNotRunning):
        dyn.start_child(session(EventLog()), "x")
    with pytest.raises(ValueError):
        DynamicSupervisor(max_children=0)


async def test_start_soon_works_as_a_handler_nursery(autojump_clock: trio.testing.MockClock) -> None:
    handled: list[tuple[float, str]] = []
    registry = Registry()
    dyn = DynamicSupervisor(max_children=2)

    async def handler(stream: str, delay: float) -> None:
        await trio.sleep(delay)
        if stream == "bad":
            raise Boom("handler failed")
        handled.append((trio.current_time(), stream))

    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        await start_tree(nursery, dyn, registry, stop)
        dyn.start_soon(handler, "conn-1", 1)
        dyn.start_soon(handler, "bad", 0.5, name="bad-handler")
        with pytest.raises(TooManyChildren):
            dyn.start_soon(handler, "conn-3", 1)
        assert sorted(i.path for i in registry)[-2:] == ["root/sessions/bad-handler-2", "root/sessions/child-1"]
        await trio.sleep(2)
        dyn.start_soon(handler, "conn-4", 1)
        await trio.sleep(2)
        stop.set()
    assert handled == [(1, "conn-1"), (3, "conn-4")]
    assert (dyn.started_total, dyn.crashed_total, dyn.rejected_total) == (3, 1, 1)


async def test_restarted_dynamic_supervisor_starts_empty(autojump_clock: trio.testing.MockClock) -> None:
    """If the dynamic supervisor is killed, its children go with it; after the restart it
    accepts children again."""
    log = EventLog()
    registry = Registry()
    dyn = DynamicSupervisor(max_children=5)
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(lambda task_status: run_supervisor(
            SupervisorSpec(intensity=1, period=60), [ChildSpec(id="sessions", run=dyn.run)],
            registry=registry, stop=stop, task_status=task_status))
        dyn.start_child(session(log), "s1")
        await trio.sleep(1)
        assert registry.kill("sessions")
        await trio.testing.wait_all_tasks_blocked()
        assert not dyn.running and len(dyn) == 0
        info = registry.get("root/sessions")
        assert info is not None and info.last_error is not None and info.last_error.startswith("ActorKilled")
        await trio.sleep(info.next_restart_in or 0)
        await trio.testing.wait_all_tasks_blocked()
        assert dyn.running
        dyn.start_child(session(log), "s2")
        await trio.sleep(1)
        stop.set()
    assert [(n, w) for _, n, w in log.events] == [("s1", "start"), ("s1", "cancelled"), ("s2", "start"),
                                                  ("s2", "stop")]
