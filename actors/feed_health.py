"""Per-feed health: what ``/status`` and metrics show about each upstream feed."""

from __future__ import annotations

from typing import Any

import attrs

from ._ratelimit import LogThrottle


@attrs.define
class FeedHealth:
    """Counters and timestamps of one feed, kept across its actor's restarts.

    Times ending in ``_at`` are wall-clock epoch seconds.
    """

    name: str
    connected: bool = False
    connected_since: float | None = None
    last_frame_at: float | None = None
    #: Newest trade timestamp (epoch s) seen on this feed: where a gap backfill starts.
    last_trade_ts: float | None = None
    frames_total: int = 0
    malformed_total: int = 0
    keepalives_total: int = 0
    connects_total: int = 0
    disconnects_total: int = 0
    stalls_total: int = 0
    gaps_total: int = 0
    gap_seconds_total: float = 0.0
    trades_backfilled_total: int = 0
    #: Extra per-feed counters (e.g. maker rows, CLOB events by type).
    counters: dict[str, int] = attrs.field(factory=dict)
    _malformed_log: LogThrottle = attrs.field(factory=lambda: LogThrottle(60.0), repr=False, eq=False)

    def count(self, key: str, n: int = 1) -> None:
        self.counters[key] = self.counters.get(key, 0) + n

    def drop_malformed(self, log: Any, what: str, text: str, n: int = 1) -> None:
        """Count ``n`` malformed items of one frame; log it at most once a minute (never raises)."""
        self.malformed_total += n
        if self._malformed_log.allow():
            log.warning("{feed}: dropped {what}: {f!r:.120}", feed=self.name, what=what, f=text)

    def as_dict(self, now: float) -> dict[str, Any]:
        data = attrs.asdict(self, filter=lambda attribute, _: not attribute.name.startswith("_"))
        data["last_frame_age_s"] = None if self.last_frame_at is None else max(0.0, now - self.last_frame_at)
        return data
