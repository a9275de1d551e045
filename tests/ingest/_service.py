"""Running the real service tree against the fake Polymarket, for ingestion tests."""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio

from actors import Service, ServiceOptions, build_service
from config import load_settings
from protocols.polymarket import PriceTick, Trade
from supervision import run_supervisor
from tests.fakes import FakePolymarket


def fake_env(fake: FakePolymarket, **overrides: str) -> dict[str, str]:
    env = {
        "POLYMARKET_RTDS_URL": fake.rtds_url, "POLYMARKET_WS_URL": fake.clob_url,
        "GAMMA_API_URL": fake.gamma_url, "DATA_API_URL": fake.data_api_url,
        "OPENROUTER_BASE_URL": "http://127.0.0.1:9", "STATUS_LOG_INTERVAL": "0",
        "BACKFILL_SETTLE_SECONDS": "0", "BACKFILL_LOOKBACK_MINUTES": "10", "RTDS_SILENCE_TIMEOUT": "2",
        "CLOB_MAX_CONNECTIONS": "4", "WS_SERVER_PORT": "0", "HTTP_PORT": "0",
    }
    env.update(overrides)
    return env


@attrs.define
class Running:
    service: Service
    trades: trio.MemoryReceiveChannel[Trade]
    ticks: trio.MemoryReceiveChannel[PriceTick]
    received: list[Trade] = attrs.field(factory=list)

    async def collect_until(self, predicate: Any, timeout: float = 15.0) -> list[Trade]:
        """Receive trades until ``predicate(received)`` holds (real time bound: sockets)."""
        with trio.fail_after(timeout):
            while not predicate(self.received):
                self.received.append(await self.trades.receive())
        return self.received

    async def settle(self, seconds: float = 0.3) -> list[Trade]:
        """Receive whatever else arrives within ``seconds`` (to catch duplicates)."""
        with trio.move_on_after(seconds):
            while True:
                self.received.append(await self.trades.receive())
        return self.received


@asynccontextmanager
async def running_service(env: dict[str, str], options: ServiceOptions | None = None) -> AsyncIterator[Running]:
    settings = load_settings(env, env_file=None)
    trades_send, trades_recv = trio.open_memory_channel[Trade](100_000)
    ticks_send, ticks_recv = trio.open_memory_channel[PriceTick](100_000)
    service = build_service(settings, options or ServiceOptions(seed=1), trades_sink=trades_send,
                            ticks_sink=ticks_send)
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(functools.partial(run_supervisor, service.spec, service.children,
                                              registry=service.registry, rng=service.rng, stop=stop))
        try:
            yield Running(service, trades_recv, ticks_recv)
        finally:
            stop.set()


def now_s() -> int:
    return int(time.time())
