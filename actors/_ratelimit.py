"""Small helpers for rate-limited logging."""

from __future__ import annotations

import trio


class LogThrottle:
    """``allow()`` is true at most once per ``interval`` seconds (trio clock); counts the rest."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._next = -float("inf")
        self.suppressed = 0

    def allow(self) -> bool:
        now = trio.current_time()
        if now >= self._next:
            self._next = now + self.interval
            return True
        self.suppressed += 1
        return False
