"""Child and supervisor specifications (OTP semantics, Akka-style backoff)."""

from __future__ import annotations

import enum
import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from ._inbox import Inbox


class Restart(enum.Enum):
    """When a child is restarted (OTP restart types)."""

    #: Always restarted, whether it crashed or returned.
    PERMANENT = "permanent"
    #: Restarted only after an abnormal exit (an exception); a normal return ends it.
    TRANSIENT = "transient"
    #: Never restarted, not even when a sibling's death under one_for_all/rest_for_one stops it.
    TEMPORARY = "temporary"


class Strategy(enum.Enum):
    """Which children a supervisor restarts when one of them exits."""

    #: Only the child that exited.
    ONE_FOR_ONE = "one_for_one"
    #: Every child: the others are stopped (reverse order), then all restart in start order.
    ONE_FOR_ALL = "one_for_all"
    #: The child that exited and every child started after it.
    REST_FOR_ONE = "rest_for_one"


def _non_negative(instance: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


@attrs.frozen
class Backoff:
    """Delay before a restart, growing with consecutive failures (Akka ``restartWithBackoff``).

    The n-th consecutive restart (n = 0, 1, ...) waits
    ``min(max, min * factor ** n) * (1 + U(0, jitter))``.  The count of consecutive failures
    resets when an incarnation lived at least ``reset_after`` seconds
    (default ``(min + max) / 2``).
    """

    min: float = attrs.field(default=0.5, validator=_non_negative)
    max: float = attrs.field(default=30.0, validator=_non_negative)
    factor: float = attrs.field(default=2.0, validator=attrs.validators.ge(1.0))
    jitter: float = attrs.field(default=0.2, validator=_non_negative)
    reset_after: float | None = None

    @property
    def effective_reset_after(self) -> float:
        """The lifetime after which the failure count resets."""
        return self.reset_after if self.reset_after is not None else (self.min + self.max) / 2

    def delay(self, failures_in_row: int, rng: random.Random) -> float:
        """The delay before restart number ``failures_in_row`` (0-based) of a streak."""
        base = min(self.max, self.min * self.factor ** min(failures_in_row, 64))
        if self.jitter:
            base *= 1.0 + rng.uniform(0.0, self.jitter)
        return base


#: ``async def run(ctx, *, task_status=trio.TASK_STATUS_IGNORED) -> None``
RunFunction = Callable[..., Awaitable[None]]


@attrs.frozen
class ChildSpec:
    """How to run, restart and stop one child of a supervisor.

    Attributes:
        id: The child's name, unique among its siblings; its path in the tree is
            ``parent_path/id``.
        run: ``async def run(ctx, *, task_status)``. It must call ``task_status.started()``
            once ready (server bound, connection pool open, ...); raising before that
            fails the supervisor's initial start.
        restart: When it is restarted.
        shutdown: Seconds between the graceful stop request and cancellation;
            ``0`` cancels at once (OTP ``brutal_kill``); ``None`` waits forever (the
            default for sub-supervisors, so a subtree can stop in order).
        backoff: Delay schedule between restarts.
        inbox: The child's mailbox, owned by the supervisor: each incarnation receives
            from a fresh clone, so what is queued survives restarts.
        start_timeout: A (re)started child that does not report readiness within this
            many seconds is treated as failed (``None``: no limit).
    """

    id: str = attrs.field(validator=attrs.validators.min_len(1))
    run: RunFunction
    restart: Restart = Restart.PERMANENT
    shutdown: float | None = 5.0
    backoff: Backoff = Backoff()
    inbox: Inbox[Any] | None = None
    start_timeout: float | None = 60.0
    is_supervisor: bool = False


@attrs.frozen
class SupervisorSpec:
    """Restart strategy and intensity of one supervisor.

    More than ``intensity`` restarts within ``period`` seconds make the supervisor stop all
    its children and fail itself with :class:`SupervisorGaveUp`, so its own parent decides
    (escalation).  Intensity is the tolerated burst, period the sustained rate; restart
    counts multiply down the tree, so keep upper levels low.  Backoff sleeps count inside
    the period: choose the intensity against the backoff schedule.
    """

    strategy: Strategy = Strategy.ONE_FOR_ONE
    intensity: int = attrs.field(default=3, validator=attrs.validators.ge(0))
    period: float = attrs.field(default=30.0, validator=attrs.validators.gt(0))
