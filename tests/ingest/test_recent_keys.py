"""RecentKeys and RecentMap: the bounded memories the deduper, the hub and RTDS ingestion use, against plain models."""

from __future__ import annotations

import collections
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors._recent import RecentKeys, RecentMap


@given(capacity=st.integers(1, 8), keys=st.lists(st.integers(0, 20), max_size=200))
def test_it_holds_the_last_capacity_distinct_keys(capacity: int, keys: list[int]) -> None:
    recent: RecentKeys[int] = RecentKeys(capacity)
    model: collections.OrderedDict[int, None] = collections.OrderedDict()
    for key in keys:
        new = key not in model
        assert recent.add(key) is new
        if new:
            model[key] = None
            if len(model) > capacity:
                model.popitem(last=False)
        assert len(recent) == len(model) <= capacity
    assert {k for k in range(21) if k in recent} == set(model)


def test_a_key_added_again_keeps_its_place() -> None:
    recent: RecentKeys[str] = RecentKeys(2)
    recent.add("a")
    recent.add("b")
    assert recent.add("a") is False
    recent.add("c")                 # "a" is still the oldest: it goes
    assert "a" not in recent and "b" in recent and "c" in recent


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RecentKeys(0)


def test_churn_does_not_grow_it() -> None:
    """Once its keys have turned over once, its own size stays put."""
    recent: RecentKeys[int] = RecentKeys(10_000)
    for key in range(20_000):
        recent.add(key)
    full = sys.getsizeof(recent._keys) + sys.getsizeof(recent._order)
    for key in range(20_000, 400_000):
        recent.add(key)
    assert len(recent) == 10_000
    assert sys.getsizeof(recent._keys) + sys.getsizeof(recent._order) <= full


@given(capacity=st.integers(1, 8),
       ops=st.lists(st.tuples(st.integers(0, 20), st.integers()), max_size=200))
def test_recent_map_holds_the_values_of_the_last_capacity_distinct_keys(
        capacity: int, ops: list[tuple[int, int]]) -> None:
    recent: RecentMap[int, int] = RecentMap(capacity)
    model: collections.OrderedDict[int, int] = collections.OrderedDict()
    for key, value in ops:
        recent.set(key, value)
        new = key not in model
        model[key] = value          # a held key is replaced in place: it keeps its age
        if new and len(model) > capacity:
            model.popitem(last=False)
        assert len(recent) == len(model) <= capacity
    assert {k: recent.get(k) for k in range(21) if k in recent} == dict(model)
    assert all(recent.get(k) is None for k in range(21) if k not in model)


def test_recent_map_churn_does_not_grow_it() -> None:
    recent: RecentMap[int, int] = RecentMap(10_000)
    for key in range(20_000):
        recent.set(key, key)
    full = sys.getsizeof(recent._values) + sys.getsizeof(recent._order)
    for key in range(20_000, 400_000):
        recent.set(key, key)
    assert len(recent) == 10_000 and recent.get(399_999) == 399_999 and recent.get(389_999) is None
    assert sys.getsizeof(recent._values) + sys.getsizeof(recent._order) <= full
