"""Property tests over random crash schedules (hypothesis; each example is one trio.run
under a MockClock, so virtual minutes cost milliseconds).

(a) No queued message is lost: every message sent is processed at least once, the
    processed set equals the sent set, first deliveries keep send order, and duplicates
    only come from crashes.
(b) Intensity: the supervisor gives up exactly when more than ``intensity`` restarts fall
    inside one ``period`` window (OTP: restarts R with R >= now - period), and never otherwise.
"""

from __future__ import annotations

import math
import os
from typing import Any

import trio
import trio.testing
from hypothesis import event, given, settings
from hypothesis import strategies as st

from supervision import Backoff, ChildSpec, Inbox, SupervisorGaveUp, SupervisorSpec, run_supervisor

from ._util import Boom

#: SUPERVISION_PROPERTY_EXAMPLES=2000 for a longer soak; the default keeps the suite fast.
PROPERTY_SETTINGS = settings(max_examples=int(os.environ.get("SUPERVISION_PROPERTY_EXAMPLES", "100")),
                             deadline=None, database=None)


def run_virtual(main: Any) -> Any:
    """``trio.run(main)`` on an autojumping MockClock; a deadlock fails fast instead of hanging."""

    async def guarded() -> Any:
        with trio.fail_after(100_000):
            return await main()

    return trio.run(guarded, clock=trio.testing.MockClock(autojump_threshold=0))


# -- (a) messages ----------------------------------------------------------------------

lifetimes = st.lists(st.sampled_from([0, 0.25, 0.5, 1, 2, 3.5]), max_size=8)
send_gaps = st.lists(st.sampled_from([0, 0, 0.25, 0.5, 1, 3]), min_size=1, max_size=25)


@PROPERTY_SETTINGS
@given(
    crash_plan=lifetimes,
    gaps=send_gaps,
    poison_first_delivery=st.sets(st.integers(0, 24), max_size=4),
    work=st.sampled_from([0, 0.125, 0.5]),
    batch=st.sampled_from([0, 1, 3]),
    size=st.sampled_from([1, 2, 8, math.inf]),
)
def test_no_queued_message_is_lost(crash_plan: list[float], gaps: list[float], poison_first_delivery: set[int],
                                   work: float, batch: int, size: float) -> None:
    sent: list[int] = []
    processed: list[int] = []              # completed processing, in order
    received: list[tuple[int, int]] = []   # every delivery: (incarnation, message)
    crashes: list[float] = []
    inbox: Inbox[int] = Inbox("prop", size, max_deliveries=10_000)
    all_sent, all_processed = trio.Event(), trio.Event()
    incarnations = 0

    async def consumer(ctx: Any, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        nonlocal incarnations
        incarnations += 1
        n = incarnations
        task_status.started()
        lifetime = crash_plan[n - 1] if n <= len(crash_plan) else math.inf
        with trio.move_on_after(lifetime) as timer:
            while True:
                try:
                    if batch:
                        messages = await ctx.inbox.receive_batch(batch, max_wait=0.25)
                    else:
                        messages = [await ctx.inbox.receive()]
                except trio.EndOfChannel:
                    return
                for message in messages:
                    first = all(m != message for _, m in received)
                    received.append((n, message))
                    if work:
                        await trio.sleep(work)
                    if first and message in poison_first_delivery:
                        crashes.append(trio.current_time())
                        raise Boom(f"choked on {message}")
                    processed.append(message)   # completed (idempotent: duplicates are harmless)
                if all_sent.is_set() and set(processed) >= set(sent):
                    all_processed.set()
        if timer.cancelled_caught:
            crashes.append(trio.current_time())
            raise Boom("timer")

    async def main() -> None:
        stop = trio.Event()
        spec = SupervisorSpec(intensity=10_000, period=1)
        child = ChildSpec(id="c", run=consumer, inbox=inbox, backoff=Backoff(min=0.25, max=2, jitter=0))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: run_supervisor(spec, [child], stop=stop))
            for i, gap in enumerate(gaps):
                await trio.sleep(gap)
                await inbox.send_channel.send(i)    # never BrokenResourceError
                sent.append(i)
            all_sent.set()
            if set(processed) >= set(sent):
                all_processed.set()
            # no polling: if a message is lost everything blocks and the clock jumps to the limit
            with trio.move_on_after(10_000):
                await all_processed.wait()
            stop.set()

    run_virtual(main)
    event(f"crashes: {min(len(crashes), 5)}+" if len(crashes) >= 5 else f"crashes: {len(crashes)}")
    event(f"duplicates: {len(processed) > len(sent)}")
    assert set(processed) == set(sent)
    assert list(dict.fromkeys(m for _, m in received)) == sent   # FIFO for first deliveries
    assert list(dict.fromkeys(processed)) == sent                # and for first completions
    assert len(processed) - len(sent) <= len(crashes) * max(batch - 1, 0)
    # each incarnation sees messages in send order: redeliveries come first, oldest first
    for incarnation in {n for n, _ in received}:
        mine = [m for n, m in received if n == incarnation]
        assert mine == sorted(set(mine)), f"incarnation {incarnation} received {mine}"
    stats = inbox.statistics()
    assert stats.dead_letters_total == 0 and stats.queued == 0 and stats.redelivering == 0
    assert inbox.pending() == 0


# -- (b) intensity -----------------------------------------------------------------------

@PROPERTY_SETTINGS
@given(
    crash_plan=st.lists(st.sampled_from([0, 0.5, 1, 2, 4, 8, 16]), min_size=1, max_size=12),
    intensity=st.integers(0, 4),
    period=st.sampled_from([1, 2, 5, 10, 30]),
    backoff_min=st.sampled_from([0, 0.5, 1]),
)
def test_gives_up_exactly_when_intensity_is_exceeded(crash_plan: list[float], intensity: int, period: float,
                                                      backoff_min: float) -> None:
    starts: list[float] = []
    exits: list[float] = []
    outcome: list[BaseException] = []
    backoff = Backoff(min=backoff_min, max=4, factor=2, jitter=0, reset_after=6)

    async def child(ctx: Any, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        n = len(starts)
        starts.append(trio.current_time())
        task_status.started()
        if n >= len(crash_plan):
            await trio.sleep_forever()
        await trio.sleep(crash_plan[n])
        exits.append(trio.current_time())
        raise Boom(f"#{n}")

    async def main() -> None:
        stop = trio.Event()
        spec = SupervisorSpec(intensity=intensity, period=period)
        async with trio.open_nursery() as nursery:
            async def supervise() -> None:
                try:
                    await run_supervisor(spec, [ChildSpec(id="c", run=child, backoff=backoff)], stop=stop)
                except SupervisorGaveUp as exc:
                    outcome.append(exc)

            nursery.start_soon(supervise)
            await trio.sleep(1_000)    # far beyond the last possible crash
            stop.set()

    run_virtual(main)

    # the oracle, from the observed restart (exit) times only
    expected_give_up_at: int | None = None
    window = 0
    for i, t in enumerate(exits):
        window = sum(1 for s in exits[: i + 1] if s >= t - period)
        if window > intensity:
            expected_give_up_at = i
            break
    event(f"gave up: {expected_give_up_at is not None}")
    if expected_give_up_at is None:
        assert not outcome, f"gave up although no window exceeded {intensity}: {exits}"
        assert len(exits) == len(crash_plan)
        assert len(starts) == len(crash_plan) + 1
    else:
        assert len(outcome) == 1, f"never gave up although {window} restarts within {period}: {exits}"
        exc = outcome[0]
        assert type(exc) is SupervisorGaveUp and exc.restarts == window
        assert str(exc.__cause__) == f"#{expected_give_up_at}"
        assert len(exits) == expected_give_up_at + 1          # nothing restarted after giving up
    # and every restart waited its backoff delay (streaks reset after a life >= reset_after)
    streak = 0
    for i in range(len(starts) - 1):
        lived = exits[i] - starts[i]
        if lived >= backoff.effective_reset_after:
            streak = 0
        assert starts[i + 1] - exits[i] == min(backoff.max, backoff.min * backoff.factor ** streak)
        streak += 1
