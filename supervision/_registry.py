"""Where every actor of the tree can be found: state, restarts, last error, kill switch."""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import attrs

from ._errors import ActorKilled

if TYPE_CHECKING:
    from ._inbox import Inbox


class ActorState(enum.Enum):
    STARTING = "starting"
    RUNNING = "running"
    BACKOFF = "backoff"        # crashed, waiting to be restarted
    STOPPING = "stopping"
    STOPPED = "stopped"        # ended and not to be restarted
    FAILED = "failed"          # ended with an error and not to be restarted


@attrs.define(eq=False)
class ActorInfo:
    """What is known about one actor (all of its incarnations).

    Times ending in ``_at`` are wall-clock epoch seconds (for people); ``restarts`` counts
    restarts since the service started; ``crashes`` counts abnormal exits.
    """

    path: str
    is_supervisor: bool = False
    state: ActorState = ActorState.STARTING
    incarnation: int = 0
    restarts: int = 0
    crashes: int = 0
    last_error: str | None = None
    last_error_at: float | None = None
    started_at: float | None = None
    next_restart_in: float | None = None
    inbox: Inbox[Any] | None = None
    _kill: Callable[[BaseException], bool] | None = attrs.field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready view for ``/status``."""
        data: dict[str, Any] = {
            "path": self.path,
            "kind": "supervisor" if self.is_supervisor else "worker",
            "state": self.state.value,
            "incarnation": self.incarnation,
            "restarts": self.restarts,
            "crashes": self.crashes,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
            "started_at": self.started_at,
        }
        if self.inbox is not None:
            stats = self.inbox.statistics()
            data["inbox"] = {"queued": stats.queued, "in_flight": stats.in_flight,
                             "redelivering": stats.redelivering, "blocked_senders": stats.blocked_senders,
                             "dead_letters": stats.dead_letters_total}
        return data


class Registry:
    """All actors of one service by path (``root/feeds/rtds``).

    Supervisors register their children here; tests, ``/status``, metrics and the chaos
    monkey read it.  ``wall_clock`` is injectable for tests.
    """

    def __init__(self, *, wall_clock: Callable[[], float] = time.time) -> None:
        self._actors: dict[str, ActorInfo] = {}
        self.wall_clock = wall_clock
        #: Called as ``hook(info)`` after every restart (metrics counters attach here).
        self.on_restart: list[Callable[[ActorInfo], None]] = []

    def register(self, path: str, *, is_supervisor: bool = False, inbox: Inbox[Any] | None = None) -> ActorInfo:
        info = self._actors.get(path)
        if info is None:
            info = ActorInfo(path=path, is_supervisor=is_supervisor, inbox=inbox)
            self._actors[path] = info
        return info

    def unregister(self, path: str) -> None:
        self._actors.pop(path, None)

    def get(self, path: str) -> ActorInfo | None:
        return self._actors.get(path)

    def find(self, name: str) -> ActorInfo | None:
        """An actor by full path, or by a unique last path component (``"rtds"``)."""
        info = self._actors.get(name)
        if info is not None:
            return info
        matches = [i for p, i in self._actors.items() if p.rsplit("/", 1)[-1] == name]
        return matches[0] if len(matches) == 1 else None

    def __iter__(self) -> Iterator[ActorInfo]:
        return iter(list(self._actors.values()))

    def running(self, *, workers_only: bool = True) -> list[ActorInfo]:
        return [i for i in self._actors.values()
                if i.state is ActorState.RUNNING and i._kill is not None
                and not (workers_only and i.is_supervisor)]

    def kill(self, name: str, reason: str = "killed") -> bool:
        """Make a running actor fail as if it raised :class:`ActorKilled`.

        Returns False if no running actor has that name.
        """
        info = self.find(name)
        if info is None or info._kill is None:
            return False
        return info._kill(ActorKilled(f"{info.path}: {reason}"))

    def snapshot(self) -> list[dict[str, Any]]:
        return [info.as_dict() for info in sorted(self._actors.values(), key=lambda i: i.path)]
