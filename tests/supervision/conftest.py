from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from ._util import capture_logs

#: No test here needs more virtual time; a deadlocked one fails at this point instead of
#: hanging (with ``autojump_clock`` a deadlock jumps straight to the deadline).
VIRTUAL_LIMIT = 100_000
HERE = Path(__file__).parent


@pytest.fixture
def log_records() -> Iterator[list[dict[str, Any]]]:
    """loguru records emitted during the test (sink removed afterwards)."""
    with capture_logs() as records:
        yield records


def _with_virtual_deadline(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        with trio.fail_after(VIRTUAL_LIMIT):
            return await fn(*args, **kwargs)

    return wrapper


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run every async test of this directory under ``trio.fail_after(VIRTUAL_LIMIT)``."""
    for item in items:
        if isinstance(item, pytest.Function) and HERE in item.path.parents and inspect.iscoroutinefunction(item.obj):
            item.obj = _with_virtual_deadline(item.obj)
