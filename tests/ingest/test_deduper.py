"""The trade deduper: exact and fuzzy identity, and memory that stays bounded over time."""

from __future__ import annotations

import attrs

from actors.trade_merge import TradeDeduper
from protocols.polymarket import Trade


def trade(n: int, ts: float, source: str = "rtds.trades", size: float = 100.0, wallet: str = "0xw") -> Trade:
    tid = f"{source}-{n}"
    return Trade(trade_id=tid, fill_key=tid, condition_id="0xc", asset_id=f"asset-{n % 7}", side="BUY",
                 outcome="Yes", outcome_index=0, price=0.5, size=size + n, notional=(size + n) * 0.5, timestamp=ts,
                 transaction_hash=f"0x{n:x}", wallet=wallet if source != "clob" else "", trader="",
                 title="t", slug="s", event_slug="e", source=source)


def test_a_clob_fill_matches_its_rtds_twin_within_the_window_only() -> None:
    d = TradeDeduper()
    rtds = trade(1, 1000.0)
    d.remember(rtds)
    clob_twin = attrs.evolve(trade(1, 1030.0, source="clob"), size=rtds.size)
    assert d.is_duplicate(clob_twin)
    assert not d.is_duplicate(attrs.evolve(clob_twin, timestamp=1061.0))
    assert d.is_duplicate(rtds) and not d.is_duplicate(trade(2, 1000.0))


def test_the_fuzzy_index_of_rtds_trades_is_bounded_by_time_but_clob_entries_stay() -> None:
    d = TradeDeduper(capacity=100_000, fuzzy_horizon=600.0)
    clob = trade(0, 0.0, source="clob")
    d.remember(clob)
    for n in range(1, 20_001):            # 20,000 RTDS trades, one a second: 5.5 hours
        d.remember(trade(n, float(n)))
    assert len(d) == 20_001                # every id is remembered (capacity)
    assert d.fuzzy_entries <= 602          # but only ~10 minutes of RTDS trades are indexed
    # a backfilled Data API twin of the old CLOB fill is still recognised
    twin = attrs.evolve(trade(0, 5.0, source="data_api"), size=clob.size)
    assert d.is_duplicate(twin)
    # a live CLOB fill still matches a recent RTDS trade
    recent = trade(19_990, 19_990.0)
    assert d.is_duplicate(attrs.evolve(trade(19_990, 19_995.0, source="clob"), size=recent.size))


def test_ids_are_bounded_by_capacity() -> None:
    d = TradeDeduper(capacity=1000)
    for n in range(5000):
        d.remember(trade(n, float(n)))
    assert len(d) == 1000 and not d.seen("rtds.trades-0") and d.seen("rtds.trades-4999")
