"""Bounded memories of the keys seen last: what the deduplicating actors remember."""

from __future__ import annotations

import collections
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class RecentKeys(Generic[K]):
    """The last ``capacity`` distinct keys added; the oldest is forgotten first.

    A set for lookups and a FIFO for the order.  At 100,000 keys that is about 50 bytes a key
    beyond the keys themselves, where an ``OrderedDict`` takes 150 (at 40,000, both about 110).
    Once the keys have turned over once, the set's table keeps its size however long they
    churn.  Adding a key already held changes nothing (it keeps its place in the order).
    Not thread-safe; nothing here awaits.
    """

    __slots__ = ("_keys", "_order", "capacity")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {capacity}")
        self.capacity = capacity
        self._keys: set[K] = set()
        self._order: collections.deque[K] = collections.deque()

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, key: K) -> bool:
        """Remember ``key``; False if it was held already."""
        if key in self._keys:
            return False
        self._keys.add(key)
        self._order.append(key)
        if len(self._order) > self.capacity:
            self._keys.discard(self._order.popleft())
        return True


class RecentMap(Generic[K, V]):
    """A value for each of the last ``capacity`` distinct keys set; the oldest is forgotten first.

    :class:`RecentKeys` with a value per key: a dict and a FIFO, about 100 bytes a key beyond
    the keys and values (an ``OrderedDict`` takes about 200).  Setting a key already held
    replaces its value and keeps its place in the order.  Not thread-safe; nothing here awaits.
    """

    __slots__ = ("_values", "_order", "capacity")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {capacity}")
        self.capacity = capacity
        self._values: dict[K, V] = {}
        self._order: collections.deque[K] = collections.deque()

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def __len__(self) -> int:
        return len(self._values)

    def get(self, key: K) -> V | None:
        return self._values.get(key)

    def set(self, key: K, value: V) -> None:
        """Hold ``value`` for ``key``; a new key may make the oldest one go."""
        values = self._values
        if key not in values:
            self._order.append(key)
            if len(self._order) > self.capacity:
                del values[self._order.popleft()]
        values[key] = value


__all__ = ["RecentKeys", "RecentMap"]
