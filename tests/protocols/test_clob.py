"""CLOB market channel: every event type, object vs array frames, keepalives, builders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.polymarket import (
    CLOB_PING,
    ClobParse,
    MalformedFrame,
    MarketResolved,
    NewMarket,
    PriceTick,
    TickSizeChange,
    Trade,
    clob_operation_message,
    clob_subscribe_message,
    parse_clob_event,
    parse_clob_frame,
)

FIXTURES = Path(__file__).parent / "fixtures"


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text()


def fixture_obj(name: str) -> dict[str, Any]:
    return orjson.loads(fixture_text(name))


def only(frame: str | bytes) -> Any:
    result = parse_clob_frame(frame)
    assert result.malformed == 0
    assert len(result.events) == 1
    return result.events[0]


# --- each documented event -------------------------------------------------------------------


def test_book_best_levels_sorted_locally() -> None:
    tick = only(fixture_text("clob_book.json"))
    assert tick == PriceTick(
        condition_id="0xbd31dc8a20211944f6b70f31557f1001557b59905b7738480ca09bd4532f84af",
        asset_id="65818619657568813474341868652308942079804919287380422192892211131408793125422",
        best_bid=0.50,  # bids arrive worst-first (".48", ".49", ".50"): the max, not the first
        best_ask=0.52,
        last_price=None,
        timestamp=123456789.0,
    )


def test_book_ordering_empty_sides_zero_levels_and_extra_fields() -> None:
    book = fixture_obj("clob_book.json")
    book["bids"] = list(reversed(book["bids"])) + [{"price": "0.51", "size": "0"}]  # removed level
    book["asks"] = []
    book["tick_size"] = "0.01"
    book["last_trade_price"] = "0.505"
    tick = only(orjson.dumps(book))
    assert (tick.best_bid, tick.best_ask, tick.last_price) == (0.50, None, 0.505)
    del book["bids"]
    assert only(orjson.dumps(book)).best_bid is None


def test_book_with_bad_level_is_malformed() -> None:
    book = fixture_obj("clob_book.json")
    book["asks"][1]["price"] = "abc"
    assert parse_clob_frame(orjson.dumps(book)) == ClobParse((), 1)


def test_price_change_new_schema() -> None:
    result = parse_clob_frame(fixture_text("clob_price_change_new.json"))
    market = "0x5f65177b394277fd294cd75650044e32ba009a95022d88a0c1d565897d72f8f1"
    assert result.malformed == 0
    assert result.events == (
        # "1" ask / "0" bid mean an empty side
        PriceTick(market, "71321045679252212594626385532706912750332728571942532289631379312455583992563", 0.5, None, None, 1757908892.351),
        PriceTick(market, "52114319501245915516055106046884209969926127482827954674443846427813813222426", None, 0.5, None, 1757908892.351),
    )


def test_price_change_new_schema_regular_quotes() -> None:
    obj = fixture_obj("clob_price_change_new.json")
    obj["price_changes"][0].update(best_bid=".48", best_ask="0.52")
    tick = parse_clob_frame(orjson.dumps(obj)).events[0]
    assert (tick.best_bid, tick.best_ask) == (0.48, 0.52)


def test_price_change_legacy_schema_emits_nothing() -> None:
    assert parse_clob_frame(fixture_text("clob_price_change_legacy.json")) == ClobParse((), 0)


def test_price_change_legacy_with_quotes_is_used() -> None:
    obj = fixture_obj("clob_price_change_legacy.json")
    obj["changes"][0].update(best_bid="0.39", best_ask="0.4")
    tick = only(orjson.dumps(obj))
    assert tick.asset_id == obj["asset_id"]  # inherited from the top level
    assert (tick.best_bid, tick.best_ask) == (0.39, 0.4)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda o: o.pop("market"),
        lambda o: o.update(price_changes="nope"),
        lambda o: o.update(timestamp="yesterday"),
        lambda o: o["price_changes"][1].update(best_ask="abc"),
        lambda o: o["price_changes"][1].pop("asset_id"),
        lambda o: o["price_changes"].append(7),
    ],
)
def test_bad_price_change_dropped_whole(mutate: Any) -> None:
    obj = fixture_obj("clob_price_change_new.json")
    mutate(obj)
    assert parse_clob_frame(orjson.dumps(obj)) == ClobParse((), 1)


def test_tick_size_change() -> None:
    event = only(fixture_text("clob_tick_size_change.json"))
    assert event == TickSizeChange(
        "0xbd31dc8a20211944f6b70f31557f1001557b59905b7738480ca09bd4532f84af",
        "65818619657568813474341868652308942079804919287380422192892211131408793125422",
        0.01,
        0.001,
        100000.0,  # the docs' placeholder "100000000" ms
    )


def test_last_trade_price_yields_tick_and_trade() -> None:
    result = parse_clob_frame(fixture_text("clob_last_trade_price.json"))
    assert result.malformed == 0
    tick, trade = result.events
    market = "0x6a67b9d828d53862160e470329ffea5246f338ecfffdf2cab45211ec578b0347"
    asset = "114122071509644379678018727908709560226618148003371446110114509806601493071694"
    assert tick == PriceTick(market, asset, None, None, 0.456, 1750428146.322)
    assert isinstance(trade, Trade)
    assert (trade.condition_id, trade.asset_id, trade.side) == (market, asset, "BUY")
    assert trade.price == 0.456 and trade.size == 219.217767
    assert trade.notional == pytest.approx(0.456 * 219.217767)
    assert trade.timestamp == 1750428146.322
    assert (trade.wallet, trade.trader, trade.transaction_hash, trade.source) == ("", "", "", "clob")
    assert trade.outcome == "" and trade.outcome_index is None


def test_last_trade_price_with_transaction_hash_and_bad_side() -> None:
    obj = fixture_obj("clob_last_trade_price.json")
    obj["transaction_hash"] = "0xABC"
    trade = parse_clob_frame(orjson.dumps(obj)).events[1]
    assert trade.transaction_hash == "0xABC"
    obj["side"] = "UP"
    assert parse_clob_frame(orjson.dumps(obj)) == ClobParse((), 1)


def test_best_bid_ask() -> None:
    assert only(fixture_text("clob_best_bid_ask.json")) == PriceTick(
        "0x0005c0d312de0be897668695bae9f32b624b4a1ae8b140c49f08447fcc74f442",
        "85354956062430465315924116860125388538595433819574542752031640332592237464430",
        0.73,
        0.77,
        None,
        1766789469.958,
    )


def test_new_market() -> None:
    assert only(fixture_text("clob_new_market.json")) == NewMarket(
        condition_id="0x311d0c4b6671ab54af4970c06fcf58662516f5168997bdda209ec3db5aa6b0c1",
        question="Will NVIDIA (NVDA) close above $240 end of January?",
        slug="nvda-above-240-on-january-30-2026",
        event_slug="nvda-above-in-january-2026",
        description='This market will resolve to "Yes" if the official closing price...',
        asset_ids=(
            "76043073756653678226373981964075571318267289248134717369284518995922789326425",
            "31690934263385727664202099278545688007799199447969475608906331829650099442770",
        ),
        outcomes=("Yes", "No"),
        timestamp=1766790415.55,
    )


def test_market_resolved() -> None:
    obj = fixture_obj("clob_new_market.json") | fixture_obj("clob_market_resolved_extra.json")
    assert only(orjson.dumps(obj)) == MarketResolved(
        "0x311d0c4b6671ab54af4970c06fcf58662516f5168997bdda209ec3db5aa6b0c1",
        "76043073756653678226373981964075571318267289248134717369284518995922789326425",
        "Yes",
        1766790415.55,
    )
    # the docs' fragment alone has no market id: it cannot be used
    assert parse_clob_frame(fixture_text("clob_market_resolved_extra.json")) == ClobParse((), 1)


# --- framing ---------------------------------------------------------------------------------


def test_object_and_array_frames_agree() -> None:
    names = ["clob_book.json", "clob_price_change_new.json", "clob_last_trade_price.json", "clob_best_bid_ask.json"]
    objs = [fixture_obj(n) for n in names]
    separately = [e for o in objs for e in parse_clob_frame(orjson.dumps(o)).events]
    together = parse_clob_frame(orjson.dumps(objs))
    assert together.malformed == 0
    assert list(together.events) == separately
    assert len(separately) == 1 + 2 + 2 + 1


def test_array_with_bad_and_unknown_elements() -> None:
    book = fixture_obj("clob_book.json")
    frame = orjson.dumps(
        [
            book,
            5,
            {"event_type": "book"},  # no market
            {"event_type": "brand_new_event", "market": "0x1"},  # unknown: skipped, not counted
            {"no_event_type": True},
            {"event_type": ["book"]},  # unhashable event_type: unknown
            fixture_obj("clob_best_bid_ask.json"),
            None,
        ]
    )
    result = parse_clob_frame(frame)
    assert [type(e) for e in result.events] == [PriceTick, PriceTick]
    assert result.malformed == 3


def test_unknown_single_object_is_empty() -> None:
    assert parse_clob_frame('{"event_type":"agg_orderbook","market":"0x1"}') == ClobParse((), 0)
    assert parse_clob_frame("[]") == ClobParse((), 0)


@pytest.mark.parametrize("frame", ["PONG", "", "  ", b"PONG", "pong"])
def test_keepalives(frame: str | bytes) -> None:
    assert parse_clob_frame(frame) == ClobParse((), 0)


@pytest.mark.parametrize(("frame", "reason"), [("garbage", "not json"), ('[{"event_type":"book"', "not json"), ("5", "not an object or array"), ('"PONG"', "not an object or array")])
def test_unusable_frames_raise(frame: str, reason: str) -> None:
    with pytest.raises(MalformedFrame) as info:
        parse_clob_frame(frame)
    assert info.value.reason == reason


def test_truncated_real_frame() -> None:
    text = fixture_text("clob_price_change_new.json")
    with pytest.raises(MalformedFrame):
        parse_clob_frame(text[: len(text) // 2])


@pytest.mark.parametrize(("raw", "expected"), [(".48", 0.48), ("0.5", 0.5), ("1", 1.0), ("0", 0.0), (".001", 0.001)])
def test_decimal_strings(raw: str, expected: float) -> None:
    obj = fixture_obj("clob_last_trade_price.json")
    obj["price"] = raw
    assert parse_clob_frame(orjson.dumps(obj)).events[0].last_price == expected


def test_parse_clob_event_raises_per_event() -> None:
    assert parse_clob_event(fixture_obj("clob_best_bid_ask.json"))[0].best_bid == 0.73
    assert parse_clob_event({"event_type": "unknown"}) == []
    with pytest.raises(MalformedFrame):
        parse_clob_event({"event_type": "book"})
    with pytest.raises(MalformedFrame):
        parse_clob_event([1])


# --- builders --------------------------------------------------------------------------------


def test_subscribe_message() -> None:
    assert clob_subscribe_message(["1", "2"]) == (
        '{"assets_ids":["1","2"],"type":"market","initial_dump":true,"custom_feature_enabled":true}'
    )
    documented = fixture_obj("clob_subscribe_initial.json")
    ours = orjson.loads(clob_subscribe_message(["<token_id_1>", "<token_id_2>"], initial_dump=False))
    assert {k: v for k, v in ours.items() if k != "initial_dump"} == documented
    assert ours["initial_dump"] is False
    assert orjson.loads(clob_subscribe_message(iter(["a"]), custom_feature_enabled=False))["custom_feature_enabled"] is False


def test_operation_messages_match_docs() -> None:
    sub, unsub = (orjson.loads(line) for line in fixture_text("clob_operation_subscribe.txt").splitlines())
    assert orjson.loads(clob_operation_message(["NEW_TOKEN_ID"])) == sub
    assert orjson.loads(clob_operation_message(("OLD_TOKEN_ID",), "unsubscribe")) == unsub
    with pytest.raises(ValueError):
        clob_operation_message(["x"], "resubscribe")
    with pytest.raises(TypeError):
        clob_subscribe_message("123")


def test_ping_constant() -> None:
    assert CLOB_PING == "PING"


# --- property: total over arbitrary input ----------------------------------------------------

_EVENT_FIXTURES = ["clob_book.json", "clob_price_change_new.json", "clob_price_change_legacy.json", "clob_tick_size_change.json",
                   "clob_last_trade_price.json", "clob_best_bid_ask.json", "clob_new_market.json"]
_scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**63 - 1),
                     st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8),
                     st.sampled_from([".48", "0", "1", "nan", "-1", "BUY", "1757908892351", "0.001"]))
_values = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)), max_leaves=6)


@st.composite
def _mutated_events(draw: st.DrawFn) -> Any:
    obj = fixture_obj(draw(st.sampled_from(_EVENT_FIXTURES)))
    for key in draw(st.lists(st.sampled_from(sorted(obj)), max_size=3, unique=True)):
        if draw(st.booleans()):
            obj[key] = draw(_values)
        else:
            del obj[key]
    for nested in ("bids", "asks", "price_changes", "changes"):
        if isinstance(obj.get(nested), list) and obj[nested] and isinstance(obj[nested][0], dict) and draw(st.booleans()):
            obj[nested][0][draw(st.sampled_from(["price", "size", "best_bid", "best_ask", "asset_id"]))] = draw(_values)
    return obj


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(), st.binary(), st.lists(_mutated_events(), max_size=3).map(orjson.dumps), _mutated_events().map(orjson.dumps)))
def test_arbitrary_frames_give_clobparse_or_malformed(frame: str | bytes) -> None:
    try:
        result = parse_clob_frame(frame)
    except MalformedFrame:
        return
    assert isinstance(result, ClobParse) and result.malformed >= 0
    for event in result.events:
        assert isinstance(event, (PriceTick, TickSizeChange, NewMarket, MarketResolved, Trade))
        if isinstance(event, PriceTick):
            for value in (event.best_bid, event.best_ask, event.last_price):
                assert value is None or 0.0 <= value <= 1.0
