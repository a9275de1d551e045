"""Exceptions raised by the supervision layer."""

from __future__ import annotations


class SupervisorGaveUp(Exception):
    """A supervisor exceeded its restart intensity (or could not start) and stopped.

    Raised as a plain exception (never wrapped in an ``ExceptionGroup``), chained
    (``__cause__``) to the last error of the child that tipped it over.

    Attributes:
        supervisor: Path of the supervisor that gave up.
        child_id: The child whose exit exceeded the intensity.
        restarts: Restarts counted in the window when it gave up.
    """

    def __init__(self, supervisor: str, child_id: str, restarts: int, reason: str) -> None:
        super().__init__(f"supervisor {supervisor!r} gave up on child {child_id!r}: {reason}")
        self.supervisor = supervisor
        self.child_id = child_id
        self.restarts = restarts


class ActorKilled(Exception):
    """The failure an actor suffers when it is killed by name (chaos hook, tests)."""


class TooManyChildren(Exception):
    """A dynamic supervisor is at its cap of running children."""


class SupervisorNotRunning(Exception):
    """A dynamic supervisor was asked to start a child while it is not running."""
