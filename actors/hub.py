"""The hub: sequence numbers, the replay ring, and fan-out to every client without waiting on any.

:class:`HubState` holds everything that must outlive the hub actor's restarts (the sequence,
the ring, the clients' queues); the hub actor only feeds it from its inbox.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Callable
from typing import Any

import attrs
import trio

from protocols.client import EVERYTHING, Subscription, encode, encode_batch, ws_text_frame
from supervision import ActorContext

from ._recent import RecentKeys
from .messages import Broadcast


@attrs.frozen(slots=True)
class RingEntry:
    """One numbered broadcast, as the WebSocket frame every client gets (``wire``, encoded once);
    :attr:`frame` is its JSON text (the ring holds each broadcast once, not twice)."""

    seq: int
    type: str
    market: str | None
    amount: float | None
    wire: bytes
    #: The broadcast's identity (``whale:<trade id>``...), None for state updates.
    key: str | None = None

    @property
    def payload(self) -> bytes:
        """The JSON bytes (the frame without its 2-, 4- or 10-byte header)."""
        length = self.wire[1] & 0x7F
        return self.wire[2 if length < 126 else 4 if length == 126 else 10:]

    @property
    def frame(self) -> str:
        return self.payload.decode()


#: One outgoing WebSocket frame: (broadcast seq or None for a control frame, its bytes, an
#: event set once it is handed to the kernel (or dropped), or None when nobody waits).
_Frame = tuple[int | None, bytes, trio.Event | None]

#: Frames written with one ``writev`` call at most.
_WRITEV_MAX = 256


class ClientQueue:
    """One client's outbox: every byte the server sends to that client, in order.

    The hub fills it without awaiting (:meth:`offer`).  When the queue is attached to a
    socket (``fd``) and holds nothing else, a broadcast is written at once with one
    non-blocking ``write`` — no task switch, no per-client framing: the frame was built once
    by the hub.  What the socket does not take stays queued, and the session's writer task
    (:meth:`run_writer`) sends it when the socket is writable.  The WebSocket library's own
    frames (handshake, ``hello``, pings, pongs, close) go through the same queue
    (:meth:`send_and_wait`, used by :class:`actors._outbox_stream.OutboxStream`), so frames never
    interleave.

    Broadcasts beyond ``max_size`` not yet handed to the kernel are not queued: the client is
    *lagged* — it misses messages until what is queued is written, then receives a ``lagged``
    notice with how many it missed and the last seq it was sent (so it can resume).  Control
    replies (pong, errors, ...) are always queued.  A client that asked for ``batch`` gets
    what gathered while its socket was full as one ``batch`` frame (and single broadcasts
    as they are when nothing is waiting).
    """

    def __init__(self, max_size: int, subscription: Subscription = EVERYTHING, *, name: str = "",
                 fd: int | None = None) -> None:
        self.max_size = max_size
        self.subscription = subscription
        self.name = name
        self.fd = fd
        self.frames: collections.deque[_Frame] = collections.deque()
        self.head_written = 0                # bytes of frames[0] already written
        self.batched: list[RingEntry] = []   # batch clients: broadcasts waiting to be coalesced
        self.broadcasts_queued = 0           # broadcasts not yet handed to the kernel
        self.missed = 0                      # missed since the last lagged notice
        self.missed_total = 0
        self.lagging_since: float | None = None
        self.last_seq_sent = 0               # the last broadcast queued for sending
        self.messages_written = 0            # broadcasts handed to the kernel
        self.frames_written = 0
        self.closing = False                 # a close frame is queued: no more broadcasts
        self.broken: BaseException | None = None
        self.kicked: str | None = None       # reason the hub wants this client gone
        self._flushing = False
        self._wake = trio.Event()
        self._progress = trio.Event()        # set when a waited-for frame is written or a flush stops
        self._kicked_event = trio.Event()

    # -- filling (synchronous: the hub never awaits a client) --------------------------------

    def offer(self, entry: RingEntry, now: float) -> bool:
        """Queue a broadcast if the client wants it; False if it was missed (client lagging)."""
        if not self.subscription.wants(entry.type, entry.market, entry.amount) or self.closing:
            return True
        if self.missed or self.broadcasts_queued >= self.max_size:
            if not self.missed:
                self.lagging_since = now
            self.missed += 1
            self.missed_total += 1
            return False
        self.broadcasts_queued += 1
        self.last_seq_sent = entry.seq
        frames = self.frames
        if self.subscription.batch and (frames or self.batched or self._flushing):
            self.batched.append(entry)      # coalesced into one frame once the socket takes more
            self._wake.set()
            return True
        frames.append((entry.seq, entry.wire, None))
        if len(frames) == 1 and self.fd is not None and not self._flushing:
            self.write_nowait()
            if not frames:
                return True
        self._wake.set()
        return True

    def control(self, frame: str) -> None:
        """Queue a reply that is not a broadcast (never dropped)."""
        self._append(ws_text_frame(frame), None)

    def replace_with(self, entries: list[RingEntry]) -> None:
        """Resume: queued broadcasts become exactly ``entries`` (control frames and a frame
        already partly written stay, in front)."""
        kept: collections.deque[_Frame] = collections.deque()
        for index, frame in enumerate(self.frames):
            if frame[0] is None or (index == 0 and self.head_written):
                kept.append(frame)
        if not kept or not self.head_written:
            self.head_written = 0
        self.frames = kept
        self.batched = []
        self.broadcasts_queued = sum(1 for frame in kept if frame[0] is not None)
        self.missed = 0
        self.lagging_since = None
        if self.subscription.batch:
            self.batched.extend(entries)
        else:
            kept.extend((e.seq, e.wire, None) for e in entries)
        self.broadcasts_queued += len(entries)
        if entries:
            self.last_seq_sent = entries[-1].seq
        self._kick_writer()

    def _append(self, wire: bytes, done: trio.Event | None) -> None:
        self.frames.append((None, wire, done))
        self._kick_writer()

    def _kick_writer(self) -> None:
        if self.fd is not None and not self._flushing and self.frames:
            self.write_nowait()
        self._wake.set()

    # -- writing ------------------------------------------------------------------------------

    def write_nowait(self) -> None:
        """Write what the socket takes now, without blocking; then the ``lagged`` notice when
        a lagging client's queue has emptied.  A socket error drops everything queued and
        marks the queue broken (the session ends)."""
        frames, fd = self.frames, self.fd
        if fd is None:
            return
        while frames:
            try:
                if len(frames) == 1 or self.head_written:
                    data = frames[0][1]
                    written = os.write(fd, memoryview(data)[self.head_written:] if self.head_written else data)
                else:
                    batch = [frames[i][1] for i in range(min(len(frames), _WRITEV_MAX))]
                    written = os.writev(fd, batch)
            except BlockingIOError:
                return
            except OSError as exc:
                self.detach(exc)
                return
            written += self.head_written
            while frames:
                seq, data, done = frames[0]
                if written < len(data):
                    self.head_written = written
                    return
                written -= len(data)
                frames.popleft()
                self.frames_written += 1
                if seq is not None:
                    self.broadcasts_queued -= 1
                    self.messages_written += 1
                if done is not None:
                    done.set()
                    self._signal_progress()
            self.head_written = 0
            if not frames and self.missed and not self.batched:
                frames.append((None, ws_text_frame(encode(
                    "lagged", {"missed": self.missed, "resume_from": self.last_seq_sent})), None))
                self.missed = 0
                self.lagging_since = None

    async def flush(self, timeout: float, until: trio.Event | None = None) -> None:
        """Write until the queue is empty (or ``until`` is set), waiting for the socket as needed.
        Only one task flushes at a time; another caller waits for ``until`` (or returns).

        Raises:
            trio.TooSlowError: the socket took nothing for ``timeout`` seconds (the client
                stopped reading).
            trio.BrokenResourceError: the connection broke or the queue was detached.
        """
        while self._flushing:
            if until is None or until.is_set():
                return
            await self._progress.wait()     # the flusher wrote our frame, or stopped
        self._flushing = True
        try:
            while True:
                if self.broken is not None:
                    raise trio.BrokenResourceError("client connection lost") from self.broken
                self.write_nowait()
                if not self.frames and self.batched:
                    self._coalesce()        # what gathered while the socket was full: one frame
                    continue
                if not self.frames or (until is not None and until.is_set()):
                    return
                if self.fd is None:
                    raise trio.BrokenResourceError("client connection closed")
                with trio.fail_after(timeout):
                    await trio.lowlevel.wait_writable(self.fd)
        except trio.ClosedResourceError as exc:
            raise trio.BrokenResourceError("client connection closed") from exc
        finally:
            self._flushing = False
            self._signal_progress()

    def _signal_progress(self) -> None:
        self._progress.set()
        self._progress = trio.Event()

    def _coalesce(self) -> None:
        entries, self.batched = self.batched, []
        if len(entries) == 1:
            self.frames.append((entries[0].seq, entries[0].wire, None))
            return
        self.frames.append((entries[-1].seq, ws_text_frame(encode_batch(e.frame for e in entries)), None))
        # the batch frame stands for all its broadcasts until written, then counts as one
        self.broadcasts_queued -= len(entries) - 1
        self.messages_written += len(entries) - 1

    async def run_writer(self, timeout: float) -> None:
        """The session's writer task: flush whenever something is queued that the hub's inline
        write left behind (a full socket, a batch to coalesce).  Errors as :meth:`flush`."""
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            if self.kicked is not None:
                return
            await self.flush(timeout)

    async def send_and_wait(self, data: bytes, timeout: float) -> None:
        """Queue ``data`` (a frame built by the WebSocket library) behind what is queued and
        return once it is handed to the kernel.  Errors as :meth:`flush`."""
        if self.broken is not None or self.fd is None:
            raise trio.BrokenResourceError("client connection closed")
        done = trio.Event()
        self._append(data, done)
        while not done.is_set():
            await self.flush(timeout, until=done)
        if self.broken is not None:
            raise trio.BrokenResourceError("client connection lost") from self.broken

    def detach(self, error: BaseException | None = None) -> None:
        """The socket is closing or broke: drop what is queued, release every waiter, and
        never touch the descriptor again (the number may be reused)."""
        if self.fd is not None and self._flushing:
            trio.lowlevel.notify_closing(self.fd)   # wakes the flusher's wait_writable
        self.fd = None
        self.closing = True
        if self.broken is None:
            self.broken = error or trio.ClosedResourceError("client connection closed")
        for _, _, done in self.frames:
            if done is not None:
                done.set()
        self.frames.clear()
        self.batched = []
        self.head_written = 0
        self._wake.set()
        self._signal_progress()

    # -- ending -------------------------------------------------------------------------------

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
    #: Broadcasts and frames handed to the kernel by clients that have gone (see
    #: :meth:`HubState.sent_totals` for the running totals).
    gone_messages_sent: int = 0
    gone_frames_sent: int = 0


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
        #: In-process consumers (alert outlets): anything with a non-blocking ``offer(entry)``.
        self.feeds: list[Any] = []
        self.stats = HubStats()
        self.lag_limit = lag_limit
        self._clock = clock
        #: The keys of the last ``ring_size`` keyed broadcasts: a redelivery (after a crash
        #: upstream, seconds later) is dropped; the deduper already drops older repeats.
        self.broadcast_keys: RecentKeys[str] = RecentKeys(ring_size)

    @property
    def oldest_seq(self) -> int:
        """The oldest seq still held (``seq + 1`` when the ring is empty)."""
        return self.ring[0].seq if self.ring else self.seq + 1

    def register(self, client: ClientQueue) -> None:
        self.clients.add(client)
        self.stats.clients_total += 1

    def unregister(self, client: ClientQueue) -> None:
        if client in self.clients:
            self.clients.discard(client)
            self.stats.gone_messages_sent += client.messages_written
            self.stats.gone_frames_sent += client.frames_written

    def sent_totals(self) -> tuple[int, int]:
        """(broadcasts, frames) handed to the kernel for every client so far."""
        messages, frames = self.stats.gone_messages_sent, self.stats.gone_frames_sent
        for client in self.clients:
            messages += client.messages_written
            frames += client.frames_written
        return messages, frames

    def publish(self, message: Broadcast) -> RingEntry | None:
        """Number, encode (once) and fan out one broadcast; None if its key was seen already."""
        if message.key is not None:
            if not self.broadcast_keys.add(message.key):
                self.stats.duplicates_total += 1
                return None
        self.seq += 1
        frame = encode(message.type, message.data, self.seq)
        entry = RingEntry(self.seq, message.type, message.market, message.amount, ws_text_frame(frame), message.key)
        self.ring.append(entry)
        stats = self.stats
        stats.broadcasts_total += 1
        stats.by_type[message.type] = stats.by_type.get(message.type, 0) + 1
        for feed in self.feeds:
            feed.offer(entry)
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
