"""RTDS frames: activity trades, keepalives, malformed input, subscription builders."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.polymarket import (
    ACTIVITY_SUBSCRIPTIONS,
    RTDS_PING,
    MalformedFrame,
    RtdsOther,
    Trade,
    ms_to_seconds,
    parse_clob_frame,
    parse_rtds_frame,
    rtds_subscribe_message,
    rtds_unsubscribe_message,
    to_epoch_seconds,
    to_float,
    trade_keys,
)

FIXTURES = Path(__file__).parent / "fixtures"


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text()


def envelope(payload: Any, type_: str = "trades", topic: str = "activity", **extra: Any) -> str:
    obj = {"connection_id": "x", "payload": payload, "timestamp": 1787102287053, "topic": topic, "type": type_}
    obj.update(extra)
    return orjson.dumps(obj).decode()


def trades_payload() -> dict[str, Any]:
    return orjson.loads(fixture_text("rtds_trades.json"))["payload"]


# --- verbatim frames -------------------------------------------------------------------------


def test_real_trades_frame() -> None:
    trade = parse_rtds_frame(fixture_text("rtds_trades.json"))
    assert isinstance(trade, Trade)
    assert trade.source == "rtds.trades"
    assert trade.condition_id == "0x1d8720896546460a48d4f7fd5b3f0705a8d427921222de498d1cd334d4890c52"
    assert trade.asset_id == "72551024098258542594534683942523606143014690620243023298497729957846870197074"
    assert trade.side == "BUY"
    assert trade.outcome == "No"
    assert trade.outcome_index == 1
    assert trade.price == 0.26
    assert trade.size == 2.7027
    assert trade.notional == pytest.approx(0.702702)
    assert trade.timestamp == 1787102287.0  # payload seconds, not the envelope's ms
    assert trade.transaction_hash == "0xb6acf6859bc84216f4b3e2567fb392a2eae19d275340ad96ea17218ccfec27b7"
    assert trade.wallet == "0x510F4963b66B1B18505faaB74b0bB943D1dDa43C"  # as given, mixed case
    assert trade.trader == "PPMT"
    assert trade.title == "Will the highest temperature in Wellington be 10C on August 19?"
    assert trade.slug == "highest-temperature-in-wellington-on-august-19-2026-10c"
    assert trade.event_slug == "highest-temperature-in-wellington-on-august-19-2026"
    assert len(trade.trade_id) == 20 and len(trade.fill_key) == 20
    assert trade.trade_id != trade.fill_key


def test_real_orders_matched_frame_with_field_subset() -> None:
    trade = parse_rtds_frame(fixture_text("rtds_orders_matched.json"))
    assert isinstance(trade, Trade)
    assert trade.source == "rtds.orders_matched"
    assert trade.outcome == "Up"
    assert trade.outcome_index is None  # missing
    assert trade.size == 50.0 and isinstance(trade.size, float)
    assert trade.notional == pytest.approx(24.5)
    assert trade.transaction_hash == ""
    assert trade.title == "" and trade.slug == ""
    assert trade.event_slug == "eth-updown-15m-1766038500"
    assert trade.trader == "gabagool22"
    assert trade.timestamp == 1766038581.0


def test_bytes_and_str_parse_the_same() -> None:
    text = fixture_text("rtds_trades.json")
    assert parse_rtds_frame(text.encode()) == parse_rtds_frame(text)
    assert parse_rtds_frame(bytearray(text.encode())) == parse_rtds_frame(text)


# --- identity --------------------------------------------------------------------------------


def test_taker_row_from_trades_and_orders_matched_share_trade_id() -> None:
    payload = trades_payload()
    from_trades = parse_rtds_frame(envelope(payload, "trades"))
    from_matched = parse_rtds_frame(envelope(payload, "orders_matched", timestamp=1787102289000))
    assert isinstance(from_trades, Trade) and isinstance(from_matched, Trade)
    assert from_trades.trade_id == from_matched.trade_id
    assert from_trades.fill_key == from_matched.fill_key
    assert from_trades.source != from_matched.source


def test_maker_and_taker_rows_of_one_tx_get_different_trade_ids() -> None:
    taker = trades_payload()
    maker = dict(taker, proxyWallet="0x1111111111111111111111111111111111111111", side="SELL", name="maker")
    maker2 = dict(taker, proxyWallet="0x2222222222222222222222222222222222222222", side="SELL", name="m2")
    ids = {parse_rtds_frame(envelope(p)).trade_id for p in (taker, maker, maker2)}  # type: ignore[union-attr]
    assert len(ids) == 3


def test_trade_id_ignores_wallet_case_and_matches_two_fills_apart() -> None:
    payload = trades_payload()
    lower = dict(payload, proxyWallet=payload["proxyWallet"].lower())
    a = parse_rtds_frame(envelope(payload))
    b = parse_rtds_frame(envelope(lower))
    assert a.trade_id == b.trade_id  # type: ignore[union-attr]
    bigger = parse_rtds_frame(envelope(dict(payload, size=2.7028)))
    assert bigger.trade_id != a.trade_id  # type: ignore[union-attr]


@pytest.mark.parametrize("name", ["rtds_trades.json", "rtds_orders_matched.json"])
def test_public_trade_keys_agree_with_parsed_ids(name: str) -> None:
    t = parse_rtds_frame(fixture_text(name))
    assert isinstance(t, Trade)
    keys = trade_keys(t.transaction_hash, t.asset_id, t.wallet, t.side, t.size, t.price, t.timestamp)
    assert keys == (t.trade_id, t.fill_key)


def test_trade_id_formula() -> None:
    from hashlib import sha1

    t = parse_rtds_frame(fixture_text("rtds_trades.json"))
    raw = f"{t.transaction_hash}|{t.asset_id}|{t.wallet.lower()}|BUY|2.702700|0.260000"  # type: ignore[union-attr]
    assert t.trade_id == sha1(raw.encode()).hexdigest()[:20]  # type: ignore[union-attr]
    raw = f"{t.transaction_hash}|{t.asset_id}|BUY|2.702700|0.260000"  # type: ignore[union-attr]
    assert t.fill_key == sha1(raw.encode()).hexdigest()[:20]  # type: ignore[union-attr]


def test_missing_tx_hash_falls_back_to_timestamp() -> None:
    payload = orjson.loads(fixture_text("rtds_orders_matched.json"))["payload"]
    first = parse_rtds_frame(envelope(payload, "orders_matched"))
    later = parse_rtds_frame(envelope(dict(payload, timestamp=payload["timestamp"] + 60), "orders_matched"))
    assert first.trade_id != later.trade_id  # type: ignore[union-attr]


def test_clob_last_trade_price_fill_key_matches_rtds_taker_row() -> None:
    payload = trades_payload()
    rtds = parse_rtds_frame(envelope(payload))
    clob_frame = orjson.dumps(
        {
            "event_type": "last_trade_price",
            "market": payload["conditionId"],
            "asset_id": payload["asset"],
            "price": "0.26",
            "size": "2.7027",
            "side": "BUY",
            "fee_rate_bps": "0",
            "timestamp": "1787102285123",
            "transaction_hash": payload["transactionHash"],
        }
    )
    clob_trade = parse_clob_frame(clob_frame).events[1]
    assert isinstance(clob_trade, Trade)
    assert clob_trade.fill_key == rtds.fill_key  # type: ignore[union-attr]
    assert clob_trade.trade_id != rtds.trade_id  # type: ignore[union-attr]  # no wallet on CLOB


# --- field traps -----------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [(999, None), ("999", None), (0, 0), ("1", 1), (None, None), ("x", None), (True, None)])
def test_outcome_index(raw: Any, expected: int | None) -> None:
    trade = parse_rtds_frame(envelope(dict(trades_payload(), outcomeIndex=raw)))
    assert trade.outcome_index == expected  # type: ignore[union-attr]


def test_outcome_index_absent() -> None:
    payload = trades_payload()
    del payload["outcomeIndex"]
    assert parse_rtds_frame(envelope(payload)).outcome_index is None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("name", "pseudonym", "expected"),
    [("PPMT", "Rowdy", "PPMT"), ("", "Rowdy", "Rowdy"), (None, "Rowdy", "Rowdy"), ("", "", ""), (None, None, "")],
)
def test_trader_name_falls_back_to_pseudonym(name: Any, pseudonym: Any, expected: str) -> None:
    trade = parse_rtds_frame(envelope(dict(trades_payload(), name=name, pseudonym=pseudonym)))
    assert trade.trader == expected  # type: ignore[union-attr]


@pytest.mark.parametrize(("price", "size"), [("0.26", "2.7027"), (".26", "2.7027"), (0.26, "2.7027"), ("0.26", 2.7027)])
def test_numeric_strings_accepted(price: Any, size: Any) -> None:
    reference = parse_rtds_frame(envelope(trades_payload()))
    trade = parse_rtds_frame(envelope(dict(trades_payload(), price=price, size=size)))
    assert trade == reference


def test_integer_size_and_side_case() -> None:
    trade = parse_rtds_frame(envelope(dict(trades_payload(), size=50, side="sell")))
    assert trade.size == 50.0 and trade.side == "SELL"  # type: ignore[union-attr]


@pytest.mark.parametrize("price", ["abc", None, -0.1, 1.5, True, "nan", "inf", "0.2_5", [], {}, ""])
def test_bad_price_is_malformed(price: Any) -> None:
    with pytest.raises(MalformedFrame) as info:
        parse_rtds_frame(envelope(dict(trades_payload(), price=price)))
    assert info.value.reason == "bad price"


@pytest.mark.parametrize("size", ["abc", None, -1, False, "-inf"])
def test_bad_size_is_malformed(size: Any) -> None:
    with pytest.raises(MalformedFrame) as info:
        parse_rtds_frame(envelope(dict(trades_payload(), size=size)))
    assert info.value.reason == "bad size"


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [("side", "HOLD", "bad side"), ("side", None, "bad side"), ("asset", None, "missing asset"),
     ("asset", 123, "missing asset"), ("conditionId", "", "missing condition id")],
)
def test_bad_identity_fields_are_malformed(field: str, value: Any, reason: str) -> None:
    with pytest.raises(MalformedFrame) as info:
        parse_rtds_frame(envelope(dict(trades_payload(), **{field: value})))
    assert info.value.reason == reason


def test_timestamp_fallbacks() -> None:
    payload = trades_payload()
    del payload["timestamp"]
    assert parse_rtds_frame(envelope(payload)).timestamp == pytest.approx(1787102287.053)  # type: ignore[union-attr]
    in_ms = dict(trades_payload(), timestamp=1787102287000)
    assert parse_rtds_frame(envelope(in_ms)).timestamp == 1787102287.0  # type: ignore[union-attr]
    as_string = dict(trades_payload(), timestamp="1787102287")
    assert parse_rtds_frame(envelope(as_string)).timestamp == 1787102287.0  # type: ignore[union-attr]
    no_time = orjson.dumps({"topic": "activity", "type": "trades", "payload": payload})
    with pytest.raises(MalformedFrame, match="bad timestamp"):
        parse_rtds_frame(no_time)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(".48", 0.48), ("0.5", 0.5), (" 7 ", 7.0), ("1e-3", 0.001), (3, 3.0), (2.5, 2.5), (float("nan"), None),
     (float("inf"), None), ("-inf", None), ("NaN", None), ("1_000", None), (True, None), (None, None), ("", None),
     (10**400, None), ([1], None)],
)
def test_to_float(raw: Any, expected: float | None) -> None:
    assert to_float(raw) == expected


def test_timestamp_helpers() -> None:
    assert ms_to_seconds("1757908892351") == 1757908892.351
    assert ms_to_seconds("-1") is None and ms_to_seconds("x") is None
    assert to_epoch_seconds(1787102287) == 1787102287.0
    assert to_epoch_seconds(1787102287053) == 1787102287.053
    assert to_epoch_seconds(-5) is None


# --- keepalives, garbage, other topics -------------------------------------------------------


@pytest.mark.parametrize("frame", ["PONG", "pong", "", "   ", "\n", " PONG\r\n", b"PONG", b"", "PING", '{"type":"pong"}', '{"type":"subscribed"}'])
def test_keepalives_return_none(frame: str | bytes) -> None:
    assert parse_rtds_frame(frame) is None


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ("hello", "not json"),
        ("{", "not json"),
        ("PONGPONG", "not json"),
        (b"\xff\xfe", "not json"),
        ("[]", "not an object"),
        ("1", "not an object"),
        ('"PONG"', "not an object"),
        ("null", "not an object"),
        ('{"payload": {}}', "bad envelope"),
        ('{"topic": "activity"}', "bad envelope"),
        ('{"topic": 1, "type": "trades"}', "bad envelope"),
        ('{"topic": "activity", "type": "trades"}', "bad payload"),
        ('{"topic": "activity", "type": "trades", "payload": [1]}', "bad payload"),
    ],
)
def test_malformed_frames(frame: str | bytes, reason: str) -> None:
    with pytest.raises(MalformedFrame) as info:
        parse_rtds_frame(frame)
    assert info.value.reason == reason
    assert isinstance(info.value, ValueError)


def test_truncated_real_frame_is_malformed() -> None:
    text = fixture_text("rtds_trades.json").strip()
    for cut in (1, 10, len(text) // 2, len(text) - 1):
        with pytest.raises(MalformedFrame, match="not json"):
            parse_rtds_frame(text[:cut])


def test_other_topics_and_types_are_marked() -> None:
    crypto = '{"topic":"crypto_prices","type":"update","timestamp":1,"payload":{"symbol":"btcusdt","timestamp":1,"value":1}}'
    assert parse_rtds_frame(crypto) == RtdsOther("crypto_prices", "update")
    assert parse_rtds_frame(envelope({}, "comment_created", "comments")) == RtdsOther("comments", "comment_created")
    # an unknown activity type is not a trade, whatever its payload looks like
    assert parse_rtds_frame(envelope(trades_payload(), "something_new")) == RtdsOther("activity", "something_new")
    # unknown payload fields are ignored
    extended = dict(trades_payload(), fee=0.01, brandNewField={"x": [1]})
    assert parse_rtds_frame(envelope(extended)) == parse_rtds_frame(envelope(trades_payload()))


# --- builders --------------------------------------------------------------------------------


def test_subscribe_message_matches_documented_shape() -> None:
    documented = orjson.loads(fixture_text("rtds_subscribe.json"))
    assert orjson.loads(rtds_subscribe_message([("activity", "orders_matched")])) == documented
    both = orjson.loads(rtds_subscribe_message())
    assert both == {
        "action": "subscribe",
        "subscriptions": [{"topic": "activity", "type": "trades"}, {"topic": "activity", "type": "orders_matched"}],
    }
    assert tuple((s["topic"], s["type"]) for s in both["subscriptions"]) == ACTIVITY_SUBSCRIPTIONS


def test_subscribe_message_filters_are_strings() -> None:
    msg = orjson.loads(
        rtds_subscribe_message(
            [
                {"topic": "activity", "type": "trades", "filters": {"event_slug": "some-event"}},
                ("activity", "orders_matched", '{"market_slug":"m"}'),
                ("crypto_prices", "*", ""),
            ]
        )
    )
    subs = msg["subscriptions"]
    assert subs[0]["filters"] == '{"event_slug":"some-event"}'
    assert subs[1]["filters"] == '{"market_slug":"m"}'
    assert "filters" not in subs[2]
    assert orjson.loads(rtds_unsubscribe_message([("activity", "trades")]))["action"] == "unsubscribe"
    with pytest.raises(TypeError):
        rtds_subscribe_message("activity")


def test_ping_constant() -> None:
    assert RTDS_PING == "PING"


# --- property: total over arbitrary input ----------------------------------------------------


def _check_total(frame: Any) -> None:
    try:
        result = parse_rtds_frame(frame)
    except MalformedFrame as exc:
        assert isinstance(exc.reason, str) and exc.reason
        return
    assert result is None or isinstance(result, (Trade, RtdsOther))
    if isinstance(result, Trade):
        assert math.isfinite(result.price) and math.isfinite(result.size) and math.isfinite(result.timestamp)
        assert 0.0 <= result.price <= 1.0 and result.size >= 0.0


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(), st.binary()))
def test_arbitrary_text_or_bytes_never_raises_anything_else(frame: str | bytes) -> None:
    _check_total(frame)


_json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12),
    st.sampled_from(["0.26", ".5", "1e-3", "nan", "BUY", "sell", "999", "", "1787102287"]),
)
_json_values = st.recursive(_json_scalars, lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)), max_leaves=8)
_payload_keys = ["asset", "conditionId", "price", "size", "side", "timestamp", "outcomeIndex", "name", "pseudonym",
                 "proxyWallet", "transactionHash", "outcome", "title", "slug", "eventSlug"]


@st.composite
def _envelopes(draw: st.DrawFn) -> bytes:
    payload = dict(trades_payload())
    for key in draw(st.lists(st.sampled_from(_payload_keys), max_size=4, unique=True)):
        if draw(st.booleans()):
            payload[key] = draw(_json_values)
        else:
            payload.pop(key, None)
    env: dict[str, Any] = {
        "topic": draw(st.one_of(st.just("activity"), _json_values)),
        "type": draw(st.one_of(st.sampled_from(["trades", "orders_matched", "update"]), _json_values)),
        "payload": draw(st.one_of(st.just(payload), _json_values)),
        "timestamp": draw(st.one_of(st.just(1787102287053), _json_values)),
    }
    for key in draw(st.lists(st.sampled_from(list(env)), max_size=2, unique=True)):
        del env[key]
    return orjson.dumps(env)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_envelopes())
def test_mutated_envelopes_never_raise_anything_else(frame: bytes) -> None:
    _check_total(frame)
