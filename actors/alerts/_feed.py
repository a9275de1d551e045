"""An outlet's queue of broadcasts, filled by the hub without awaiting (private)."""

from __future__ import annotations

import collections

import trio

from ..hub import RingEntry

#: Keys of overflowed alerts kept for recording (beyond this, only counted).
_OVERFLOW_KEPT = 10_000


class AlertFeed:
    """Broadcasts of the wanted ``types`` for one outlet, in order, at most ``max_size`` waiting.

    The hub calls :meth:`offer` for every broadcast (never blocks).  Beyond ``max_size`` an
    entry is not queued: it goes to :attr:`overflow`, which the outlet records as undeliverable
    (reason ``overflow``) — an outlet that is down for long loses alerts visibly, never silently,
    and never holds unbounded memory.
    """

    def __init__(self, types: tuple[str, ...], max_size: int) -> None:
        self.types = frozenset(types)
        self.max_size = max_size
        self.items: collections.deque[RingEntry] = collections.deque()
        self.overflow: collections.deque[RingEntry] = collections.deque(maxlen=_OVERFLOW_KEPT)
        self.overflow_total = 0
        self._wake = trio.Event()

    def offer(self, entry: RingEntry) -> None:
        if entry.type not in self.types or entry.key is None:
            return
        if len(self.items) >= self.max_size:
            self.overflow.append(entry)
            self.overflow_total += 1
        else:
            self.items.append(entry)
        self._wake.set()

    async def wait(self) -> None:
        """Until something is queued (or overflowed)."""
        while not self.items and not self.overflow:
            await self._wake.wait()
            self._wake = trio.Event()
