"""Status log actor: one line per interval telling an operator the tree is alive."""

from __future__ import annotations

import trio

from supervision import ActorContext, ActorState


def status_logger(interval: float):  # noqa: ANN201 - returns an actor body
    """An actor that logs, every ``interval`` seconds, how many actors run and how many
    restarts happened since the previous line.

    Cancellation: it holds no state worth saving; a stop request ends it at once.
    Errors: none expected; a crash is restarted by its supervisor like any other.
    """

    async def run(ctx: ActorContext, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        last_restarts = sum(info.restarts for info in ctx.registry)
        with ctx.stop_scope():
            while True:
                await trio.sleep(interval)
                actors = list(ctx.registry)
                running = sum(1 for i in actors if i.state is ActorState.RUNNING)
                restarts = sum(i.restarts for i in actors)
                not_running = [i.path for i in actors if i.state in (ActorState.BACKOFF, ActorState.FAILED)]
                ctx.log.info(
                    "status: {running}/{total} actors running, {new} restarts in the last {interval:g} s{down}",
                    running=running, total=len(actors), new=restarts - last_restarts, interval=interval,
                    down=f"; not running: {', '.join(not_running)}" if not_running else "")
                last_restarts = restarts

    return run
