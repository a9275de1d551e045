"""The supervisor: an OTP-style event loop that starts, watches, restarts and stops children."""

from __future__ import annotations

import enum
import math
import random
from collections.abc import Sequence
from typing import Any

import attrs
import trio
from loguru import logger

from ._context import ActorContext
from ._errors import SupervisorGaveUp
from ._registry import ActorInfo, ActorState, Registry
from ._spec import ChildSpec, Restart, Strategy, SupervisorSpec


class _Ending(enum.Enum):
    RETURNED = "returned"      # run() returned normally
    FAILED = "failed"          # run() raised (or was killed)
    TERMINATED = "terminated"  # stopped by its supervisor


@attrs.frozen
class _Exited:
    child: _Child
    incarnation: int
    ending: _Ending
    error: BaseException | None
    lived: float


@attrs.frozen
class _RestartDue:
    children: tuple[_Child, ...]
    token: object


class _StopRequested:
    pass


class _StartFailed:
    """Returned through ``task_status.started`` when a child ended before it was ready."""

    def __init__(self, exited: _Exited) -> None:
        self.exited = exited


def unwrap_group(exc: BaseException) -> BaseException:
    """Peel single-member exception groups so logs show the real error."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def describe(exc: BaseException | None) -> str:
    if exc is None:
        return "returned"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@attrs.define(eq=False)
class _Child:
    spec: ChildSpec
    info: ActorInfo
    incarnation: int = 0
    running: bool = False            # an incarnation task is alive
    scope: trio.CancelScope | None = None
    ctx: ActorContext | None = None
    done: trio.Event | None = None
    started_time: float = 0.0        # trio clock, last start
    failures_in_row: int = 0
    restart_token: object | None = None
    terminating: bool = False


class Supervisor:
    """Runs a list of children under one strategy; see :func:`run_supervisor`."""

    def __init__(
        self,
        spec: SupervisorSpec,
        children: Sequence[ChildSpec],
        *,
        path: str,
        registry: Registry,
        rng: random.Random | None = None,
    ) -> None:
        ids = [c.id for c in children]
        if len(set(ids)) != len(ids):
            raise ValueError(f"duplicate child ids under {path!r}: {ids}")
        self.spec = spec
        self.path = path
        self.registry = registry
        self.rng = rng if rng is not None else random.Random()
        self._children = [
            _Child(spec=c, info=registry.register(f"{path}/{c.id}", is_supervisor=c.is_supervisor, inbox=c.inbox))
            for c in children
        ]
        self._restarts: list[float] = []  # trio times of restarts inside the window
        self._events_send, self._events_recv = trio.open_memory_channel[Any](math.inf)
        self._nursery: trio.Nursery | None = None
        self._log = logger.bind(actor=path)

    # -- public ----------------------------------------------------------------------

    def request_stop(self) -> None:
        """Ask the supervisor to stop its children in reverse order and return."""
        self._events_send.send_nowait(_StopRequested())

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start the children in order, then supervise them until stopped.

        Returns after :meth:`request_stop` once every child has stopped.

        Raises:
            SupervisorGaveUp: a child could not start, or restarts exceeded the intensity;
                every child has been stopped first.  Never an ``ExceptionGroup``.
        """
        gave_up: SupervisorGaveUp | None = None
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                for child in self._children:
                    result = await self._start(child)
                    if isinstance(result, _StartFailed):
                        error = result.exited.error
                        self._log.bind(child=child.spec.id).error(
                            "child {child} failed to start: {err}", child=child.spec.id, err=describe(error))
                        child.info.state = ActorState.FAILED
                        await self._stop_all()
                        gave_up = SupervisorGaveUp(self.path, child.spec.id, 0, "it failed to start")
                        gave_up.__cause__ = error
                        break
                else:
                    task_status.started()
                    gave_up = await self._supervise()
            finally:
                nursery.cancel_scope.cancel()
        if gave_up is not None:
            raise gave_up

    # -- starting ----------------------------------------------------------------------

    async def _start(self, child: _Child) -> _StartFailed | None:
        """Start one incarnation and wait until it is ready (or ended, or timed out)."""
        child.restart_token = None
        child.info.state = ActorState.STARTING
        child.info.next_restart_in = None
        assert self._nursery is not None
        timeout = child.spec.start_timeout
        with trio.move_on_after(math.inf if timeout is None else timeout):
            result: _StartFailed | None = await self._nursery.start(self._incarnation, child)
            return result
        # Not ready in time: the cancelled start took the incarnation down with it.
        error = TimeoutError(f"not ready within {timeout} s")
        return _StartFailed(_Exited(child, child.incarnation, _Ending.FAILED, error,
                                    trio.current_time() - child.started_time))

    async def _incarnation(self, child: _Child, *, task_status: trio.TaskStatus[Any]) -> None:
        """One run of one child; reports how it ended to the supervisor loop."""
        child.incarnation += 1
        incarnation = child.incarnation
        info = child.info
        info.incarnation = incarnation
        ctx = ActorContext(path=info.path, incarnation=incarnation, inbox=None, registry=self.registry, info=info)
        inbox = child.spec.inbox
        if inbox is not None:
            ctx.inbox = inbox._open(ctx.stopping)
        scope = trio.CancelScope()
        child.scope, child.ctx, child.done = scope, ctx, trio.Event()
        child.running, child.terminating = True, False
        child.started_time = trio.current_time()
        info.started_at = self.registry.wall_clock()

        def kill(exc: BaseException) -> bool:
            if ctx._killed is not None or scope.cancel_called:
                return False
            ctx._killed = exc
            scope.cancel()
            return True

        info._kill = kill
        ready = False

        class _Status:
            def started(self, value: Any = None) -> None:
                nonlocal ready
                ready = True
                info.state = ActorState.RUNNING
                task_status.started(None)

        ending: _Ending | None = None
        error: BaseException | None = None
        try:
            try:
                with scope:
                    await child.spec.run(ctx, task_status=_Status())
                if scope.cancelled_caught:
                    if ctx._killed is not None:
                        ending, error = _Ending.FAILED, ctx._killed
                    else:
                        ending = _Ending.TERMINATED
                else:
                    ending = _Ending.RETURNED
            except Exception as exc:  # noqa: BLE001 - a crash is data for the supervisor
                ending, error = _Ending.FAILED, unwrap_group(exc)
        finally:
            info._kill = None
            child.running = False
            if inbox is not None and ctx.inbox is not None:
                inbox._close(ctx.inbox, processed=ending is _Ending.RETURNED, crashed=ending is _Ending.FAILED)
            child.done.set()
            if ending is not None:
                exited = _Exited(child, incarnation, ending, error, trio.current_time() - child.started_time)
                if ready:
                    self._events_send.send_nowait(exited)
                else:
                    # never became ready: whoever started it learns it from started()'s value
                    task_status.started(_StartFailed(exited))

    # -- the loop ------------------------------------------------------------------------

    async def _supervise(self) -> SupervisorGaveUp | None:
        async for event in self._events_recv:
            if isinstance(event, _StopRequested):
                await self._stop_all()
                return None
            if isinstance(event, _RestartDue):
                await self._restart_group(event)
                continue
            assert isinstance(event, _Exited)
            gave_up = await self._on_exit(event)
            if gave_up is not None:
                await self._stop_all()
                return gave_up
        return None  # pragma: no cover - the channel never closes

    async def _on_exit(self, event: _Exited) -> SupervisorGaveUp | None:
        child = event.child
        if event.incarnation != child.incarnation or child.terminating or event.ending is _Ending.TERMINATED:
            return None  # we stopped it ourselves, or a stale report
        spec = child.spec
        info = child.info
        log = self._log.bind(child=spec.id, incarnation=event.incarnation)
        if event.ending is _Ending.FAILED:
            assert event.error is not None
            info.crashes += 1
            info.last_error = describe(event.error)
            info.last_error_at = self.registry.wall_clock()
            log.opt(exception=event.error).error("actor {path} crashed: {err}", path=info.path, err=info.last_error)
        else:
            log.info("actor {path} returned", path=info.path)

        if spec.restart is Restart.TEMPORARY or (spec.restart is Restart.TRANSIENT and event.ending is _Ending.RETURNED):
            info.state = ActorState.FAILED if event.ending is _Ending.FAILED else ActorState.STOPPED
            self._children.remove(child)
            return None

        now = trio.current_time()
        # OTP add_restart/3: keep restarts R with R >= Now - Period (the window is inclusive)
        self._restarts = [t for t in self._restarts if t >= now - self.spec.period]
        self._restarts.append(now)
        if len(self._restarts) > self.spec.intensity:
            info.state = ActorState.FAILED
            log.error(
                "supervisor {sup} gives up: {n} restarts within {p} s exceed its intensity {i}",
                sup=self.path, n=len(self._restarts), p=self.spec.period, i=self.spec.intensity)
            gave_up = SupervisorGaveUp(
                self.path, spec.id, len(self._restarts),
                f"more than {self.spec.intensity} restarts within {self.spec.period} s")
            gave_up.__cause__ = event.error
            return gave_up

        if event.lived >= spec.backoff.effective_reset_after:
            child.failures_in_row = 0
        delay = spec.backoff.delay(child.failures_in_row, self.rng)
        child.failures_in_row += 1

        group = self._affected(child)
        for other in reversed(group):
            if other is not child and other.running:
                await self._stop_child(other)
        # temporary siblings stopped by the strategy are not restarted
        for other in group:
            if other is not child and other.spec.restart is Restart.TEMPORARY:
                other.info.state = ActorState.STOPPED
                self._children.remove(other)
        group = [c for c in group if c in self._children]
        token = object()
        for member in group:
            member.restart_token = token
            member.info.state = ActorState.BACKOFF
            member.info.next_restart_in = delay
        log.info("restarting {ids} in {delay:.3f} s", ids=[m.spec.id for m in group], delay=delay)
        assert self._nursery is not None
        self._nursery.start_soon(self._restart_later, delay, _RestartDue(tuple(group), token))
        return None

    def _affected(self, child: _Child) -> list[_Child]:
        strategy = self.spec.strategy
        if strategy is Strategy.ONE_FOR_ONE:
            return [child]
        if strategy is Strategy.ONE_FOR_ALL:
            return list(self._children)
        index = self._children.index(child)
        return self._children[index:]

    async def _restart_later(self, delay: float, due: _RestartDue) -> None:
        await trio.sleep(delay)
        self._events_send.send_nowait(due)

    async def _restart_group(self, due: _RestartDue) -> None:
        for child in due.children:
            if child.restart_token is not due.token or child.running or child not in self._children:
                continue
            child.info.restarts += 1
            for hook in self.registry.on_restart:
                hook(child.info)
            result = await self._start(child)
            if isinstance(result, _StartFailed):
                # a failed restart is an ordinary exit; the rest of the group waits for its decision
                self._events_send.send_nowait(result.exited)
                break

    # -- stopping ----------------------------------------------------------------------

    async def _stop_child(self, child: _Child) -> None:
        """Graceful stop request, then cancel after the child's shutdown timeout."""
        if not child.running or child.ctx is None or child.scope is None or child.done is None:
            return
        child.terminating = True
        child.info.state = ActorState.STOPPING
        shutdown = child.spec.shutdown
        if shutdown is None or shutdown > 0:
            child.ctx._request_stop()
            with trio.move_on_after(math.inf if shutdown is None else shutdown):
                await child.done.wait()
        if child.running:
            child.scope.cancel()
            await child.done.wait()
        child.info.state = ActorState.STOPPED

    async def _stop_all(self) -> None:
        for child in reversed(self._children):
            child.restart_token = None
            if child.running:
                await self._stop_child(child)
            elif child.info.state is not ActorState.FAILED:  # keep the culprit's FAILED
                child.info.state = ActorState.STOPPED


def supervisor_child(
    id: str,
    spec: SupervisorSpec,
    children: Sequence[ChildSpec],
    *,
    restart: Restart = Restart.PERMANENT,
    shutdown: float | None = None,
    backoff: Any = None,
    rng: random.Random | None = None,
) -> ChildSpec:
    """A :class:`ChildSpec` that runs a sub-supervisor over ``children``.

    Each incarnation builds a fresh :class:`Supervisor` (fresh restart window) at
    ``ctx.path``; a graceful stop request stops its children in reverse order.
    """

    async def run_subtree(ctx: ActorContext, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        sup = Supervisor(spec, children, path=ctx.path, registry=ctx.registry, rng=rng)
        gave_up: SupervisorGaveUp | None = None
        async with trio.open_nursery() as nursery:
            async def forward_stop() -> None:
                await ctx.stopping.wait()
                sup.request_stop()

            nursery.start_soon(forward_stop)
            try:
                await sup.run(task_status=task_status)
            except SupervisorGaveUp as exc:
                gave_up = exc
            nursery.cancel_scope.cancel()
        if gave_up is not None:
            raise gave_up  # outside the nursery: a plain exception, not a group

    extra: dict[str, Any] = {}
    if backoff is not None:
        extra["backoff"] = backoff
    return ChildSpec(id=id, run=run_subtree, restart=restart, shutdown=shutdown, is_supervisor=True, **extra)


async def run_supervisor(
    spec: SupervisorSpec,
    children: Sequence[ChildSpec],
    *,
    path: str = "root",
    registry: Registry | None = None,
    rng: random.Random | None = None,
    stop: trio.Event | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run a (root) supervisor until ``stop`` is set, then stop its tree in order.

    Raises:
        SupervisorGaveUp: see :meth:`Supervisor.run`.
    """
    registry = registry if registry is not None else Registry()
    info = registry.register(path, is_supervisor=True)
    sup = Supervisor(spec, children, path=path, registry=registry, rng=rng)
    async with trio.open_nursery() as nursery:
        if stop is not None:
            async def forward_stop() -> None:
                await stop.wait()
                sup.request_stop()

            nursery.start_soon(forward_stop)

        @attrs.define
        class _Forward:
            def started(self, value: Any = None) -> None:
                info.state = ActorState.RUNNING
                info.started_at = registry.wall_clock()
                task_status.started()

        gave_up: SupervisorGaveUp | None = None
        try:
            await sup.run(task_status=_Forward())
        except SupervisorGaveUp as exc:
            gave_up = exc
        nursery.cancel_scope.cancel()
    if gave_up is not None:
        info.state = ActorState.FAILED
        info.last_error = describe(gave_up)
        raise gave_up  # outside the nursery: a plain exception, not a group
    info.state = ActorState.STOPPED
