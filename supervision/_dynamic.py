"""A supervisor for temporary children started at run time (OTP ``simple_one_for_one``)."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from loguru import logger

from ._context import ActorContext
from ._errors import SupervisorNotRunning, TooManyChildren
from ._registry import ActorState, Registry
from ._supervisor import describe, unwrap_group


class DynamicSupervisor:
    """Runs temporary children started at run time, e.g. one session per WebSocket client.

    Build it once, run :meth:`run` as a child of an ordinary supervisor, and hand the object
    to whoever starts children.  Children are never restarted; a crash is contained (logged
    with its traceback and counted), never propagated.  At most ``max_children`` run at once.
    If the dynamic supervisor itself is stopped or restarted, its children are stopped
    (graceful request, then cancelled after ``shutdown`` seconds).

    The object also offers ``start_soon(fn, *args)``, so it can be passed as a
    ``handler_nursery`` to ``trio.serve_listeners``/``trio_websocket.serve_websocket``.
    """

    def __init__(self, *, max_children: int, shutdown: float = 2.0) -> None:
        if max_children < 1:
            raise ValueError("max_children must be >= 1")
        self.max_children = max_children
        self.shutdown = shutdown
        self._nursery: trio.Nursery | None = None
        self._ctx: ActorContext | None = None
        self._children: dict[str, ActorContext] = {}
        self._ids = itertools.count(1)
        self.started_total = 0
        self.crashed_total = 0
        self.rejected_total = 0

    @property
    def running(self) -> bool:
        return self._nursery is not None

    def __len__(self) -> int:
        return len(self._children)

    async def run(self, ctx: ActorContext, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The actor body. Cancellation or a stop request stops every child."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery, self._ctx = nursery, ctx
                task_status.started()
                await ctx.stopping.wait()
                self._nursery = None
                await self._stop_children()
                nursery.cancel_scope.cancel()
        finally:
            self._nursery = None
            for path in list(self._children):
                ctx.registry.unregister(path)
            self._children.clear()

    async def _stop_children(self) -> None:
        for child_ctx in list(self._children.values()):
            child_ctx._request_stop()
        with trio.move_on_after(self.shutdown):
            while self._children:
                await trio.sleep(0.01)

    def start_child(self, run: Callable[..., Awaitable[None]], *args: Any, name: str | None = None) -> str:
        """Start ``await run(ctx, *args)`` as a temporary child; returns its path.

        Raises:
            SupervisorNotRunning: the dynamic supervisor is not running.
            TooManyChildren: ``max_children`` children are running already.
        """
        nursery, parent = self._nursery, self._ctx
        if nursery is None or parent is None:
            raise SupervisorNotRunning("dynamic supervisor is not running")
        if len(self._children) >= self.max_children:
            self.rejected_total += 1
            raise TooManyChildren(f"{parent.path} already runs {len(self._children)} children")
        path = f"{parent.path}/{name or 'child'}-{next(self._ids)}"
        registry: Registry = parent.registry
        info = registry.register(path)
        info.state = ActorState.RUNNING
        info.incarnation = 1
        info.started_at = registry.wall_clock()
        ctx = ActorContext(path=path, incarnation=1, inbox=None, registry=registry, info=info)
        scope = trio.CancelScope()

        def kill(exc: BaseException) -> bool:
            if ctx._killed is not None:
                return False
            ctx._killed = exc
            scope.cancel()
            return True

        info._kill = kill
        self._children[path] = ctx
        self.started_total += 1
        nursery.start_soon(self._run_child, ctx, scope, run, args, name=path)
        return path

    def start_soon(self, fn: Callable[..., Awaitable[None]], *args: Any, name: object = None) -> None:
        """Nursery-compatible: run ``fn(*args)`` as a contained temporary child.

        At the cap the call is refused with a warning (the caller's resource, e.g. a
        socket, is its own to close: prefer :meth:`start_child` where you can react).
        """
        async def adapter(ctx: ActorContext) -> None:
            await fn(*args)

        try:
            self.start_child(adapter, name=str(name) if isinstance(name, str) else None)
        except (TooManyChildren, SupervisorNotRunning) as exc:
            logger.warning("not starting {fn}: {err}", fn=getattr(fn, "__name__", fn), err=describe(exc))
            raise

    async def _run_child(self, ctx: ActorContext, scope: trio.CancelScope,
                         run: Callable[..., Awaitable[None]], args: tuple[Any, ...]) -> None:
        info = ctx.info
        try:
            with scope:
                await run(ctx, *args)
            if scope.cancelled_caught and ctx._killed is not None:
                raise ctx._killed
            info.state = ActorState.STOPPED
        except Exception as exc:  # noqa: BLE001 - contained: one child never takes the others down
            error = unwrap_group(exc)
            self.crashed_total += 1
            info.crashes += 1
            info.state = ActorState.FAILED
            info.last_error = describe(error)
            info.last_error_at = ctx.registry.wall_clock()
            ctx.log.opt(exception=error).error("temporary actor {path} crashed: {err}", path=ctx.path,
                                               err=info.last_error)
        finally:
            info._kill = None
            self._children.pop(ctx.path, None)
            ctx.registry.unregister(ctx.path)
