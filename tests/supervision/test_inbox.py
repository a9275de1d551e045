"""Inboxes owned by the supervisor: nothing queued is lost across restarts, in-flight
messages are redelivered first, poison messages are dropped, graceful stop drains."""

from __future__ import annotations

import math
from typing import Any

import pytest
import trio

from supervision import (
    Backoff, ChildSpec, Inbox, InboxStatistics, Registry, Strategy, SupervisorSpec, run_supervisor,
)

from ._util import Boom, EventLog, capture_logs, scripted

NO_JITTER = Backoff(min=1, max=8, factor=2, jitter=0)


def consumer(seen: list[tuple[int, Any]], *, crash_on: dict[Any, int] | None = None,
             work: float = 0.0) -> Any:
    """Receives with ``async for``; crashes *while processing* a message ``m`` if it has been
    delivered fewer than ``crash_on[m]`` times; takes ``work`` seconds per message."""
    crash_on = dict(crash_on or {})
    deliveries: dict[Any, int] = {}

    async def run(ctx: Any, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        async for message in ctx.inbox:
            seen.append((ctx.incarnation, message))
            deliveries[message] = deliveries.get(message, 0) + 1
            if work:
                await trio.sleep(work)
            if deliveries[message] <= crash_on.get(message, 0):
                raise Boom(f"choked on {message!r}")

    return run


async def run_for(seconds: float, spec: SupervisorSpec, children: list[ChildSpec], *,
                  during: Any = None, registry: Registry | None = None) -> None:
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: run_supervisor(spec, children, stop=stop, registry=registry))
        if during is not None:
            await during()
        await trio.sleep(seconds)
        stop.set()


async def test_messages_queued_before_and_during_a_restart_all_arrive_in_order(
        autojump_clock: trio.testing.MockClock) -> None:
    inbox: Inbox[str] = Inbox("work", 16)
    seen: list[tuple[int, Any]] = []
    inbox.send_channel.send_nowait("m1")  # queued before the actor ever ran
    inbox.send_channel.send_nowait("m2")
    inbox.send_channel.send_nowait("boom")
    producer = inbox.sender()

    async def produce() -> None:
        await trio.sleep(0.5)   # the consumer crashed at 0 and is in its 1 s backoff
        await producer.send("m3")
        inbox.send_channel.send_nowait("m4")
        await trio.sleep(2)
        await producer.send("m5")
        await producer.aclose()

    child = ChildSpec(id="c", run=consumer(seen, crash_on={"boom": 1}), inbox=inbox, backoff=NO_JITTER)
    await run_for(10, SupervisorSpec(), [child], during=produce)
    assert seen == [(1, "m1"), (1, "m2"), (1, "boom"), (2, "boom"), (2, "m3"), (2, "m4"), (2, "m5")]
    assert inbox.statistics() == InboxStatistics(name="work", queued=0, in_flight=0, redelivering=0, max_size=16,
                                                 blocked_senders=0, redelivered_total=1, dead_letters_total=0)
    assert inbox.pending() == 0


async def test_producers_block_rather_than_break_while_the_consumer_is_down(
        autojump_clock: trio.testing.MockClock) -> None:
    inbox: Inbox[int] = Inbox("small", 2)
    seen: list[tuple[int, Any]] = []
    sent_at: list[float] = []
    stats: list[InboxStatistics] = []

    async def produce() -> None:
        await trio.sleep(0.5)  # consumer crashed at 0 on message 0; restarts at 1
        for i in range(1, 6):
            await inbox.send_channel.send(i)   # must never raise BrokenResourceError
            sent_at.append(trio.current_time())

    async def watch() -> None:
        await trio.sleep(0.75)
        stats.append(inbox.statistics())

    inbox.send_channel.send_nowait(0)
    child = ChildSpec(id="c", run=consumer(seen, crash_on={0: 1}), inbox=inbox, backoff=NO_JITTER)

    async def during() -> None:
        async with trio.open_nursery() as n:
            n.start_soon(produce)
            n.start_soon(watch)

    await run_for(5, SupervisorSpec(), [child], during=during)
    # buffer of 2: messages 1 and 2 go in at once, 3 waits for the restarted consumer
    assert sent_at[:2] == [0.5, 0.5] and sent_at[2] == 1
    assert stats[0].queued == 2 and stats[0].blocked_senders == 1 and stats[0].redelivering == 1
    assert [m for _, m in seen] == [0, 0, 1, 2, 3, 4, 5]


async def test_batch_in_flight_at_a_crash_is_redelivered_whole_and_first(autojump_clock: trio.testing.MockClock) -> None:
    inbox: Inbox[int] = Inbox("batch", math.inf)
    batches: list[tuple[int, float, list[int]]] = []

    async def batcher(ctx: Any, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            try:
                batch = await ctx.inbox.receive_batch(3, max_wait=1)
            except trio.EndOfChannel:
                return
            batches.append((ctx.incarnation, trio.current_time(), batch))
            if ctx.incarnation == 1:
                await trio.sleep(0.5)
                raise Boom("batch write failed")

    async def produce() -> None:
        for i in range(1, 5):
            await inbox.send_channel.send(i)
            await trio.sleep(0.25)   # 1 at 0, 2 at .25, 3 at .5, 4 at .75

    child = ChildSpec(id="b", run=batcher, inbox=inbox, backoff=NO_JITTER)
    await run_for(10, SupervisorSpec(), [child], during=produce)
    assert batches == [
        (1, 0.5, [1, 2, 3]),     # full batch at .5; crashes at 1.0 with it in flight
        (2, 2.0, [1, 2, 3]),     # restarted at 2: the whole batch again, first
        (2, 3.0, [4]),           # then the rest (after max_wait)
    ]
    stats = inbox.statistics()
    assert (stats.redelivered_total, stats.dead_letters_total, stats.queued) == (3, 0, 0)


async def test_redelivered_messages_keep_their_order_across_repeated_crashes(
        autojump_clock: trio.testing.MockClock) -> None:
    """A batch redelivered after a crash, then a crash on its first message again: the
    third incarnation still gets the batch back in order, ahead of newer messages."""
    inbox: Inbox[int] = Inbox("batch", 16, max_deliveries=10)
    received: list[tuple[int, list[int]]] = []

    async def actor(ctx: Any, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        if ctx.incarnation == 1:
            received.append((1, await ctx.inbox.receive_batch(3, max_wait=0)))
            raise Boom("batch failed")
        if ctx.incarnation == 2:
            received.append((2, [await ctx.inbox.receive()]))
            raise Boom("first one failed again")
        while True:
            received.append((ctx.incarnation, [await ctx.inbox.receive()]))

    for i in range(1, 6):
        inbox.send_channel.send_nowait(i)
    await run_for(10, SupervisorSpec(), [ChildSpec(id="a", run=actor, inbox=inbox, backoff=NO_JITTER)])
    assert received == [(1, [1, 2, 3]), (2, [1]), (3, [1]), (3, [2]), (3, [3]), (3, [4]), (3, [5])]
    assert inbox.statistics().redelivered_total == 4


async def test_batch_waits_at_most_max_wait(autojump_clock: trio.testing.MockClock) -> None:
    inbox: Inbox[int] = Inbox("b", 8)
    got: list[tuple[float, list[int]]] = []

    async def batcher(ctx: Any, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        for max_items in (5, 2):
            batch = await ctx.inbox.receive_batch(max_items, max_wait=2)
            got.append((trio.current_time(), batch))
        await trio.sleep_forever()

    async def produce() -> None:
        await trio.sleep(1)
        for i in range(4):
            inbox.send_channel.send_nowait(i)
        await trio.sleep(2.5)
        inbox.send_channel.send_nowait(4)

    await run_for(10, SupervisorSpec(), [ChildSpec(id="b", run=batcher, inbox=inbox)], during=produce)
    # first message at 1, then up to 2 s more to fill the batch; the 2nd: 4 arrives at 3.5, waits until 5.5
    assert got == [(3, [0, 1, 2, 3]), (5.5, [4])]


async def test_poison_message_is_dropped_after_max_deliveries(autojump_clock: trio.testing.MockClock) -> None:
    inbox: Inbox[str] = Inbox("work", 16, max_deliveries=3)
    seen: list[tuple[int, Any]] = []
    for m in ("a", "poison", "b", "c"):
        inbox.send_channel.send_nowait(m)
    child = ChildSpec(id="c", run=consumer(seen, crash_on={"poison": 100}), inbox=inbox, backoff=NO_JITTER)
    with capture_logs() as records:
        await run_for(20, SupervisorSpec(intensity=3, period=60), [child])
    assert seen == [(1, "a"), (1, "poison"), (2, "poison"), (3, "poison"), (4, "b"), (4, "c")]
    stats = inbox.statistics()
    assert (stats.dead_letters_total, stats.redelivered_total) == (1, 2)
    dropped = [r for r in records if r["message"].startswith("dropping a message")]
    assert len(dropped) == 1 and "'poison'" in dropped[0]["message"] and dropped[0]["extra"]["inbox"] == "work"


async def test_graceful_stop_drains_what_is_queued_then_async_for_ends(autojump_clock: trio.testing.MockClock) -> None:
    inbox: Inbox[int] = Inbox("work", 16)
    seen: list[tuple[int, Any]] = []
    log = EventLog()
    done: list[float] = []

    async def slow(ctx: Any, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        async for message in ctx.inbox:
            await trio.sleep(1)
            seen.append((ctx.incarnation, message))
        done.append(trio.current_time())

    for i in range(5):
        inbox.send_channel.send_nowait(i)
    producer = ChildSpec(id="p", run=scripted(log))
    ended: list[float] = []
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: run_supervisor(SupervisorSpec(), [ChildSpec(id="c", run=slow, inbox=inbox,
                                                                               shutdown=10), producer], stop=stop))
        await trio.sleep(0.5)
        stop.set()
    ended.append(trio.current_time())
    assert [m for _, m in seen] == [0, 1, 2, 3, 4]
    assert done == [5] and ended == [5]
    assert inbox.pending() == 0


async def test_receive_after_stop_with_empty_inbox_ends_at_once(autojump_clock: trio.testing.MockClock) -> None:
    inbox: Inbox[int] = Inbox("idle", 4)
    ends: list[float] = []

    async def idle(ctx: Any, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        async for _ in ctx.inbox:
            pass
        ends.append(trio.current_time())
        with pytest.raises(trio.EndOfChannel):
            await ctx.inbox.receive()

    await run_for(3, SupervisorSpec(), [ChildSpec(id="i", run=idle, inbox=inbox)])
    assert ends == [3]


async def test_message_in_flight_when_killed_is_redelivered_first(autojump_clock: trio.testing.MockClock) -> None:
    inbox: Inbox[str] = Inbox("work", 16)
    seen: list[tuple[int, Any]] = []
    registry = Registry()
    for m in ("m1", "m2", "m3"):
        inbox.send_channel.send_nowait(m)
    child = ChildSpec(id="c", run=consumer(seen, work=1), inbox=inbox, backoff=NO_JITTER)

    async def kill_mid_message() -> None:
        await trio.sleep(1.5)  # m1 done at 1, m2 in flight
        assert inbox.statistics().in_flight == 1
        assert registry.kill("c")

    await run_for(10, SupervisorSpec(), [child], during=kill_mid_message, registry=registry)
    assert seen == [(1, "m1"), (1, "m2"), (2, "m2"), (2, "m3")]
    assert inbox.statistics().redelivered_total == 1


async def test_explicit_ack_prevents_redelivery(autojump_clock: trio.testing.MockClock) -> None:
    inbox: Inbox[str] = Inbox("work", 16)
    seen: list[tuple[int, str]] = []

    async def acker(ctx: Any, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        message = await ctx.inbox.receive()
        seen.append((ctx.incarnation, message))
        if ctx.incarnation == 1:
            ctx.inbox.ack()
            raise Boom("after ack")
        await trio.sleep_forever()

    inbox.send_channel.send_nowait("x")
    inbox.send_channel.send_nowait("y")
    await run_for(5, SupervisorSpec(), [ChildSpec(id="a", run=acker, inbox=inbox, backoff=NO_JITTER)])
    assert seen == [(1, "x"), (2, "y")]


async def test_normal_return_acknowledges_in_flight_messages(autojump_clock: trio.testing.MockClock) -> None:
    inbox: Inbox[str] = Inbox("work", 16)
    seen: list[tuple[int, str]] = []

    async def one_shot(ctx: Any, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        seen.append((ctx.incarnation, await ctx.inbox.receive()))
        if ctx.incarnation > 1:
            await trio.sleep_forever()

    inbox.send_channel.send_nowait("x")
    inbox.send_channel.send_nowait("y")
    await run_for(5, SupervisorSpec(), [ChildSpec(id="a", run=one_shot, inbox=inbox, backoff=NO_JITTER)])
    assert seen == [(1, "x"), (2, "y")]


async def test_terminated_delivery_is_not_counted_as_a_crash(autojump_clock: trio.testing.MockClock) -> None:
    """A consumer stopped (cancelled) by its supervisor because a sibling crashed did not
    crash on its message: the message is redelivered, never dead-lettered."""
    inbox: Inbox[str] = Inbox("work", 16, max_deliveries=2)
    seen: list[tuple[int, Any]] = []
    log = EventLog()

    async def stubborn(ctx: Any, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        async for message in ctx.inbox:
            seen.append((ctx.incarnation, message))
            if ctx.incarnation <= 3:
                await trio.sleep_forever()   # mid-message when the sibling crashes; ignores the request

    inbox.send_channel.send_nowait("m")
    children = [
        ChildSpec(id="c", run=stubborn, inbox=inbox, shutdown=1, backoff=NO_JITTER),
        ChildSpec(id="sib", run=scripted(log, crash_after={1: 1, 2: 1, 3: 1}),
                  backoff=Backoff(min=1, max=1, jitter=0)),
    ]
    await run_for(20, SupervisorSpec(strategy=Strategy.ONE_FOR_ALL, intensity=5, period=60), children)
    assert seen == [(1, "m"), (2, "m"), (3, "m"), (4, "m")]
    stats = inbox.statistics()
    assert (stats.dead_letters_total, stats.redelivered_total) == (0, 3)


async def test_statistics_while_running(autojump_clock: trio.testing.MockClock) -> None:
    inbox: Inbox[int] = Inbox("s", 3)
    snapshots: list[InboxStatistics] = []

    async def holder(ctx: Any, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await ctx.inbox.receive_batch(2, max_wait=0)
        await trio.sleep_forever()

    for i in range(3):
        inbox.send_channel.send_nowait(i)

    async def during() -> None:
        await trio.sleep(1)
        inbox.send_channel.send_nowait(3)
        async with trio.open_nursery() as n:
            n.start_soon(inbox.send_channel.send, 4)
            n.start_soon(inbox.send_channel.send, 5)   # blocked: buffer of 3 is full
            await trio.testing.wait_all_tasks_blocked()
            snapshots.append(inbox.statistics())
            n.cancel_scope.cancel()

    await run_for(1, SupervisorSpec(), [ChildSpec(id="h", run=holder, inbox=inbox)], during=during)
    assert snapshots == [InboxStatistics(name="s", queued=3, in_flight=2, redelivering=0, max_size=3,
                                         blocked_senders=1, redelivered_total=0, dead_letters_total=0)]


def test_inbox_size_is_validated() -> None:
    for bad in (-1, 1.5):
        with pytest.raises(ValueError):
            Inbox("x", bad)
    assert Inbox("x", math.inf).max_size == math.inf
