"""The context an actor incarnation runs with."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs
import trio
from loguru import logger

if TYPE_CHECKING:
    from loguru import Logger

    from ._inbox import InboxReceiver
    from ._registry import ActorInfo, Registry


@attrs.define(eq=False)
class ActorContext:
    """Handed to ``run(ctx, *, task_status)`` for one incarnation of one actor.

    Attributes:
        path: The actor's place in the tree, e.g. ``root/feeds/rtds``.
        incarnation: 1 for the first start, +1 per restart.
        inbox: The actor's mailbox reader, or None if its spec has no inbox.
        stopping: Set when the supervisor asks the actor to stop gracefully; after the
            child's shutdown timeout it is cancelled anyway.
        registry: The service's actor registry.
        log: A loguru logger bound with ``actor=path``.
    """

    path: str
    incarnation: int
    inbox: InboxReceiver[Any] | None
    registry: Registry
    info: ActorInfo
    stopping: trio.Event = attrs.field(factory=trio.Event)
    log: Logger = attrs.field(default=None)
    _stop_scopes: list[trio.CancelScope] = attrs.field(factory=list)
    _killed: BaseException | None = None

    def __attrs_post_init__(self) -> None:
        if self.log is None:
            self.log = logger.bind(actor=self.path)

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    def stop_scope(self) -> trio.CancelScope:
        """A cancel scope that is cancelled when a graceful stop is requested.

        Wrap work that may simply be abandoned on shutdown (a network read loop) in it::

            with ctx.stop_scope():
                await read_forever()
            # reached on a stop request: flush and return
        """
        scope = trio.CancelScope()
        if self.stopping.is_set():
            scope.cancel()
        self._stop_scopes.append(scope)
        return scope

    def _request_stop(self) -> None:
        self.stopping.set()
        for scope in self._stop_scopes:
            scope.cancel()
        if self.inbox is not None:
            self.inbox._stop_requested()
