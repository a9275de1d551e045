"""Chaos mode: kill random running actors while the service runs."""

from __future__ import annotations

import random
from collections.abc import Callable

import trio

from ._context import ActorContext


def chaos_monkey(
    kills_per_minute: float,
    *,
    rng: random.Random | None = None,
    spare: Callable[[str], bool] = lambda path: False,
) -> Callable[..., object]:
    """An actor body that kills a random running worker about ``kills_per_minute`` times
    a minute (exponential intervals), sparing itself and paths for which ``spare`` is true.

    Each kill makes the victim fail with ``ActorKilled``, exactly as a crash would.
    """
    if kills_per_minute <= 0:
        raise ValueError("kills_per_minute must be > 0")
    chooser = rng if rng is not None else random.Random()

    async def run(ctx: ActorContext, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        ctx.log.warning("chaos mode: killing a random actor about {n} times a minute", n=kills_per_minute)
        while True:
            await trio.sleep(chooser.expovariate(kills_per_minute / 60.0))
            victims = [i for i in ctx.registry.running() if i.path != ctx.path and not spare(i.path)]
            if not victims:
                continue
            victim = chooser.choice(victims)
            if ctx.registry.kill(victim.path, "chaos"):
                ctx.log.warning("chaos: killed {victim}", victim=victim.path)

    return run
