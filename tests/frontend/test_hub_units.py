"""Hub, client queues and market-state throttling, in memory under MockClock."""

from __future__ import annotations

import socket
from typing import Any

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


def seqs(client: ClientQueue) -> list[int | None]:
    """Seqs of the frames queued for a client (None: a control frame)."""
    return [seq for seq, _, _ in client.frames]


class Peer:
    """The client end of a loopback socket pair whose server end is a ClientQueue's ``fd``.

    ``SO_SNDBUF``/``SO_RCVBUF`` are shrunk so that a peer that does not read fills the socket
    after a few frames (a stalled client)."""

    def __init__(self) -> None:
        self.server, self.client = socket.socketpair()
        for sock in (self.server, self.client):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.server.setblocking(False)
        self.client.setblocking(False)
        self.buffer = b""

    @property
    def fd(self) -> int:
        return self.server.fileno()

    def read_frames(self) -> list[dict[str, object]]:
        """Every complete frame received so far, decoded (unmasked server text frames)."""
        while True:
            try:
                chunk = self.client.recv(1 << 20)
            except BlockingIOError:
                break
            if not chunk:
                break
            self.buffer += chunk
        frames = []
        while len(self.buffer) >= 2:
            assert self.buffer[0] == 0x81, "a whole text frame with FIN"
            n, at = self.buffer[1], 2
            if n == 126:
                n, at = int.from_bytes(self.buffer[2:4], "big"), 4
            elif n == 127:
                n, at = int.from_bytes(self.buffer[2:10], "big"), 10
            if len(self.buffer) < at + n:
                break
            frames.append(orjson.loads(self.buffer[at:at + n]))
            self.buffer = self.buffer[at + n:]
        return frames

    def close(self) -> None:
        self.server.close()
        self.client.close()


async def read_until(peer: Peer, client: ClientQueue, done: Any) -> list[dict[str, object]]:
    """Read frames (with the client's writer task running) until ``done(frames)``."""
    got: list[dict[str, object]] = []
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.run_writer, 5.0)
            client._wake.set()
            while not done(got):
                await trio.sleep(0.001)
                got += peer.read_frames()
            nursery.cancel_scope.cancel()
    return got


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
    assert hub.broadcast_keys.capacity == 5 and len(hub.broadcast_keys) == 5


async def test_keys_are_remembered_for_as_many_broadcasts_as_the_ring_holds() -> None:
    hub = HubState(ring_size=3)
    for n in range(3):
        hub.publish(whale(n))
    assert hub.publish(whale(0)) is None, "within the ring's span a repeat is dropped"
    hub.publish(whale(3))                                # key 0 leaves with the 4th key
    assert hub.publish(whale(0)) is not None, "a key older than the ring's span is forgotten"
    assert len(hub.broadcast_keys) == 3 and hub.stats.duplicates_total == 1


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
    assert seqs(everything) == [1, 2, 3, 4]
    assert seqs(big) == [2, 3, 4]          # min_amount does not apply to amount-less updates
    assert seqs(other) == [3]


async def test_a_slow_client_is_lagged_then_told_then_kicked(autojump_clock: trio.testing.MockClock) -> None:
    hub = HubState(lag_limit=10.0)
    slow, fast = ClientQueue(3), ClientQueue(1000)     # not attached to sockets: nothing is written
    hub.register(slow)
    hub.register(fast)
    for n in range(5):
        hub.publish(whale(n))
    assert len(fast.frames) == 5, "nobody else slows down"
    assert seqs(slow) == [1, 2, 3] and slow.missed == 2
    assert hub.stats.lagged_clients_total == 1
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
    assert seqs(client) == [None, 2, 3, 4]


async def test_broadcasts_are_written_inline_and_frames_stay_whole() -> None:
    peer = Peer()
    try:
        hub = HubState()
        client = ClientQueue(1000, fd=peer.fd)
        hub.register(client)
        hub.publish(whale(1))
        assert not client.frames, "written at once, with no writer task"
        hub.publish(Broadcast("whale_trade", {"big": "x" * 70_000}, key="big"))   # 64-bit length
        hub.publish(Broadcast("whale_trade", {"mid": "y" * 300}, key="mid"))      # 16-bit length
        client.control('{"type":"pong"}')
        got = await read_until(peer, client, lambda got: len(got) >= 4)
        assert [m.get("seq") for m in got] == [1, 2, 3, None]
        assert got[1] == {"type": "whale_trade", "seq": 2, "data": {"big": "x" * 70_000}}
        assert client.messages_written == 3 and client.frames_written == 4 and client.broadcasts_queued == 0
        assert hub.sent_totals() == (3, 4)
    finally:
        peer.close()


async def test_a_stalled_socket_lags_then_gets_the_notice_once_it_reads() -> None:
    peer = Peer()
    try:
        hub = HubState()
        client = ClientQueue(5, fd=peer.fd)
        hub.register(client)
        big = {"pad": "z" * 2000}
        n = 0
        while client.missed < 3:                    # the peer reads nothing: the socket fills
            n += 1
            hub.publish(Broadcast("whale_trade", {**big, "n": n}, key=f"s{n}"))
            assert n < 1000
        assert client.broadcasts_queued == 5 and hub.stats.lagged_clients_total == 1
        got = await read_until(peer, client, lambda got: got and got[-1]["type"] == "lagged")
        broadcasts = [m["seq"] for m in got if m["type"] == "whale_trade"]
        assert broadcasts == list(range(1, n - 2)), "everything queued arrives, in order, nothing twice"
        assert got[-1] == {"type": "lagged", "data": {"missed": 3, "resume_from": n - 3}}
        assert client.missed == 0 and client.lagging_since is None
        hub.publish(whale(99))                      # live again
        with trio.fail_after(5):
            while not (frames := peer.read_frames()):
                await trio.sleep(0)
        assert frames[0]["seq"] == n + 1
    finally:
        peer.close()


async def test_writer_times_out_on_a_client_that_never_reads(autojump_clock: trio.testing.MockClock) -> None:
    peer = Peer()
    try:
        client = ClientQueue(100_000, fd=peer.fd)
        hub = HubState()
        hub.register(client)
        for n in range(200):
            hub.publish(Broadcast("whale_trade", {"pad": "z" * 2000, "n": n}, key=f"t{n}"))
        assert client.frames, "the socket is full"
        with pytest.raises(trio.TooSlowError):
            await client.run_writer(10.0)
        assert trio.current_time() == pytest.approx(10.0)
    finally:
        peer.close()


async def test_send_and_wait_waits_behind_the_backlog_and_detach_releases_it() -> None:
    peer = Peer()
    try:
        client = ClientQueue(100_000, fd=peer.fd)
        hub = HubState()
        hub.register(client)
        for n in range(200):
            hub.publish(Broadcast("whale_trade", {"pad": "z" * 2000, "n": n}, key=f"t{n}"))
        outcome: list[str] = []

        async def close_frame() -> None:
            try:
                await client.send_and_wait(b"\x88\x00", 60.0)
                outcome.append("sent")
            except trio.BrokenResourceError:
                outcome.append("broken")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(close_frame)
            await trio.testing.wait_all_tasks_blocked()
            assert outcome == [], "it waits for the socket"
            client.detach()
        assert outcome == ["broken"]
        hub.publish(whale(5))
        assert client.fd is None and not client.frames, "nothing is queued or written after a detach"
    finally:
        peer.close()


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


async def test_a_batch_client_gets_what_gathered_behind_a_full_socket_as_one_frame() -> None:
    peer = Peer()
    try:
        hub = HubState()
        client = ClientQueue(100_000, Subscription(batch=True), fd=peer.fd)
        hub.register(client)
        hub.publish(whale(1))
        assert not client.frames and not client.batched, "nothing waiting: sent at once, as is"
        n = 1
        while not client.batched:                   # the peer does not read: the socket fills
            n += 1
            hub.publish(Broadcast("whale_trade", {"pad": "z" * 2000, "n": n}, key=f"b{n}"))
        for extra in range(3):
            hub.publish(whale(1000 + extra))
        gathered = [e.seq for e in client.batched]
        assert len(gathered) == 4
        got = await read_until(peer, client, lambda got: got and got[-1]["type"] == "batch")
        assert got[0] == {"type": "whale_trade", "seq": 1, "data": {"n": 1, "amount": 20_000.0}}
        assert [m["seq"] for m in got[:-1]] == list(range(1, gathered[0]))
        assert [m["seq"] for m in got[-1]["data"]] == gathered, "one frame, in order"
        assert client.messages_written == hub.seq and client.broadcasts_queued == 0
    finally:
        peer.close()
