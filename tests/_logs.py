"""Capturing loguru records in tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from loguru import logger


@contextmanager
def capture_logs(level: str = "DEBUG") -> Iterator[list[dict[str, Any]]]:
    """Collect loguru records emitted inside the block (the sink is removed afterwards)."""
    records: list[dict[str, Any]] = []
    sink_id = logger.add(lambda message: records.append(message.record), level=level, format="{message}",
                         catch=False)
    try:
        yield records
    finally:
        logger.remove(sink_id)
