"""Which broadcasts an outlet sends: one :class:`AlertRules` per outlet (pure, no I/O)."""

from __future__ import annotations

import re
from datetime import datetime, time, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import attrs

from protocols.polymarket import MarketInfo

#: Broadcast types an outlet can send.
ALERT_TYPES = ("whale_trade", "prediction")


@attrs.frozen
class QuietHours:
    """A daily window (``start`` inclusive, ``end`` exclusive, may wrap midnight) in ``timezone``."""

    start: time
    end: time
    timezone: tzinfo = attrs.field(factory=lambda: ZoneInfo("UTC"))

    def contains(self, epoch_seconds: float) -> bool:
        now = datetime.fromtimestamp(epoch_seconds, self.timezone).time().replace(tzinfo=None)
        if self.start <= self.end:
            return self.start <= now < self.end
        return now >= self.start or now < self.end


def _words(values: tuple[str, ...]) -> re.Pattern[str] | None:
    if not values:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(re.escape(v.lower()) for v in values) + r")(?!\w)")


def _lower_set(values: tuple[str, ...]) -> frozenset[str]:
    return frozenset(v.lower() for v in values)


@attrs.frozen
class AlertRules:
    """An outlet's filter.  Empty include lists mean "all".

    Order of decisions (:meth:`decide`): the type must be one of ``types``; a trade by a
    ``wallets`` entry always alerts (watch-list: even in quiet hours); then quiet hours; then
    amount, tiers, sides, markets, categories and title words must all pass.
    """

    types: tuple[str, ...] = ("whale_trade",)
    min_amount: float = 0.0
    tiers: tuple[str, ...] = ()
    #: Whale ``side`` (the outcome: YES/NO/label) or ``action`` (BUY/SELL), case-insensitive.
    sides: tuple[str, ...] = ()
    #: Condition ids, market slugs or event slugs.
    markets: tuple[str, ...] = ()
    exclude_markets: tuple[str, ...] = ()
    #: Gamma category or tag (case-insensitive).
    categories: tuple[str, ...] = ()
    exclude_categories: tuple[str, ...] = ()
    #: Whole words (or phrases) of the market title, case-insensitive.
    title_words: tuple[str, ...] = ()
    exclude_title_words: tuple[str, ...] = ()
    #: Watch-list: trades by these wallets always alert.
    wallets: tuple[str, ...] = ()
    quiet_hours: QuietHours | None = None

    _title_in: re.Pattern[str] | None = attrs.field(init=False, eq=False, repr=False)
    _title_out: re.Pattern[str] | None = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_title_in", _words(self.title_words))
        object.__setattr__(self, "_title_out", _words(self.exclude_title_words))

    def decide(self, type_: str, data: dict[str, Any], market: MarketInfo | None, now: float) -> str | None:
        """None when the outlet should send this broadcast, else why not (a short reason)."""
        if type_ not in self.types:
            return "type"
        wallet = str(data.get("wallet") or "").lower()
        if wallet and wallet in _lower_set(self.wallets):
            return None
        if self.quiet_hours is not None and self.quiet_hours.contains(now):
            return "quiet_hours"
        amount = data.get("amount")
        if self.min_amount and isinstance(amount, int | float) and amount < self.min_amount:
            return "min_amount"
        if self.tiers and type_ == "whale_trade" and str(data.get("tier", "")).lower() not in _lower_set(self.tiers):
            return "tier"
        if self.sides and type_ == "whale_trade":
            sides = _lower_set(self.sides)
            if str(data.get("side", "")).lower() not in sides and str(data.get("action", "")).lower() not in sides:
                return "side"
        ids = {str(data.get(k) or "").lower() for k in ("condition_id", "slug", "event_slug")}
        if market is not None:
            ids |= {market.slug.lower(), market.event_slug.lower()}
        ids.discard("")
        if self.markets and not ids & _lower_set(self.markets):
            return "market"
        if ids & _lower_set(self.exclude_markets):
            return "excluded_market"
        if self.categories or self.exclude_categories:
            labels = set(market.tags) | {market.category.lower()} if market is not None else set()
            labels.discard("")
            if self.categories and not labels & _lower_set(self.categories):
                return "category"
            if labels & _lower_set(self.exclude_categories):
                return "excluded_category"
        title = str(data.get("market") or data.get("title") or (market.question if market else "")).lower()
        if self._title_in is not None and not self._title_in.search(title):
            return "title"
        if self._title_out is not None and self._title_out.search(title):
            return "excluded_title"
        return None
