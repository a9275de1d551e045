"""The hub: sequence numbers, the replay ring, and fan-out to every client without waiting on any.

:class:`HubState` holds everything that must outlive the hub actor's restarts (the sequence,
the ring, the clients' queues); the hub actor only feeds it from its inbox.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

import attrs
import trio

from protocols.client import EVERYTHING, Subscription, encode
from supervision import ActorContext

from .messages import Broadcast


@attrs.frozen(slots=True)
class RingEntry:
    seq: int
    type: str
    market: str | None
    amount: float | None
    frame: str


class ClientQueue:
    """One client's bounded outbox, filled by the hub without awaiting.

    Broadcasts beyond ``max_size`` are not queued: the client is *lagged* — it misses
    messages until its writer has sent what is queued, then receives a ``lagged`` notice with
    how many it missed and the last seq it got (so it can resume).  Control replies (pong,
    errors, ...) are always queued.
    """

    def __init__(self, max_size: int, subscription: Subscription = EVERYTHING, *, name: str = "") -> None:
        self.max_size = max_size
        self.subscription = subscription
        self.name = name
        self.items: collections.deque[tuple[int | None, str]] = collections.deque()
        self._wake = trio.Event()
        self.broadcasts_queued = 0
        self.missed = 0                      # missed since the last lagged notice
        self.missed_total = 0
        self.lagging_since: float | None = None
        self.last_seq_sent = 0
        self.kicked: str | None = None       # reason the hub wants this client gone
        self._kicked_event = trio.Event()

    def offer(self, entry: RingEntry, now: float) -> bool:
        """Queue a broadcast if the client wants it; False if it was missed (client lagging)."""
        if not self.subscription.wants(entry.type, entry.market, entry.amount):
            return True
        if self.missed or self.broadcasts_queued >= self.max_size:
            if not self.missed:
                self.lagging_since = now
            self.missed += 1
            self.missed_total += 1
            return False
        self.items.append((entry.seq, entry.frame))
        self.broadcasts_queued += 1
        self._wake.set()
        return True

    def control(self, frame: str) -> None:
        """Queue a reply that is not a broadcast (never dropped)."""
        self.items.append((None, frame))
        self._wake.set()

    def replace_with(self, entries: list[RingEntry]) -> None:
        """Resume: the queue becomes exactly these broadcasts (plus pending control replies)."""
        controls = [item for item in self.items if item[0] is None]
        self.items = collections.deque(controls)
        self.items.extend((e.seq, e.frame) for e in entries)
        self.broadcasts_queued = len(entries)
        self.missed = 0
        self.lagging_since = None
        self._wake.set()

    async def take(self) -> list[tuple[int | None, str]]:
        """Everything queued (waits for at least one item)."""
        while not self.items:
            await self._wake.wait()
            self._wake = trio.Event()
        items = list(self.items)
        self.items.clear()
        self.broadcasts_queued = 0
        return items

    def kick(self, reason: str) -> None:
        if self.kicked is None:
            self.kicked = reason
            self._kicked_event.set()
            self._wake.set()

    async def wait_kicked(self) -> str:
        await self._kicked_event.wait()
        assert self.kicked is not None
        return self.kicked


@attrs.define
class HubStats:
    broadcasts_total: int = 0
    by_type: dict[str, int] = attrs.field(factory=dict)
    duplicates_total: int = 0
    messages_queued_total: int = 0
    missed_total: int = 0
    lagged_clients_total: int = 0
    kicked_clients_total: int = 0
    clients_total: int = 0


class HubState:
    """Sequence, ring and client registry; everything here is synchronous (never awaits).

    Args:
        ring_size: Broadcasts kept for ``resume``.
        lag_limit: A client lagging (missing messages) for longer than this many seconds is
            disconnected.
    """

    def __init__(self, ring_size: int = 10_000, *, lag_limit: float = 10.0,
                 clock: Callable[[], float] = trio.current_time) -> None:
        self.ring: collections.deque[RingEntry] = collections.deque(maxlen=ring_size)
        self.seq = 0
        self.clients: set[ClientQueue] = set()
        self.stats = HubStats()
        self.lag_limit = lag_limit
        self._clock = clock
        self._recent_keys: collections.OrderedDict[str, None] = collections.OrderedDict()

    @property
    def oldest_seq(self) -> int:
        """The oldest seq still held (``seq + 1`` when the ring is empty)."""
        return self.ring[0].seq if self.ring else self.seq + 1

    def register(self, client: ClientQueue) -> None:
        self.clients.add(client)
        self.stats.clients_total += 1

    def unregister(self, client: ClientQueue) -> None:
        self.clients.discard(client)

    def publish(self, message: Broadcast) -> RingEntry | None:
        """Number, encode (once) and fan out one broadcast; None if its key was seen already."""
        if message.key is not None:
            if message.key in self._recent_keys:
                self.stats.duplicates_total += 1
                return None
            self._recent_keys[message.key] = None
            if len(self._recent_keys) > 4 * (self.ring.maxlen or 10_000):
                self._recent_keys.popitem(last=False)
        self.seq += 1
        entry = RingEntry(self.seq, message.type, message.market, message.amount,
                          encode(message.type, message.data, self.seq))
        self.ring.append(entry)
        stats = self.stats
        stats.broadcasts_total += 1
        stats.by_type[message.type] = stats.by_type.get(message.type, 0) + 1
        now = self._clock()
        for client in self.clients:
            was_lagging = client.missed > 0
            if client.offer(entry, now):
                stats.messages_queued_total += 1
            else:
                stats.missed_total += 1
                if not was_lagging:
                    stats.lagged_clients_total += 1
                if client.lagging_since is not None and now - client.lagging_since > self.lag_limit:
                    if client.kicked is None:
                        stats.kicked_clients_total += 1
                    client.kick("lagging")
        return entry

    def since(self, seq: int, subscription: Subscription) -> tuple[list[RingEntry], bool]:
        """Broadcasts after ``seq`` that the subscription wants, and whether all are still held."""
        complete = seq >= self.oldest_seq - 1
        entries = [e for e in self.ring if e.seq > seq and subscription.wants(e.type, e.market, e.amount)]
        return entries, complete


def hub_actor(state: HubState) -> Callable[..., Any]:
    """The hub actor body: every :class:`~actors.messages.Broadcast` from its inbox to every client.

    It never awaits a client: each client has its own bounded queue (see
    :class:`ClientQueue`).  Cancellation and restarts: the state lives in ``state``; a
    broadcast redelivered after a crash is dropped by its key.
    """

    async def run(ctx: ActorContext, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        assert ctx.inbox is not None
        task_status.started()
        async for message in ctx.inbox:
            state.publish(message)

    return run
