"""Chaos: the Nobel replay while pipeline, frontend and feed actors are killed again and again.

A client that reconnects and resumes whenever its connection dies must still receive every
whale exactly once, in order.
"""

from __future__ import annotations

import random

import trio

from actors import ServiceOptions

from ._client import SAMPLE, Client, expected_whales
from .test_e2e import replayed_and_quiet, service, url

VICTIMS = ("pipeline/", "frontend/", "feeds/replay", "catalog")


async def test_every_whale_exactly_once_while_actors_are_killed() -> None:
    expected = expected_whales()
    rng = random.Random(7)
    kills: list[str] = []
    async with service(ServiceOptions(seed=7, replay=SAMPLE, speed=3000)) as svc:
        client = Client()
        async with trio.open_nursery() as nursery:

            async def chaos() -> None:
                while not svc.replay_state.done.is_set():  # type: ignore[union-attr]
                    await trio.sleep(rng.uniform(0.02, 0.2))
                    running = [i.path for i in svc.registry.running() if any(v in i.path for v in VICTIMS)]
                    if running:
                        victim = rng.choice(running)
                        if svc.registry.kill(victim, "chaos test"):
                            kills.append(victim)

            async def follow() -> None:
                while True:
                    port = svc.frontend_stats.bound_port
                    try:
                        await client.session(f"ws://127.0.0.1:{port}",
                                             requests=[{"type": "resume", "data": {"since": client.last_seq}}])
                    except (OSError, trio.TooSlowError, Exception):  # noqa: BLE001 - reconnect after any failure
                        pass
                    await trio.sleep(0.05)

            nursery.start_soon(chaos)
            nursery.start_soon(follow)
            await replayed_and_quiet(svc)
            with trio.fail_after(20):
                while client.last_seq < svc.hub.seq:
                    await trio.sleep(0.05)
            nursery.cancel_scope.cancel()
        restarts = sum(info.restarts for info in svc.registry)
    got = [m["data"]["trade_id"] for m in client.whales()]
    assert len(kills) >= 25, kills
    assert restarts >= 20
    assert client.connections >= 2, "sessions were killed: the client had to reconnect"
    assert got == expected, f"missing {set(expected) - set(got)}; duplicates {len(got) - len(set(got))}"
