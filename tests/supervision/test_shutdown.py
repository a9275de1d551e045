"""Shutdown: reverse start order, graceful request first, cancellation at exactly
t0 + shutdown; shutdown=0 cancels at once; shutdown=None waits."""

from __future__ import annotations

from typing import Any

import trio

from supervision import ActorState, ChildSpec, Registry, SupervisorSpec, run_supervisor, supervisor_child

from ._util import EventLog, scripted


async def run_then_stop(at: float, children: list[ChildSpec], registry: Registry | None = None) -> float:
    """Run a root supervisor, set its stop event at ``at``; return when it has returned."""
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: run_supervisor(SupervisorSpec(), children, registry=registry, stop=stop))
        await trio.sleep(at)
        stop.set()
    return trio.current_time()


def observer(log: EventLog, *, cleanup: float | None) -> Any:
    """Logs when it sees the graceful request; then cleans up for ``cleanup`` seconds and
    returns, or (``cleanup=None``) ignores the request."""

    async def run(ctx: Any, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        try:
            await ctx.stopping.wait()
            log.add(ctx, "stop requested")
            if cleanup is None:
                await trio.sleep_forever()
            await trio.sleep(cleanup)
            log.add(ctx, "stopped")
        except trio.Cancelled:
            log.add(ctx, f"cancelled (stopping={ctx.stopping.is_set()})")
            raise

    return run


async def test_reverse_order_graceful_first_then_cancel_at_t0_plus_shutdown(
        autojump_clock: trio.testing.MockClock) -> None:
    log = EventLog()
    registry = Registry()
    children = [
        ChildSpec(id="a", run=observer(log, cleanup=0.5), shutdown=5),
        ChildSpec(id="b", run=observer(log, cleanup=None), shutdown=3),
        ChildSpec(id="c", run=observer(log, cleanup=1), shutdown=5),
        ChildSpec(id="d", run=observer(log, cleanup=100), shutdown=2),  # too slow: cancelled mid-cleanup
    ]
    ended = await run_then_stop(10, children, registry)
    assert log.events == [
        (10, "d", "stop requested"), (12, "d", "cancelled (stopping=True)"),
        (12, "c", "stop requested"), (13, "c", "stopped"),
        (13, "b", "stop requested"), (16, "b", "cancelled (stopping=True)"),
        (16, "a", "stop requested"), (16.5, "a", "stopped"),
    ]
    assert ended == 16.5
    assert all(i.state is ActorState.STOPPED for i in registry)


async def test_stop_scope_is_cancelled_by_the_graceful_request(autojump_clock: trio.testing.MockClock) -> None:
    log = EventLog()

    async def reader(ctx: Any, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        with ctx.stop_scope() as scope:
            await trio.sleep_forever()
        log.add(ctx, f"read loop left (cancelled_caught={scope.cancelled_caught})")
        with ctx.stop_scope() as late:  # a scope made after the request is cancelled at once
            await trio.sleep_forever()
        log.add(ctx, f"late scope (cancel_called={late.cancel_called})")
        await trio.sleep(0.25)
        log.add(ctx, "flushed")

    await run_then_stop(4, [ChildSpec(id="r", run=reader)])
    assert log.events == [
        (4, "r", "read loop left (cancelled_caught=True)"),
        (4, "r", "late scope (cancel_called=True)"),
        (4.25, "r", "flushed"),
    ]


async def test_shutdown_zero_cancels_at_once_without_a_request(autojump_clock: trio.testing.MockClock) -> None:
    log = EventLog()
    children = [
        ChildSpec(id="a", run=observer(log, cleanup=1), shutdown=0),
        ChildSpec(id="b", run=observer(log, cleanup=1), shutdown=5),
    ]
    ended = await run_then_stop(3, children)
    assert log.events == [
        (3, "b", "stop requested"), (4, "b", "stopped"),
        (4, "a", "cancelled (stopping=False)"),   # brutal kill: no graceful request
    ]
    assert ended == 4


async def test_shutdown_none_waits_for_the_child(autojump_clock: trio.testing.MockClock) -> None:
    log = EventLog()
    children = [ChildSpec(id="a", run=observer(log, cleanup=10_000), shutdown=None)]
    ended = await run_then_stop(1, children)
    assert log.events == [(1, "a", "stop requested"), (10_001, "a", "stopped")]
    assert ended == 10_001


async def test_a_subtree_stops_depth_first_in_reverse_order(autojump_clock: trio.testing.MockClock) -> None:
    log = EventLog()
    sub = supervisor_child("sub", SupervisorSpec(), [
        ChildSpec(id="x", run=scripted(log, stop_takes=1)),
        ChildSpec(id="y", run=scripted(log, ignore_stop=True), shutdown=2),
    ])
    children = [ChildSpec(id="a", run=scripted(log)), sub, ChildSpec(id="b", run=scripted(log, stop_takes=1))]
    ended = await run_then_stop(10, children)
    assert log.events == [
        (0, "a", "start"), (0, "x", "start"), (0, "y", "start"), (0, "b", "start"),
        (11, "b", "stop"), (13, "y", "cancelled"), (14, "x", "stop"), (14, "a", "stop"),
    ]
    assert ended == 14


async def test_stop_requested_during_start_is_honoured_after_start(autojump_clock: trio.testing.MockClock) -> None:
    log = EventLog()
    stop = trio.Event()
    stop.set()
    children = [ChildSpec(id="a", run=scripted(log, ready_after=2)), ChildSpec(id="b", run=scripted(log))]
    await run_supervisor(SupervisorSpec(), children, stop=stop)
    assert log.events == [(2, "a", "start"), (2, "b", "start"), (2, "b", "stop"), (2, "a", "stop")]
