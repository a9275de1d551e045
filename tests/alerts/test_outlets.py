"""Outlet actors against the loopback fakes: rules, digests, retries, pauses, exactly-once."""

from __future__ import annotations

import functools
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio.testing

from actors.alerts import OutletConfig, OutletState, build_alerts
from actors.alerts._outlet import outlet_actor
from actors.alerts._rules import AlertRules
from actors.directory import MarketDirectory
from actors.hub import ClientQueue, HubState
from actors.messages import Broadcast
from storage import AlertDeliveryRow
from supervision import ChildSpec, Registry, SupervisorSpec, run_supervisor
from tests.fakes.alert_outlets import (
    open_fake_discord,
    open_fake_slack,
    open_fake_telegram,
    open_fake_webhook_receiver,
)


@pytest.fixture
def io_clock() -> trio.testing.MockClock:
    """Virtual time that jumps only once every task has been blocked for 10 ms of real time, so
    loopback HTTP to the fakes completes before the clock moves."""
    return trio.testing.MockClock(autojump_threshold=0.01)


TITLE = "Will María Corina Machado win the Nobel Peace Prize in 2025? (Yes/No) [v2] #1 - 50% off!"


def whale(n: int, amount: float = 25_000.0, wallet: str = "0xwallet") -> Broadcast:
    data = {"market": TITLE, "side": "YES", "amount": amount, "price": 0.71, "timestamp": "2025-10-10T08:41:12Z",
            "action": "BUY", "outcome": "Yes", "condition_id": "0xabc", "slug": "machado", "event_slug": "nobel",
            "url": "https://polymarket.com/event/nobel", "wallet": wallet, "trader": "whale_1", "tier": "big_whale",
            "trade_id": f"t{n}", "transaction_hash": f"0x{n:064x}"}
    return Broadcast("whale_trade", data, market="0xabc", amount=amount, key=f"whale:t{n}")


class Rig:
    """An outlet under a supervisor, fed by a real hub; rows it records are collected."""

    def __init__(self, config: OutletConfig, hub: HubState, loaded: set[str] | None = None) -> None:
        self.config = config
        self.hub = hub
        self.rows: list[AlertDeliveryRow] = []
        self.store_send, self.store_recv = trio.open_memory_channel[Any](10_000)
        self.loaded = loaded
        self.registry = Registry()

    async def load(self, name: str) -> set[str]:
        return set(self.loaded or ())

    def collect(self) -> list[AlertDeliveryRow]:
        while True:
            try:
                self.rows.append(self.store_recv.receive_nowait())
            except trio.WouldBlock:
                return self.rows

    def statuses(self) -> dict[str, str]:
        return {row.alert_key: row.status for row in self.collect()}


@asynccontextmanager
async def running(rig: Rig, *, stop_timeout: float = 5) -> AsyncIterator[OutletState]:
    part = build_alerts([rig.config], rig.hub, directory=MarketDirectory(), store=rig.store_send,
                        load_delivered=rig.load if rig.loaded is not None else None, rng=random.Random(1))
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(functools.partial(run_supervisor, SupervisorSpec(), [part.child], registry=rig.registry,
                                              rng=random.Random(2), stop=stop))
        try:
            yield part.states[0]
        finally:
            stop.set()


async def settle(seconds: float = 1.0) -> None:
    await trio.sleep(seconds)


@pytest.mark.parametrize("kind", ["discord", "slack", "webhook"])
async def test_each_whale_reaches_the_outlet_once_in_its_real_format(io_clock: trio.testing.MockClock,
                                                                     kind: str) -> None:
    opener = {"discord": open_fake_discord, "slack": open_fake_slack, "webhook": open_fake_webhook_receiver}[kind]
    async with opener() as discord:
        hub = HubState()
        rig = Rig(OutletConfig("d", kind, discord.webhook_url), hub)
        async with running(rig) as state:
            for n in range(3):
                hub.publish(whale(n))
            hub.publish(Broadcast("market_update", {"condition_id": "0xabc"}, market="0xabc"))
            hub.publish(whale(1))                                   # a repeat key: the hub drops it
            await discord.wait_accepted(3)
            await settle()
    assert discord.format_errors == []
    assert len(discord.accepted) == 3 and state.stats.sent == 3
    assert rig.statuses() == {"whale:t0": "delivered", "whale:t1": "delivered", "whale:t2": "delivered"}


async def test_rules_skip_what_the_outlet_does_not_want(io_clock: trio.testing.MockClock) -> None:
    async with open_fake_discord() as discord:
        hub = HubState()
        rules = AlertRules(min_amount=50_000, wallets=("0xvip",))
        rig = Rig(OutletConfig("d", "discord", discord.webhook_url, rules=rules), hub)
        async with running(rig) as state:
            hub.publish(whale(1, 20_000))
            hub.publish(whale(2, 60_000))
            hub.publish(whale(3, 10_000, wallet="0xVIP"))
            await discord.wait_accepted(2)
            await settle()
    assert len(discord.accepted) == 2 and state.stats.skipped == {"min_amount": 1}
    assert set(rig.statuses()) == {"whale:t2", "whale:t3"}


async def test_telegram_gets_markdown_v2_it_can_parse(io_clock: trio.testing.MockClock) -> None:
    async with open_fake_telegram() as telegram:
        hub = HubState()
        rig = Rig(OutletConfig("t", "telegram", telegram.base_url, token=telegram.token,
                               chat_id=str(telegram.chat_id)), hub)
        async with running(rig):
            hub.publish(whale(1))
            await telegram.wait_accepted(1)
    assert telegram.format_errors == []
    assert TITLE in telegram.accepted[0].text


async def test_a_burst_is_folded_into_one_digest_when_the_minute_frees_a_slot(
        io_clock: trio.testing.MockClock) -> None:
    async with open_fake_discord() as discord:
        hub = HubState()
        rig = Rig(OutletConfig("d", "discord", discord.webhook_url, max_per_minute=3), hub)
        async with running(rig) as state:
            start = trio.current_time()
            for n in range(10):
                hub.publish(whale(n, 10_000 + n))
            await discord.wait_accepted(3)
            assert trio.current_time() - start < 1
            await discord.wait_accepted(4)
            waited = trio.current_time() - start
            await settle()
    assert 59 <= waited <= 61, "the digest goes out when the first send leaves the 60 s window"
    assert state.stats.sent == 3 and state.stats.digests == 1 and state.stats.folded == 7
    assert len(discord.accepted) == 4 and discord.format_errors == []
    statuses = rig.statuses()
    assert sorted(k for k, s in statuses.items() if s == "digest") == sorted(f"whale:t{n}" for n in range(3, 10))


async def test_429_waits_for_the_hint_and_5xx_backs_off_then_gives_up(io_clock: trio.testing.MockClock) -> None:
    async with open_fake_discord() as discord:
        hub = HubState()
        rig = Rig(OutletConfig("d", "discord", discord.webhook_url, max_attempts=3), hub)
        async with running(rig) as state:
            discord.rate_limit_next(1, retry_after=7.5)
            start = trio.current_time()
            hub.publish(whale(1))
            await discord.wait_accepted(1)
            assert 7.5 <= trio.current_time() - start < 8.5
            discord.fail_next(3, 502)
            hub.publish(whale(2))
            await settle(30)
            hub.publish(whale(3))
            await discord.wait_accepted(2)
    assert rig.statuses() == {"whale:t1": "delivered", "whale:t2": "undeliverable", "whale:t3": "delivered"}
    assert state.stats.retried == 3 and state.stats.undeliverable == 1
    undeliverable = [r for r in rig.collect() if r.status == "undeliverable"][0]
    assert undeliverable.attempts == 3 and "502" in (undeliverable.detail or "")


async def test_a_revoked_webhook_pauses_the_outlet_once_then_it_delivers(
        io_clock: trio.testing.MockClock) -> None:
    from tests._logs import capture_logs

    async with open_fake_discord() as discord:
        hub = HubState()
        rig = Rig(OutletConfig("d", "discord", discord.webhook_url, cool_down=600), hub)
        with capture_logs() as records:
            async with running(rig) as state:
                discord.delete()
                start = trio.current_time()
                hub.publish(whale(1))
                hub.publish(whale(2))
                await settle(300)
                assert state.stats.paused and not discord.accepted
                discord.restore()
                await discord.wait_accepted(2)
                waited = trio.current_time() - start
    assert 600 <= waited < 602
    assert state.stats.pauses == 1 and not state.stats.paused
    pause_lines = [r for r in records if "pausing this outlet" in r["message"]]
    assert len(pause_lines) == 1
    assert discord.webhook_url not in " ".join(r["message"] for r in records)
    assert rig.statuses() == {"whale:t1": "delivered", "whale:t2": "delivered"}


@pytest.mark.parametrize("kind", ["discord", "webhook"])
async def test_an_outlet_killed_mid_delivery_delivers_each_alert_exactly_once(
        io_clock: trio.testing.MockClock, kind: str) -> None:
    opener = open_fake_discord if kind == "discord" else open_fake_webhook_receiver
    async with opener() as fake:
        hub = HubState()
        rig = Rig(OutletConfig("o", kind, fake.webhook_url, secret="k" if kind == "webhook" else None), hub)
        if kind == "webhook":
            fake.secret = "k"
        async with running(rig) as state:
            # discord: the kill lands while the first alert waits to be tried again (after a
            # 503); webhook: while the receiver, which has taken the alert, answers late — so
            # it is sent again and the receiver drops the repeat by its Idempotency-Key
            if kind == "discord":
                fake.fail_next(1, 503)
            else:
                fake.delay_next(1, 30.0, accept_first=True)
            for n in range(5):
                hub.publish(whale(n))
            await settle(0.5)
            assert state.current is not None and state.current.key == "whale:t0", "mid-delivery"
            assert rig.registry.kill("outlet-o", "chaos")
            await fake.wait_accepted(5)
            await settle(40)
    assert [a for a in state.stats.skipped] == []
    statuses = rig.statuses()
    assert statuses == {f"whale:t{n}": "delivered" for n in range(5)}
    assert len(fake.accepted) == 5
    if kind == "webhook":
        assert len(fake.duplicates) == 1
        assert sorted(d.idempotency_key for d in fake.accepted) == sorted(statuses)


async def test_a_restarted_service_does_not_send_again_what_it_delivered(io_clock: trio.testing.MockClock) -> None:
    async with open_fake_discord() as discord:
        hub = HubState()
        first = Rig(OutletConfig("d", "discord", discord.webhook_url), hub, loaded=set())
        async with running(first):
            for n in range(3):
                hub.publish(whale(n))
            await discord.wait_accepted(3)
            await settle()
        delivered = {row.alert_key for row in first.collect() if row.status == "delivered"}
        # a new process: a new hub (seq from 1 again) re-broadcasts the same whales (backfill)
        hub2 = HubState()
        second = Rig(OutletConfig("d", "discord", discord.webhook_url), hub2, loaded=delivered)
        async with running(second) as state:
            for n in range(5):
                hub2.publish(whale(n))
            await discord.wait_accepted(5)
            await settle()
    assert len(discord.accepted) == 5 and state.stats.already_delivered == 3
    assert set(second.statuses()) == {"whale:t3", "whale:t4"}


async def test_a_stalled_outlet_leaves_the_clients_alone_and_overflow_is_recorded(
        io_clock: trio.testing.MockClock) -> None:
    async with open_fake_discord() as discord:
        hub = HubState()
        client = ClientQueue(10_000)
        hub.register(client)
        discord.delay = 3600.0                                   # answers in an hour
        rig = Rig(OutletConfig("d", "discord", discord.webhook_url, queue_size=5, timeout=7200), hub)
        async with running(rig) as state:
            await settle()
            for n in range(50):
                hub.publish(whale(n))                             # never waits for the outlet
            assert len(client.frames) == 50, "every client got every broadcast at once"
            await settle(5)
            discord.delay = 0
    assert state.stats.overflow == 50 - 5     # the hub offered all 50 before the outlet took one
    assert sum(1 for s in rig.statuses().values() if s == "overflow") == 45
