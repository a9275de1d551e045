"""Mailboxes that outlive the actors reading them."""

from __future__ import annotations

import collections
import math
from typing import TYPE_CHECKING, Generic, TypeVar

import attrs
import trio
from loguru import logger

if TYPE_CHECKING:
    from collections.abc import Iterator

T = TypeVar("T")

#: A fast-path receive yields to the scheduler once every this many messages (fairness).
_YIELD_EVERY = 64


async def deliver(channel: trio.MemorySendChannel[T], message: T) -> None:
    """Send ``message``, yielding to the scheduler only when the channel is full.

    ``await channel.send()`` always reschedules, so a producer and its consumer would switch
    tasks for every message; this queues without a switch while there is room (the consumer
    then takes a run of messages at once) and waits, as ``send`` does, when there is none —
    so backpressure is unchanged.  Same errors as ``send``.
    """
    try:
        channel.send_nowait(message)
    except trio.WouldBlock:
        await channel.send(message)


@attrs.frozen
class InboxStatistics:
    """A snapshot of one inbox, for ``/status`` and metrics."""

    name: str
    #: Messages waiting in the channel buffer.
    queued: int
    #: Messages handed to the current incarnation and not yet acknowledged.
    in_flight: int
    #: Messages waiting to be redelivered after a crash.
    redelivering: int
    max_size: float
    #: Producers blocked because the buffer is full (backpressure).
    blocked_senders: int
    #: Messages redelivered to a new incarnation after a crash.
    redelivered_total: int
    #: Messages dropped after ``max_deliveries`` crashed deliveries (poison messages).
    dead_letters_total: int


class Inbox(Generic[T]):
    """A bounded mailbox owned by a supervisor rather than by the actor reading it.

    Producers hold the send side (:attr:`send_channel` or a :meth:`sender` clone) for the
    life of the service.  Each incarnation of the consuming actor reads through a
    :class:`InboxReceiver` made from a fresh ``receive`` clone, so:

    - messages queued before or during a restart wait for the next incarnation;
    - producers never see ``BrokenResourceError`` because a consumer restarted (the
      supervisor keeps the original receive end open); a full inbox blocks them instead,
      which is how pressure propagates;
    - a message the crashed incarnation had received but not acknowledged (the one it was
      working on, or a whole batch) is redelivered first to the next incarnation
      (at-least-once; consumers are idempotent by message identity).  A message whose
      delivery crashed the actor ``max_deliveries`` times is logged and dropped, so one
      poison message cannot keep an actor crashing.
    """

    def __init__(self, name: str, max_size: float = 256, *, max_deliveries: int = 3) -> None:
        if max_size != math.inf and (max_size < 0 or int(max_size) != max_size):
            raise ValueError(f"inbox size must be a non-negative integer or math.inf, got {max_size!r}")
        self.name = name
        self.max_size = max_size
        self.max_deliveries = max_deliveries
        self._send: trio.MemorySendChannel[T]
        self._receive: trio.MemoryReceiveChannel[T]
        self._send, self._receive = trio.open_memory_channel[T](max_size)
        # (message, deliveries so far), oldest first
        self._redeliver: collections.deque[tuple[T, int]] = collections.deque()
        self._current: InboxReceiver[T] | None = None
        self.redelivered_total = 0
        self.dead_letters_total = 0

    @property
    def send_channel(self) -> trio.MemorySendChannel[T]:
        """The send side. Do not close it: use :meth:`sender` for a closable clone."""
        return self._send

    def sender(self) -> trio.MemorySendChannel[T]:
        """A clone of the send side that the caller may close when done."""
        return self._send.clone()

    def statistics(self) -> InboxStatistics:
        stats = self._send.statistics()
        current = self._current
        return InboxStatistics(
            name=self.name,
            queued=stats.current_buffer_used,
            in_flight=len(current._in_flight) if current is not None else 0,
            redelivering=len(self._redeliver),
            max_size=self.max_size,
            blocked_senders=stats.tasks_waiting_send,
            redelivered_total=self.redelivered_total,
            dead_letters_total=self.dead_letters_total,
        )

    def pending(self) -> int:
        """Messages not yet acknowledged by any incarnation (queued + in flight + redelivering)."""
        s = self.statistics()
        return s.queued + s.in_flight + s.redelivering

    # -- used by the supervisor -------------------------------------------------------

    def _open(self, stopping: trio.Event) -> InboxReceiver[T]:
        receiver = InboxReceiver(self, self._receive.clone(), stopping)
        self._current = receiver
        return receiver

    def _close(self, receiver: InboxReceiver[T], *, processed: bool, crashed: bool = True) -> None:
        """End an incarnation's reading: requeue what it had not finished unless ``processed``.

        Only a ``crashed`` incarnation's deliveries count towards ``max_deliveries``; one that
        was stopped (e.g. because a sibling died) requeues its messages uncounted.
        """
        if self._current is receiver:
            self._current = None
        unfinished = receiver._in_flight
        receiver._in_flight = []
        receiver._channel.close()
        if processed or not unfinished:
            return
        if not crashed:
            unfinished = [(message, deliveries - 1) for message, deliveries in unfinished]
        kept: list[tuple[T, int]] = []
        for message, deliveries in unfinished:
            if crashed and deliveries >= self.max_deliveries:
                self.dead_letters_total += 1
                logger.bind(inbox=self.name).error(
                    "dropping a message whose delivery crashed its actor {n} times: {msg!r:.200}",
                    n=deliveries,
                    msg=message,
                )
            else:
                kept.append((message, deliveries))
        self.redelivered_total += len(kept)
        self._redeliver.extendleft(reversed(kept))


class InboxReceiver(Generic[T]):
    """What one actor incarnation reads its inbox through (``ctx.inbox``).

    Every message received is *in flight* until the next :meth:`receive` /
    :meth:`receive_batch` call or an explicit :meth:`ack`; if the incarnation crashes or is
    killed first, in-flight messages are redelivered to the next incarnation.

    After a graceful stop request the receiver hands out what is still queued, then ends
    (``receive`` raises :class:`trio.EndOfChannel`, so ``async for`` loops finish).

    Cancellation: ``receive`` and ``receive_batch`` are cancel-safe; a cancelled call
    loses no message.
    """

    def __init__(self, inbox: Inbox[T], channel: trio.MemoryReceiveChannel[T], stopping: trio.Event) -> None:
        self._inbox = inbox
        self._channel = channel
        self._stopping = stopping
        self._in_flight: list[tuple[T, int]] = []
        self._waiting: trio.CancelScope | None = None
        self._fast = 0

    @property
    def name(self) -> str:
        return self._inbox.name

    def ack(self) -> None:
        """Mark every in-flight message as processed."""
        self._in_flight.clear()

    def _take_nowait(self) -> tuple[T, int]:
        """The next message with its previous delivery count; raises ``trio.WouldBlock``."""
        if self._inbox._redeliver:
            return self._inbox._redeliver.popleft()
        return self._channel.receive_nowait(), 0

    async def _wait_readable(self) -> bool:
        """Block until a message may be there; False when a stop was requested instead."""
        if self._stopping.is_set():
            return False
        # (a cancel scope that a stop request cancels: much cheaper than a watcher task)
        with trio.CancelScope() as scope:
            self._waiting = scope
            try:
                message = await self._channel.receive()
            finally:
                self._waiting = None
            # put it where _take_nowait finds it first; it was never delivered
            self._inbox._redeliver.appendleft((message, 0))
            return True
        return False

    def _stop_requested(self) -> None:
        """Called by the actor's context on a graceful stop request: wake a blocked receive."""
        if self._waiting is not None:
            self._waiting.cancel()

    async def receive(self) -> T:
        """The next message (acknowledging the previous ones).

        Raises:
            trio.EndOfChannel: a graceful stop was requested and nothing is queued.
        """
        self._in_flight.clear()
        self._fast += 1
        if self._fast >= _YIELD_EVERY:
            self._fast = 0
            await trio.lowlevel.checkpoint()
        else:
            await trio.lowlevel.checkpoint_if_cancelled()
        try:
            message, deliveries = self._take_nowait()
        except trio.WouldBlock:
            if not await self._wait_readable():
                raise trio.EndOfChannel from None
            message, deliveries = self._take_nowait()
        self._in_flight.append((message, deliveries + 1))
        return message

    async def receive_batch(self, max_items: int, max_wait: float) -> list[T]:
        """Up to ``max_items`` messages: waits for the first, then at most ``max_wait``
        seconds more to fill the batch.  The whole batch stays in flight until the next
        call or :meth:`ack`.

        Raises:
            trio.EndOfChannel: a graceful stop was requested and nothing is queued.
        """
        self._in_flight.clear()
        batch = [await self.receive()]
        deadline = trio.current_time() + max_wait
        while len(batch) < max_items:
            try:
                message, deliveries = self._take_nowait()
            except trio.WouldBlock:
                if self._stopping.is_set() or trio.current_time() >= deadline:
                    break
                with trio.move_on_at(deadline):
                    if not await self._wait_readable():
                        break
                continue
            self._in_flight.append((message, deliveries + 1))
            batch.append(message)
        return batch

    def __aiter__(self) -> InboxReceiver[T]:
        return self

    async def __anext__(self) -> T:
        try:
            return await self.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None

    def drain_nowait(self) -> Iterator[T]:
        """Yield what is queued right now without blocking (each becomes in flight)."""
        while True:
            try:
                message, deliveries = self._take_nowait()
            except trio.WouldBlock:
                return
            self._in_flight.append((message, deliveries + 1))
            yield message
