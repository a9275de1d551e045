"""Gamma /markets and /events: JSON-in-string fields, missing keys, flattening."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.polymarket import MalformedFrame, MarketInfo, PageStats, parse_events_page, parse_market, parse_markets_page

FIXTURES = Path(__file__).parent / "fixtures"
CONDITION = "0x834e57936657ae5ddaea6d9e18ee780d04d588018ab6b9b18a44cc5317e5f6f2"
TOKENS = (
    "111921395645355300487518569145849548118782457875824781317525262592604421091895",
    "63900173641965756847547093054309931316785483274507634668979439177621966623897",
)


def market_text() -> str:
    return (FIXTURES / "gamma_market.json").read_text()


def market_obj(**changes: Any) -> dict[str, Any]:
    obj = orjson.loads(market_text())
    for key, value in changes.items():
        if value is ...:
            obj.pop(key, None)
        else:
            obj[key] = value
    return obj


def test_real_market_json_string_fields() -> None:
    info = parse_market(market_text())
    assert info == MarketInfo(
        condition_id=CONDITION,
        question="Over 239.5",
        slug="nba-mem-okc-2025-03-27-total-239pt5",
        event_slug="",
        event_title="",
        description="",
        category="",
        tags=(),
        end_date=1743724800.0,  # 2025-04-04T00:00:00Z
        outcomes=("Over", "Under"),
        token_ids=TOKENS,
        volume_24h=0.0,  # the real object has no volume keys at all
        active=True,
        closed=True,
        outcome_prices=(0.0, 1.0),
        volume=0.0,
        liquidity=0.0,
    )
    assert parse_market(market_text().encode()) == info
    assert parse_market(orjson.loads(market_text())) == info


def test_native_arrays_equal_json_strings() -> None:
    arrays = market_obj(outcomes=["Over", "Under"], outcomePrices=["0", "1"], clobTokenIds=list(TOKENS))
    assert parse_market(arrays) == parse_market(market_text())
    numeric_prices = market_obj(outcomePrices=[0, 1.0])
    assert parse_market(numeric_prices).outcome_prices == (0.0, 1.0)  # type: ignore[union-attr]


@pytest.mark.parametrize("bad", [..., None, "", "not json", "[1, 2", '{"a": 1}', "[\"Over\", null]", 17, {"x": 1}])
def test_missing_or_garbled_encoded_fields_give_empty_tuples(bad: Any) -> None:
    info = parse_market(market_obj(outcomes=bad, clobTokenIds=bad, outcomePrices=bad if bad != "[\"Over\", null]" else '["0.5", "x"]'))
    assert info is not None
    assert info.outcomes == () and info.token_ids == () and info.outcome_prices == ()


def test_numbers_as_strings_and_numbers() -> None:
    info = parse_market(market_obj(volume="1234.5", volume24hr="12.25", liquidity="99.5", liquidityNum=..., active="false"))
    assert (info.volume, info.volume_24h, info.liquidity, info.active) == (1234.5, 12.25, 99.5, False)  # type: ignore[union-attr]
    info = parse_market(market_obj(volumeNum=10, volume="9", volume24hr=3, liquidityNum=7.5))
    assert (info.volume, info.volume_24h, info.liquidity) == (10.0, 3.0, 7.5)  # type: ignore[union-attr]
    info = parse_market(market_obj(volume24hr="garbage", volume="nan"))
    assert (info.volume, info.volume_24h) == (0.0, 0.0)  # type: ignore[union-attr]


def test_market_without_condition_id_is_skipped_not_raised() -> None:
    assert parse_market(market_obj(conditionId=...)) is None
    assert parse_market(market_obj(conditionId=None)) is None
    stats = PageStats()
    page = [market_obj(), market_obj(conditionId=...), "junk", market_obj(conditionId="0xabc")]
    infos = parse_markets_page(orjson.dumps(page), stats=stats)
    assert [i.condition_id for i in infos] == [CONDITION, "0xabc"]
    assert stats.skipped == 2
    assert parse_markets_page(orjson.dumps(page)) == infos  # stats optional


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, 1743724800.0),
        ({"endDate": ...}, 1743724800.0),  # falls back to endDateIso
        ({"endDate": "2025-04-04T12:00:00.000Z"}, 1743768000.0),
        ({"endDate": "2025-04-04T12:00:00"}, 1743768000.0),  # naive → UTC
        ({"endDate": "2025-04-04T14:00:00+02:00"}, 1743768000.0),
        ({"endDate": "soon", "endDateIso": None}, None),
        ({"endDate": ..., "endDateIso": ...}, None),
    ],
)
def test_end_date(changes: dict[str, Any], expected: float | None) -> None:
    assert parse_market(market_obj(**changes)).end_date == expected  # type: ignore[union-attr]


def _events_page() -> list[dict[str, Any]]:
    return [
        {
            "id": "1",
            "slug": "nba-mem-okc-2025-03-27",
            "title": "Grizzlies vs. Thunder",
            "category": "Sports",
            "endDate": "2025-03-28T00:00:00Z",
            "active": True,
            "closed": False,
            "tags": [{"id": "1", "label": "Sports", "slug": "sports"}, {"id": "745", "label": "NBA", "slug": "nba"}],
            "markets": [
                market_obj(tags=[{"label": "Basketball", "slug": "basketball"}, {"label": "NBA", "slug": "nba"}]),
                market_obj(conditionId=..., question="broken"),
                market_obj(conditionId="0x02", category="Totals", endDate=..., endDateIso=..., active=..., closed=...,
                           volume24hr=5000.5, outcomes='["Yes", "No"]'),
            ],
        },
        {"id": "2", "slug": "empty-event", "markets": []},
        {"id": "3", "slug": "no-markets-key"},
        "junk event",
        {"id": "4", "slug": "us-election", "title": "Election", "tags": ["Politics"], "markets": [
            {"conditionId": "0x04", "question": "Q?", "outcomes": "[\"Yes\", \"No\"]"},
        ]},
    ]


def test_events_page_flattens_and_applies_event_fields() -> None:
    stats = PageStats()
    infos = parse_events_page(orjson.dumps(_events_page()), stats=stats)
    assert [i.condition_id for i in infos] == [CONDITION, "0x02", "0x04"]
    assert stats.skipped == 2  # the market without conditionId and the junk event
    assert stats.next_cursor is None
    first, second, third = infos
    assert (first.event_slug, first.event_title) == ("nba-mem-okc-2025-03-27", "Grizzlies vs. Thunder")
    assert first.category == "Sports"  # market has none → event's
    assert first.tags == ("sports", "nba", "basketball")  # event tags first, merged, lowercased, deduped
    assert first.closed is True and first.end_date == 1743724800.0  # the market's own values win
    assert second.category == "Totals"
    assert second.end_date == 1743120000.0  # event's endDate
    assert (second.active, second.closed) == (True, False)  # event's
    assert second.volume_24h == 5000.5
    assert second.outcomes == ("Yes", "No")
    assert third.tags == ("politics",)
    assert (third.active, third.closed, third.volume_24h, third.end_date) == (False, False, 0.0, None)


def test_keyset_events_page() -> None:
    stats = PageStats()
    body = orjson.dumps({"events": _events_page()[:1], "next_cursor": "abc=="})
    assert len(parse_events_page(body, stats=stats)) == 2
    assert stats.next_cursor == "abc=="
    parse_events_page(orjson.dumps({"events": []}), stats=stats)
    assert stats.next_cursor is None
    assert stats.skipped == 1


@pytest.mark.parametrize("body", ["nope", "{", "5", '{"markets": []}', b"\xff"])
def test_bad_pages_raise_malformed(body: str | bytes) -> None:
    with pytest.raises(MalformedFrame):
        parse_events_page(body)
    with pytest.raises(MalformedFrame):
        parse_markets_page(body)


def test_parse_market_non_object() -> None:
    with pytest.raises(MalformedFrame):
        parse_market("[1]")
    with pytest.raises(MalformedFrame):
        parse_market("{truncated")


def test_single_market_embedded_event() -> None:
    obj = market_obj(events=[{"slug": "nba-mem-okc", "title": "Grizzlies vs. Thunder", "tags": [{"label": "NBA", "slug": "nba"}]}])
    info = parse_market(obj)
    assert (info.event_slug, info.event_title, info.tags) == ("nba-mem-okc", "Grizzlies vs. Thunder", ("nba",))  # type: ignore[union-attr]


_scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**63 - 1),
                     st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=10),
                     st.sampled_from(['["Yes", "No"]', '["0.5", "0.5"]', "2025-04-04", "2025-04-04T00:00:00Z", "9999-12-31T23:59:59-23:59"]))
_values = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)), max_leaves=6)
_market_keys = ["conditionId", "outcomes", "outcomePrices", "clobTokenIds", "volume", "volume24hr", "liquidity", "endDate",
                "endDateIso", "active", "closed", "tags", "events", "category", "question"]


@st.composite
def _mutated_markets(draw: st.DrawFn) -> dict[str, Any]:
    obj = market_obj()
    for key in draw(st.lists(st.sampled_from(_market_keys), max_size=4, unique=True)):
        obj[key] = draw(_values)
    return obj


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(
    _values.map(orjson.dumps),
    st.lists(st.fixed_dictionaries({"slug": _values, "tags": _values, "endDate": _values, "markets": st.lists(_mutated_markets(), max_size=2)}), max_size=2).map(orjson.dumps),
))
def test_events_page_is_total(body: bytes) -> None:
    try:
        infos = parse_events_page(body)
    except MalformedFrame:
        return
    assert all(isinstance(i, MarketInfo) for i in infos)
