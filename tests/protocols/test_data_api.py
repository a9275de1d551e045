"""Data API /trades (v1) and /v2/trades: same Trade and same trade_id as RTDS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import orjson
import pytest

from protocols.polymarket import MalformedFrame, PageStats, Trade, parse_rtds_frame, parse_trades_page

FIXTURES = Path(__file__).parent / "fixtures"

_V1_TO_V2 = {
    "proxyWallet": "proxy_wallet",
    "asset": "token_id",
    "conditionId": "condition_id",
    "eventSlug": "event_slug",
    "outcomeIndex": "outcome_index",
    "profileImage": "profile_image",
    "profileImageOptimized": "profile_image_optimized",
    "transactionHash": "transaction_hash",
}


def v1_row() -> dict[str, Any]:
    return orjson.loads((FIXTURES / "data_api_trade_v1.json").read_text())


def to_v2(row: dict[str, Any]) -> dict[str, Any]:
    return {_V1_TO_V2.get(k, k): v for k, v in row.items()}


def v2_body(rows: list[dict[str, Any]], **pagination: Any) -> bytes:
    page = {"limit": 100, "offset": 0, "has_more": False} | pagination
    return orjson.dumps({"data": [to_v2(r) for r in rows], "pagination": page})


def as_rtds(row: dict[str, Any], type_: str) -> bytes:
    return orjson.dumps({"connection_id": "c", "payload": row, "timestamp": row["timestamp"] * 1000 + 250, "topic": "activity", "type": type_})


def test_v1_real_record() -> None:
    (trade,) = parse_trades_page("[" + (FIXTURES / "data_api_trade_v1.json").read_text() + "]")
    assert trade.source == "data_api"
    assert trade.wallet == "0x6a72f61820b26b1fe4d956e17b6dc2a1ea3033ee"
    assert trade.asset_id == "82900645271827882379553460497896182861700399819920273587348429108128218714619"
    assert trade.condition_id == "0xa44867be8210197d50720a175ffbfbacd0f8f6606ad023a3da8ca5c9fec36130"
    assert (trade.side, trade.size, trade.price) == ("BUY", 4045.0, 0.59)
    assert trade.notional == pytest.approx(2386.55)
    assert trade.timestamp == 1774757922.0
    assert (trade.outcome, trade.outcome_index, trade.trader) == ("Golden Knights", 1, "kch123")
    assert (trade.title, trade.slug, trade.event_slug) == ("Capitals vs. Golden Knights", "nhl-wsh-las-2026-03-28", "nhl-wsh-las-2026-03-28")
    assert trade.transaction_hash == "0x71b487f420c54cd085a4577553e437ad5337460909f07ee5bd339adcf6a297ed"


def test_v1_and_v2_give_identical_trades() -> None:
    v1 = parse_trades_page(orjson.dumps([v1_row()]))
    v2 = parse_trades_page(v2_body([v1_row()]))
    assert v1 == v2 and len(v1) == 1


@pytest.mark.parametrize("type_", ["trades", "orders_matched"])
def test_same_fill_same_id_from_rtds_and_data_api(type_: str) -> None:
    row = v1_row()
    rtds = parse_rtds_frame(as_rtds(row, type_))
    (v1,) = parse_trades_page(orjson.dumps([row]))
    (v2,) = parse_trades_page(v2_body([row]))
    assert isinstance(rtds, Trade)
    assert rtds.trade_id == v1.trade_id == v2.trade_id
    assert rtds.fill_key == v1.fill_key == v2.fill_key
    # everything but the source matches
    assert {k: v for k, v in _fields(rtds).items() if k != "source"} == {k: v for k, v in _fields(v1).items() if k != "source"}


def test_real_nobel_rows_match_rtds_envelopes() -> None:
    rows = orjson.loads((FIXTURES / "data_api_nobel_sample.json").read_bytes())
    api = parse_trades_page(orjson.dumps(rows))
    api2 = parse_trades_page(v2_body(rows))
    rtds = [parse_rtds_frame(as_rtds(r, "trades")) for r in rows]
    assert [t.trade_id for t in api] == [t.trade_id for t in api2] == [t.trade_id for t in rtds]  # type: ignore[union-attr]
    assert len({t.trade_id for t in api}) == len(rows)
    nameless = [t for t, r in zip(api, rows) if r["name"] == ""]
    assert nameless and all(t.trader == r["pseudonym"] for t, r in zip(api, rows) if r["name"] == "")


def test_outcome_index_sentinel_in_v2() -> None:
    (trade,) = parse_trades_page(v2_body([v1_row() | {"outcomeIndex": 999}]))
    assert trade.outcome_index is None


def test_numeric_strings_in_rows() -> None:
    (trade,) = parse_trades_page(orjson.dumps([v1_row() | {"size": "4045", "price": ".59", "timestamp": "1774757922"}]))
    assert trade == parse_trades_page(orjson.dumps([v1_row()]))[0]


def test_bad_rows_are_skipped_and_counted() -> None:
    rows: list[Any] = [v1_row(), v1_row() | {"price": "x"}, 7, v1_row() | {"side": None}, v1_row() | {"size": 1.0}]
    stats = PageStats()
    trades = parse_trades_page(orjson.dumps(rows), stats=stats)
    assert len(trades) == 2 and stats.skipped == 3
    trades = parse_trades_page(v2_body([r for r in rows if isinstance(r, dict)]), stats=stats)
    assert len(trades) == 2 and stats.skipped == 5  # accumulates


def test_v2_pagination() -> None:
    stats = PageStats()
    parse_trades_page(v2_body([v1_row()], has_more=True, next_cursor="eyJ0Ijo1fQ=="), stats=stats)
    assert (stats.next_cursor, stats.has_more) == ("eyJ0Ijo1fQ==", True)
    parse_trades_page(v2_body([]), stats=stats)
    assert (stats.next_cursor, stats.has_more) == (None, False)
    assert parse_trades_page(b"[]") == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not json", "not json"),
        ("[{", "not json"),
        ('{"error": "bad cursor", "code": "INVALID_PARAMETER", "retryable": false, "trace_id": "t"}', "api error"),
        ('{"data": 5}', "not a trades page"),
        ("5", "not a trades page"),
    ],
)
def test_bad_pages(body: str, reason: str) -> None:
    with pytest.raises(MalformedFrame) as info:
        parse_trades_page(body)
    assert info.value.reason == reason


def _fields(trade: Trade) -> dict[str, Any]:
    return attrs.asdict(trade)
