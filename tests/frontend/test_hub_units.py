"""Hub, client queues and market-state throttling, in memory under MockClock."""

from __future__ import annotations

import orjson
import pytest
import trio

from actors.directory import MarketDirectory
from actors.hub import ClientQueue, HubState
from actors.market_state import MarketStateStore, market_state_actor
from actors.messages import Broadcast
from actors.whale_watcher import is_near_settlement, tier_for
from protocols.client import Subscription
from protocols.polymarket import PriceTick
from supervision import ChildSpec, Inbox, SupervisorSpec, run_supervisor


def whale(n: int, amount: float = 20_000.0, market: str = "m1") -> Broadcast:
    return Broadcast("whale_trade", {"n": n, "amount": amount}, market=market, amount=amount, key=f"w{n}")


async def test_seq_ring_and_duplicate_keys() -> None:
    hub = HubState(ring_size=5)
    for n in range(8):
        hub.publish(whale(n))
    assert hub.publish(whale(7)) is None, "a redelivered broadcast is not sent twice"
    assert hub.seq == 8 and hub.stats.duplicates_total == 1
    assert [e.seq for e in hub.ring] == [4, 5, 6, 7, 8] and hub.oldest_seq == 4
    frame = orjson.loads(hub.ring[-1].frame)
    assert frame == {"type": "whale_trade", "seq": 8, "data": {"n": 7, "amount": 20_000.0}}
    entries, complete = hub.since(5, Subscription())
    assert [e.seq for e in entries] == [6, 7, 8] and complete
    assert hub.since(3, Subscription())[1] is True      # seq 4 is the next one: nothing missing
    assert hub.since(2, Subscription())[1] is False     # seq 3 is gone


async def test_filters_apply_per_client() -> None:
    hub = HubState()
    everything, big, other = ClientQueue(100), ClientQueue(100, Subscription(min_amount=50_000)), \
        ClientQueue(100, Subscription(types=frozenset({"whale_trade"}), markets=frozenset({"m2"})))
    for client in (everything, big, other):
        hub.register(client)
    hub.publish(whale(1, 20_000))
    hub.publish(whale(2, 60_000))
    hub.publish(whale(3, 90_000, market="m2"))
    hub.publish(Broadcast("market_update", {"x": 1}, market="m2"))
    assert [s for s, _ in everything.items] == [1, 2, 3, 4]
    assert [s for s, _ in big.items] == [2, 3, 4]          # min_amount does not apply to amount-less updates
    assert [s for s, _ in other.items] == [3]


async def test_a_slow_client_is_lagged_then_told_then_kicked(autojump_clock: trio.testing.MockClock) -> None:
    hub = HubState(lag_limit=10.0)
    slow, fast = ClientQueue(3), ClientQueue(1000)
    hub.register(slow)
    hub.register(fast)
    for n in range(5):
        hub.publish(whale(n))
    assert len(fast.items) == 5, "nobody else slows down"
    assert [s for s, _ in slow.items] == [1, 2, 3] and slow.missed == 2
    assert hub.stats.lagged_clients_total == 1
    taken = await slow.take()                             # the writer catches up ...
    assert [s for s, _ in taken] == [1, 2, 3]
    hub.publish(whale(5))                                 # ... but stays lagged until it sent the notice
    assert slow.missed == 3 and not slow.items
    await trio.sleep(11)
    hub.publish(whale(6))
    assert slow.kicked == "lagging" and fast.kicked is None
    assert hub.stats.kicked_clients_total == 1


async def test_resume_replaces_the_queue_with_the_ring() -> None:
    hub = HubState()
    client = ClientQueue(2)
    hub.register(client)
    for n in range(4):
        hub.publish(whale(n))
    client.control('{"type":"pong"}')
    entries, complete = hub.since(1, client.subscription)
    client.replace_with(entries)
    assert complete and client.missed == 0
    assert [s for s, _ in client.items] == [None, 2, 3, 4]


@pytest.mark.parametrize("price,near", [(0.05, True), (0.0501, False), (0.95, True), (0.9499, False), (0.5, False)])
def test_near_settlement_boundaries(price: float, near: bool) -> None:
    assert is_near_settlement(price, 0.05) is near


def test_tiers() -> None:
    assert [tier_for(x, 10_000) for x in (10_000, 49_999, 50_000, 99_999, 100_000)] == [
        "whale", "whale", "big_whale", "big_whale", "mega_whale"]


async def test_market_updates_are_throttled_per_market(autojump_clock: trio.testing.MockClock) -> None:
    directory = MarketDirectory()
    store = MarketStateStore()
    inbox: Inbox[object] = Inbox("market_state", 1000)
    out_send, out_recv = trio.open_memory_channel[Broadcast](1000)
    spec = ChildSpec(id="market_state", inbox=inbox, run=market_state_actor(directory, store, out_send, interval=1.0))
    stop = trio.Event()
    got: list[tuple[float, str, float | None]] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(lambda task_status: run_supervisor(SupervisorSpec(), [spec], stop=stop,
                                                               task_status=task_status))

        async def collect() -> None:
            async for b in out_recv:
                got.append((trio.current_time(), b.market or "", b.data["best_bid"]))

        nursery.start_soon(collect)
        for i in range(100):                              # a burst: 100 ticks in 0.5 s on one market
            await inbox.send_channel.send(PriceTick("a", "t-a", 0.01 * i, None, None, 1.0))
            await trio.sleep(0.005)
        await inbox.send_channel.send(PriceTick("b", "t-b", 0.3, None, None, 1.0))
        await trio.sleep(3)
        stop.set()
        nursery.cancel_scope.cancel()
    a = [(t, bid) for t, m, bid in got if m == "a"]
    assert len(a) == 2, a                                  # the first at once, then one carrying the latest
    assert a[0][0] == 0.0 and a[1][0] == 1.0 and a[1][1] == pytest.approx(0.99)
    b = [t for t, m, _ in got if m == "b"]
    assert b == [pytest.approx(0.5)], "another market is not held back by the first one's throttle"


class _Socket:
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send_message(self, text: str) -> None:
        self.sent.append(text)
        await trio.sleep(0)


async def test_writer_sends_what_is_queued_then_the_lagged_notice(autojump_clock: trio.testing.MockClock) -> None:
    from actors.ws_server import FrontendConfig, FrontendStats, _writer

    hub = HubState()
    client = ClientQueue(2)
    hub.register(client)
    for n in range(5):
        hub.publish(whale(n))
    sock = _Socket()
    ended: list[str] = []

    async def end(why: str) -> None:
        ended.append(why)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(_writer, sock, client, FrontendConfig(), FrontendStats(), end)
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    frames = [orjson.loads(f) for f in sock.sent]
    assert [f.get("seq") for f in frames] == [1, 2, None]
    assert frames[-1] == {"type": "lagged", "data": {"missed": 3, "resume_from": 2}}
    assert client.missed == 0 and not ended


class _SlowSocket(_Socket):
    """Each send takes 1 s: a busy server, not a client that stopped reading."""

    async def send_message(self, text: str) -> None:
        await trio.sleep(1.0)
        self.sent.append(text)


async def test_send_timeout_bounds_one_send_not_the_backlog(autojump_clock: trio.testing.MockClock) -> None:
    from actors.ws_server import FrontendConfig, FrontendStats, _writer

    hub = HubState()
    client = ClientQueue(100)
    hub.register(client)
    for n in range(30):                          # 30 s of sending in all, 1 s each: healthy
        hub.publish(whale(n))
    sock, ended = _SlowSocket(), []

    async def end(why: str) -> None:
        ended.append(why)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(_writer, sock, client, FrontendConfig(send_timeout=10.0), FrontendStats(), end)
        await trio.sleep(40)
        nursery.cancel_scope.cancel()
    assert ended == [] and len(sock.sent) == 30
