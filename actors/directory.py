"""The market directory: what the service knows about each market, owned by the catalog actor.

Other actors read it directly (it is read-mostly and trio is single-threaded); only the
catalog actor writes it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import attrs

from protocols.polymarket import MarketInfo


@attrs.define
class Resolution:
    condition_id: str
    winning_asset_id: str
    winning_outcome: str
    timestamp: float


@attrs.define
class MarketDirectory:
    """Markets by condition id and token id, plus resolutions.

    Attributes:
        version: Bumped on every change (readers can cache against it).
        refreshed_at: Wall time of the last complete catalog refresh.
    """

    markets: dict[str, MarketInfo] = attrs.field(factory=dict)
    by_token: dict[str, str] = attrs.field(factory=dict)
    resolutions: dict[str, Resolution] = attrs.field(factory=dict)
    version: int = 0
    refreshed_at: float | None = None
    refreshes_total: int = 0
    lookups_total: int = 0
    lookup_misses_total: int = 0

    def __len__(self) -> int:
        return len(self.markets)

    def get(self, condition_id: str) -> MarketInfo | None:
        return self.markets.get(condition_id)

    def for_token(self, token_id: str) -> MarketInfo | None:
        cid = self.by_token.get(token_id)
        return self.markets.get(cid) if cid is not None else None

    def upsert(self, markets: Iterable[MarketInfo]) -> int:
        """Add or replace markets; returns how many were new."""
        new = 0
        for market in markets:
            old = self.markets.get(market.condition_id)
            if old is None:
                new += 1
            elif old.token_ids != market.token_ids:
                for token in old.token_ids:
                    self.by_token.pop(token, None)
            self.markets[market.condition_id] = market
            for token in market.token_ids:
                self.by_token[token] = market.condition_id
        self.version += 1
        return new

    def resolve(self, resolution: Resolution) -> None:
        self.resolutions[resolution.condition_id] = resolution
        market = self.markets.get(resolution.condition_id)
        if market is not None:
            self.markets[market.condition_id] = attrs.evolve(market, active=False, closed=True)
        self.version += 1

    def tradable_tokens(self, wanted: Callable[[MarketInfo], bool] | None = None) -> set[str]:
        """Tokens of markets that are active, not closed and ``wanted`` (what the CLOB feed watches)."""
        return {t for m in self.markets.values()
                if m.active and not m.closed and (wanted is None or wanted(m)) for t in m.token_ids}

    def retire_missing(self, seen: set[str]) -> int:
        """After a full refresh: mark markets Gamma no longer lists as active as closed."""
        retired = 0
        for cid, market in list(self.markets.items()):
            if cid not in seen and market.active and not market.closed:
                self.markets[cid] = attrs.evolve(market, active=False)
                retired += 1
        if retired:
            self.version += 1
        return retired
