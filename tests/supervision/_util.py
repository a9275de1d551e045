"""Shared helpers for the supervision tests: event logs, scripted actors, log capture."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import trio

from supervision import ActorContext, SupervisorGaveUp, run_supervisor
from tests._logs import capture_logs  # noqa: F401 (re-exported for the tests here)


class Boom(Exception):
    """The error scripted actors crash with."""


@attrs.define
class EventLog:
    """``(trio time, actor name, what)`` tuples in the order they happened."""

    events: list[tuple[float, str, str]] = attrs.field(factory=list)

    def add(self, ctx_or_name: ActorContext | str, what: str) -> None:
        name = ctx_or_name if isinstance(ctx_or_name, str) else ctx_or_name.name
        self.events.append((trio.current_time(), name, what))

    def of(self, what: str) -> list[tuple[float, str]]:
        return [(t, n) for t, n, w in self.events if w == what]

    def times(self, name: str, what: str) -> list[float]:
        return [t for t, n, w in self.events if n == name and w == what]

    def since(self, t0: float) -> list[tuple[float, str, str]]:
        return [e for e in self.events if e[0] >= t0]


def scripted(
    log: EventLog,
    *,
    crash_after: dict[int, float] | None = None,
    return_after: dict[int, float] | None = None,
    ready_after: float = 0.0,
    ignore_stop: bool = False,
    stop_takes: float = 0.0,
) -> Callable[..., Any]:
    """An actor that logs ``start`` (once ready), then per run number (1 for the first call
    of this function, +1 per call, which is ``ctx.incarnation`` unless it runs under a
    restarted sub-supervisor) either crashes (``crash``) or returns (``return``) after the
    given delay, or runs until stopped.

    On a graceful stop request it logs ``stop`` (after ``stop_takes`` seconds of cleanup),
    unless ``ignore_stop``; if it is cancelled it logs ``cancelled``.
    """
    crash_after = crash_after or {}
    return_after = return_after or {}
    runs = 0

    async def run(ctx: ActorContext, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        nonlocal runs
        runs += 1
        n = runs
        try:
            if ready_after:
                await trio.sleep(ready_after)
            log.add(ctx, "start")
            task_status.started()
            scope = trio.CancelScope() if ignore_stop else ctx.stop_scope()
            with scope:
                if n in crash_after:
                    await trio.sleep(crash_after[n])
                    log.add(ctx, "crash")
                    raise Boom(f"{ctx.name} #{n}")
                if n in return_after:
                    await trio.sleep(return_after[n])
                    log.add(ctx, "return")
                    return
                await trio.sleep_forever()
            if stop_takes:
                await trio.sleep(stop_takes)
            log.add(ctx, "stop")
        except trio.Cancelled:
            log.add(ctx, "cancelled")
            raise

    return run


async def run_until_gave_up(*args: Any, limit: float = 10_000, **kwargs: Any) -> SupervisorGaveUp:
    """``run_supervisor(*args, **kwargs)``, which must raise :class:`SupervisorGaveUp` within
    ``limit`` virtual seconds; returns the exception (asserting it is not a group)."""
    with trio.fail_after(limit):
        try:
            await run_supervisor(*args, **kwargs)
        except SupervisorGaveUp as exc:
            assert type(exc) is SupervisorGaveUp
            return exc
    raise AssertionError("run_supervisor returned instead of giving up")
