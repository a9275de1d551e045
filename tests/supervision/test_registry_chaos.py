"""Registry queries, the kill switch (counted as a crash and a restart) and the chaos monkey."""

from __future__ import annotations

import random
from typing import Any

import pytest
import trio

from supervision import (
    ActorKilled, ActorState, Backoff, ChildSpec, Inbox, Registry, SupervisorSpec, chaos_monkey, run_supervisor,
    supervisor_child,
)

from ._util import EventLog, capture_logs, scripted

NO_JITTER = Backoff(min=1, max=8, factor=2, jitter=0)


async def test_kill_fails_the_actor_as_if_it_raised(autojump_clock: trio.testing.MockClock) -> None:
    log = EventLog()
    registry = Registry(wall_clock=lambda: 1_700_000_000 + trio.current_time())
    hooked: list[tuple[str, int]] = []
    registry.on_restart.append(lambda info: hooked.append((info.path, info.restarts)))
    children = [ChildSpec(id="worker", run=scripted(log), backoff=NO_JITTER),
                ChildSpec(id="other", run=scripted(log), backoff=NO_JITTER)]
    stop = trio.Event()
    with capture_logs() as records:
        async with trio.open_nursery() as nursery:
            await nursery.start(lambda task_status: run_supervisor(
                SupervisorSpec(intensity=1, period=60), children, registry=registry, stop=stop,
                task_status=task_status))
            info = registry.get("root/worker")
            assert info is not None
            assert (info.state, info.incarnation, info.started_at) == (ActorState.RUNNING, 1, 1_700_000_000)
            assert {i.path for i in registry.running()} == {"root/worker", "root/other"}
            await trio.sleep(3)
            assert registry.kill("worker", "testing")
            assert not registry.kill("worker")          # already dying
            await trio.testing.wait_all_tasks_blocked()
            assert info.state is ActorState.BACKOFF and info.next_restart_in == 1
            assert not registry.kill("worker")          # nothing running to kill
            assert {i.path for i in registry.running()} == {"root/other"}
            assert (info.crashes, info.restarts) == (1, 0)
            assert info.last_error == "ActorKilled: root/worker: testing"
            assert info.last_error_at == 1_700_000_003
            await trio.sleep(1)
            await trio.testing.wait_all_tasks_blocked()
            assert (info.state, info.incarnation, info.restarts) == (ActorState.RUNNING, 2, 1)
            assert info.started_at == 1_700_000_004
            assert hooked == [("root/worker", 1)]
            assert not registry.kill("nobody")
            snapshot = {d["path"]: d for d in registry.snapshot()}
            assert snapshot["root/worker"] == {
                "path": "root/worker", "kind": "worker", "state": "running", "incarnation": 2, "restarts": 1,
                "crashes": 1, "last_error": "ActorKilled: root/worker: testing", "last_error_at": 1_700_000_003,
                "started_at": 1_700_000_004}
            assert snapshot["root"]["kind"] == "supervisor"
            stop.set()
    # killed = cancelled inside the actor, then reported as a crash
    assert log.events == [(0, "worker", "start"), (0, "other", "start"), (3, "worker", "cancelled"),
                          (4, "worker", "start"), (4, "other", "stop"), (4, "worker", "stop")]
    crash = [r for r in records if r["level"].name == "ERROR" and "crashed" in r["message"]]
    assert len(crash) == 1 and isinstance(crash[0]["exception"].value, ActorKilled)
    assert crash[0]["message"] == "actor root/worker crashed: ActorKilled: root/worker: testing"
    assert [r["message"] for r in records if "restarting" in r["message"]] == ["restarting ['worker'] in 1.000 s"]


async def test_kill_counts_towards_intensity(autojump_clock: trio.testing.MockClock) -> None:
    log = EventLog()
    registry = Registry()
    outcome: list[BaseException] = []

    async def run() -> None:
        try:
            await run_supervisor(SupervisorSpec(intensity=1, period=60),
                                 [ChildSpec(id="w", run=scripted(log), backoff=NO_JITTER)], registry=registry)
        except Exception as exc:  # noqa: BLE001
            outcome.append(exc)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run)
        await trio.sleep(1)
        assert registry.kill("w")
        await trio.sleep(2)
        assert registry.kill("root/w")
    assert len(outcome) == 1 and type(outcome[0]).__name__ == "SupervisorGaveUp"
    assert isinstance(outcome[0].__cause__, ActorKilled)


def test_find_by_unique_name_or_path() -> None:
    registry = Registry()
    a = registry.register("root/feeds/rtds")
    b = registry.register("root/x/dup")
    registry.register("root/y/dup")
    assert registry.find("rtds") is a and registry.find("root/feeds/rtds") is a
    assert registry.find("dup") is None and registry.find("root/x/dup") is b
    assert registry.register("root/feeds/rtds") is a   # idempotent
    registry.unregister("root/feeds/rtds")
    assert registry.find("rtds") is None


async def test_snapshot_includes_inbox_statistics(autojump_clock: trio.testing.MockClock) -> None:
    inbox: Inbox[int] = Inbox("q", 4)
    for i in range(3):
        inbox.send_channel.send_nowait(i)
    registry = Registry()

    async def idle(ctx: Any, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await ctx.inbox.receive()
        await trio.sleep_forever()

    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(lambda task_status: run_supervisor(
            SupervisorSpec(), [ChildSpec(id="c", run=idle, inbox=inbox)], registry=registry, stop=stop,
            task_status=task_status))
        await trio.testing.wait_all_tasks_blocked()
        (entry,) = [d for d in registry.snapshot() if d["path"] == "root/c"]
        assert entry["inbox"] == {"queued": 2, "in_flight": 1, "redelivering": 0, "blocked_senders": 0,
                                  "dead_letters": 0}
        stop.set()


async def run_chaos(seed: int, minutes: float) -> tuple[Registry, list[tuple[float, str]]]:
    registry = Registry()
    log = EventLog()
    kills: list[tuple[float, str]] = []
    workers = [ChildSpec(id=f"w{i}", run=scripted(log), backoff=Backoff(min=0.5, max=4, jitter=0)) for i in range(3)]
    sub = supervisor_child("sub", SupervisorSpec(intensity=50, period=60),
                           [ChildSpec(id="leaf", run=scripted(log), backoff=Backoff(min=0.5, max=4, jitter=0))],
                           backoff=Backoff(min=1, jitter=0))
    chaos = ChildSpec(id="chaos", run=chaos_monkey(30, rng=random.Random(seed), spare=lambda p: p.endswith("w0")),
                      shutdown=0)
    stop = trio.Event()
    with capture_logs("WARNING") as records:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: run_supervisor(SupervisorSpec(intensity=100, period=60),
                                                      [*workers, sub, chaos], registry=registry, stop=stop))
            await trio.sleep(minutes * 60)
            await trio.testing.wait_all_tasks_blocked()
            stop.set()
    for r in records:
        if r["message"].startswith("chaos: killed "):
            kills.append((r["time"].timestamp(), r["message"].removeprefix("chaos: killed ")))
    return registry, kills


async def test_chaos_monkey_kills_and_the_tree_survives(autojump_clock: trio.testing.MockClock) -> None:
    registry, kills = await run_chaos(seed=7, minutes=10)
    victims = [v for _, v in kills]
    # ~30 a minute for 10 minutes
    assert 200 <= len(victims) <= 400
    assert set(victims) <= {"root/w1", "root/w2", "root/sub/leaf"}     # never itself, w0 spared, no supervisors
    assert set(victims) == {"root/w1", "root/w2", "root/sub/leaf"}
    by_path = {i.path: i for i in registry}
    for path in ("root/w1", "root/w2", "root/sub/leaf"):
        info = by_path[path]
        assert info.crashes == victims.count(path)
        assert info.last_error == f"ActorKilled: {path}: chaos"
    assert by_path["root/w0"].crashes == 0 and by_path["root/chaos"].crashes == 0
    assert by_path["root/sub"].crashes == 0      # its intensity absorbs the leaf's deaths
    assert by_path["root"].state is ActorState.STOPPED   # stopped on request, never gave up


async def test_chaos_monkey_is_reproducible_with_a_seed(autojump_clock: trio.testing.MockClock) -> None:
    _, first = await run_chaos(seed=3, minutes=2)
    _, second = await run_chaos(seed=3, minutes=2)
    _, other = await run_chaos(seed=4, minutes=2)
    assert [v for _, v in first] == [v for _, v in second]
    assert [v for _, v in first] != [v for _, v in other]


def test_chaos_rate_must_be_positive() -> None:
    with pytest.raises(ValueError):
        chaos_monkey(0)
