"""Fixtures of the AI tests."""

from __future__ import annotations

import pytest
import trio.testing


@pytest.fixture
def io_clock() -> trio.testing.MockClock:
    """Virtual time for tests that also talk over loopback sockets: it jumps once every task has
    been blocked for 10 ms of real time (with 0 it could jump while a socket read is still due)."""
    return trio.testing.MockClock(autojump_threshold=0.01)
