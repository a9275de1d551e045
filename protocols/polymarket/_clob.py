"""CLOB market websocket (``wss://ws-subscriptions-clob.polymarket.com/ws/market``).

Every event object carries an ``event_type``; a frame is one object or an array
of them. Prices/sizes are decimal strings (``".48"``), timestamps epoch-ms strings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import attrs
import orjson

from ._decimal import PRICE_CACHE, ms_to_seconds, parse_price, to_float
from ._errors import MalformedFrame
from ._gamma import decode_json_list
from ._keepalive import PING, is_keepalive
from ._trade import Trade, check_price, check_side, check_size, trade_keys

__all__ = [
    "CLOB_PING",
    "ClobEvent",
    "ClobParse",
    "MarketResolved",
    "NewMarket",
    "PriceTick",
    "TickSizeChange",
    "clob_operation_message",
    "clob_subscribe_message",
    "parse_clob_event",
    "parse_clob_frame",
]

#: Text frame to send every 10 s; the server answers ``PONG``.
CLOB_PING = PING

_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError


@attrs.frozen(slots=True)
class PriceTick:
    """Top of book and/or last trade price of one asset.

    ``None`` means "not carried by this event" (or an empty book side).

    Attributes:
        condition_id: Market condition id (``market`` on the wire).
        asset_id: Token id.
        best_bid: Highest bid, ``None`` when unknown or the bid side is empty.
        best_ask: Lowest ask, ``None`` when unknown or the ask side is empty.
        last_price: Last trade price (``last_trade_price`` events, and ``book``
            frames that carry a ``last_trade_price`` field).
        timestamp: Epoch seconds (the wire's ms converted).
    """

    condition_id: str
    asset_id: str
    best_bid: float | None
    best_ask: float | None
    last_price: float | None
    timestamp: float


@attrs.frozen(slots=True)
class TickSizeChange:
    """The minimum tick of an asset changed (price went above 0.96 or below 0.04).

    Attributes:
        condition_id: Market condition id.
        asset_id: Token id.
        old_tick_size: Previous tick, ``None`` if missing/invalid.
        new_tick_size: New tick.
        timestamp: Epoch seconds.
    """

    condition_id: str
    asset_id: str
    old_tick_size: float | None
    new_tick_size: float
    timestamp: float


@attrs.frozen(slots=True)
class NewMarket:
    """A market was created (``new_market``, needs ``custom_feature_enabled``; sent for all markets).

    Attributes:
        condition_id: Market condition id.
        question: Market question, ``""`` when absent.
        slug: Market slug.
        event_slug: ``event_message.slug``, ``""`` when absent.
        description: Resolution text.
        asset_ids: Token ids, in the order of ``outcomes``.
        outcomes: Outcome labels.
        timestamp: Epoch seconds.
    """

    condition_id: str
    question: str
    slug: str
    event_slug: str
    description: str
    asset_ids: tuple[str, ...]
    outcomes: tuple[str, ...]
    timestamp: float


@attrs.frozen(slots=True)
class MarketResolved:
    """A market resolved (``market_resolved``, needs ``custom_feature_enabled``).

    Attributes:
        condition_id: Market condition id.
        winning_asset_id: Token id of the winner; match on this, not the label.
        winning_outcome: Display label of the winner ("Yes", "Over", a name...).
        timestamp: Epoch seconds.
    """

    condition_id: str
    winning_asset_id: str
    winning_outcome: str
    timestamp: float


#: Anything :func:`parse_clob_frame` can emit.
ClobEvent = PriceTick | TickSizeChange | NewMarket | MarketResolved | Trade


@attrs.frozen(slots=True)
class ClobParse:
    """Result of :func:`parse_clob_frame`.

    Attributes:
        events: Parsed events in frame order (a ``last_trade_price`` yields a
            :class:`PriceTick` then a :class:`Trade`; a ``price_change`` one tick per change).
        malformed: Number of event objects in the frame that were dropped as
            malformed (non-objects in an array, bad prices, missing ids...).
            Unknown ``event_type`` values are skipped and *not* counted.
    """

    events: tuple[ClobEvent, ...]
    malformed: int = 0


_EMPTY = ClobParse((), 0)


def _str(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    if value.__class__ is not str or not value:
        raise MalformedFrame(f"missing {key}")
    return value


def _opt_str(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    return value if value.__class__ is str else ""


def _ts(obj: dict[str, Any]) -> float:
    ts = ms_to_seconds(obj.get("timestamp"))
    if ts is None:
        raise MalformedFrame("bad timestamp")
    return ts


def _quote(value: Any, empty: float) -> float | None:
    """A best bid/ask string; ``empty`` (0 for bids, 1 for asks) means "no level"."""
    if value is None:
        return None
    price = parse_price(value)
    if price is None:
        raise MalformedFrame("bad price")
    return None if price == empty else price


def _book(obj: dict[str, Any]) -> list[ClobEvent]:
    market = _str(obj, "market")
    asset = _str(obj, "asset_id")
    best_bid = _best_level(obj.get("bids"), max)
    best_ask = _best_level(obj.get("asks"), min)
    last = parse_price(obj.get("last_trade_price"))
    return [PriceTick(market, asset, best_bid, best_ask, last, _ts(obj))]


def _best_level(levels: Any, pick: Callable[[list[float]], float]) -> float | None:
    """Best price among levels with size > 0 (``pick`` = max for bids, min for asks).

    The wire order is unspecified, so every price is parsed and checked; sizes
    are parsed only where they decide the result (the best level, and all levels
    if that one has size 0).
    """
    if levels is None:
        return None
    if levels.__class__ is not list:
        raise MalformedFrame("bad book")
    try:
        cached = PRICE_CACHE.get
        prices = [cached(level["price"]) for level in levels]
        if None in prices:
            prices = [_level_price(level["price"]) for level in levels]
        if not prices:
            return None
        best = pick(prices)
        if float(levels[prices.index(best)]["size"]) > 0.0:
            return best
        live = [price for price, level in zip(prices, levels) if float(level["size"]) > 0.0]
    except (KeyError, TypeError, ValueError, OverflowError):
        raise MalformedFrame("bad book") from None
    return pick(live) if live else None


def _level_price(value: Any) -> float:
    price = parse_price(value)
    if price is None:
        raise MalformedFrame("bad book")
    return price


def _price_change(obj: dict[str, Any]) -> list[ClobEvent]:
    market = _str(obj, "market")
    changes = obj.get("price_changes")
    if changes is None:
        changes = obj.get("changes")  # legacy schema (before 2025-09-15)
    if changes.__class__ is not list:
        raise MalformedFrame("bad price_change")
    ts = _ts(obj)
    default_asset = obj.get("asset_id")
    out: list[ClobEvent] = []
    for change in changes:
        if change.__class__ is not dict:
            raise MalformedFrame("bad price_change")
        get = change.get
        asset = get("asset_id", default_asset)
        if asset.__class__ is not str or not asset:
            raise MalformedFrame("missing asset_id")
        bid = get("best_bid")
        ask = get("best_ask")
        if bid is None and ask is None:
            # Legacy change (price/side/size of one level): the top of book is not
            # derivable without the full book, so nothing is emitted.
            continue
        out.append(PriceTick(market, asset, _quote(bid, 0.0), _quote(ask, 1.0), None, ts))
    return out


def _best_bid_ask(obj: dict[str, Any]) -> list[ClobEvent]:
    return [
        PriceTick(
            _str(obj, "market"),
            _str(obj, "asset_id"),
            _quote(obj.get("best_bid"), 0.0),
            _quote(obj.get("best_ask"), 1.0),
            None,
            _ts(obj),
        )
    ]


def _last_trade_price(obj: dict[str, Any]) -> list[ClobEvent]:
    market = _str(obj, "market")
    asset = _str(obj, "asset_id")
    price = check_price(obj.get("price"))
    size = check_size(obj.get("size"))
    side = check_side(obj.get("side"))
    ts = _ts(obj)
    tx = _opt_str(obj, "transaction_hash")
    trade_id, fill_key = trade_keys(tx, asset, "", side, size, price, ts)
    trade = Trade(
        trade_id, fill_key, market, asset, side, "", None, price, size, size * price, ts, tx, "", "", "", "", "", "clob"
    )
    return [PriceTick(market, asset, None, None, price, ts), trade]


def _tick_size_change(obj: dict[str, Any]) -> list[ClobEvent]:
    new = to_float(obj.get("new_tick_size"))
    if new is None or not 0.0 < new < 1.0:
        raise MalformedFrame("bad tick size")
    old = to_float(obj.get("old_tick_size"))
    return [TickSizeChange(_str(obj, "market"), _str(obj, "asset_id"), old, new, _ts(obj))]


def _str_tuple(value: Any) -> tuple[str, ...]:
    return tuple(v for v in decode_json_list(value) if v.__class__ is str)


def _new_market(obj: dict[str, Any]) -> list[ClobEvent]:
    event = obj.get("event_message")
    event_slug = _opt_str(event, "slug") if event.__class__ is dict else ""
    assets = obj.get("assets_ids")
    if assets is None:
        assets = obj.get("asset_ids")
    return [
        NewMarket(
            _str(obj, "market"),
            _opt_str(obj, "question"),
            _opt_str(obj, "slug"),
            event_slug,
            _opt_str(obj, "description"),
            _str_tuple(assets),
            _str_tuple(obj.get("outcomes")),
            _ts(obj),
        )
    ]


def _market_resolved(obj: dict[str, Any]) -> list[ClobEvent]:
    return [
        MarketResolved(
            _str(obj, "market"), _str(obj, "winning_asset_id"), _opt_str(obj, "winning_outcome"), _ts(obj)
        )
    ]


_HANDLERS: dict[str, Callable[[dict[str, Any]], list[ClobEvent]]] = {
    "price_change": _price_change,
    "book": _book,
    "last_trade_price": _last_trade_price,
    "best_bid_ask": _best_bid_ask,
    "tick_size_change": _tick_size_change,
    "new_market": _new_market,
    "market_resolved": _market_resolved,
}


def parse_clob_event(obj: Any) -> list[ClobEvent]:
    """Parse one decoded CLOB event object.

    Args:
        obj: One element of a frame.

    Returns:
        The events it yields; ``[]`` for an unknown or missing ``event_type`` and
        for a legacy ``price_change`` (whose changes carry no best bid/ask).

    Raises:
        MalformedFrame: ``obj`` is not an object, or a known event lacks/garbles a
            field this parser reads.
    """
    if obj.__class__ is not dict:
        raise MalformedFrame("not an object")
    kind = obj.get("event_type")
    handler = _HANDLERS.get(kind) if kind.__class__ is str else None
    if handler is None:
        return []
    return handler(obj)


def parse_clob_frame(text: str | bytes) -> ClobParse:
    """Parse one CLOB market-channel frame (one event object or an array of them).

    Events of unknown ``event_type`` and unknown fields are ignored. Event
    mapping:

    * ``book`` → :class:`PriceTick` (best bid = max bid price, best ask = min ask
      price over levels with size > 0; empty side → ``None``; ``last_price`` from
      the frame's ``last_trade_price`` field when present).
    * ``price_change`` (new schema) → one :class:`PriceTick` per change with its
      ``best_bid``/``best_ask``; the wire's ``"0"`` bid / ``"1"`` ask mean an empty
      side and become ``None``. Legacy schema (``changes`` without best bid/ask)
      → nothing, since the top of book is not derivable from one level.
    * ``best_bid_ask`` → :class:`PriceTick` (same 0/1 rule).
    * ``last_trade_price`` → :class:`PriceTick` (``last_price``) then a
      :class:`Trade` (``source="clob"``, no wallet/trader; ``side`` is the taker's).
    * ``tick_size_change`` → :class:`TickSizeChange`; ``new_market`` →
      :class:`NewMarket`; ``market_resolved`` → :class:`MarketResolved`.

    Args:
        text: The raw websocket message.

    Returns:
        A :class:`ClobParse`; keepalives (``PONG``, ``""``, whitespace) give no
        events. A bad event (also when the frame is a single object) is dropped and
        counted in :attr:`ClobParse.malformed`; the other events of an array are kept.

    Raises:
        MalformedFrame: the frame as a whole is unusable: non-keepalive text that
            is not JSON (``"not json"``) or JSON that is neither an object nor an
            array (``"not an object or array"``).
    """
    try:
        obj = _loads(text)
    except _JSONDecodeError:
        if is_keepalive(text):
            return _EMPTY
        raise MalformedFrame("not json") from None
    if obj.__class__ is dict:
        items: list[Any] = [obj]
    elif obj.__class__ is list:
        items = obj
    else:
        raise MalformedFrame("not an object or array")
    events: list[ClobEvent] = []
    malformed = 0
    handlers = _HANDLERS
    for item in items:
        if item.__class__ is not dict:
            malformed += 1
            continue
        kind = item.get("event_type")
        handler = handlers.get(kind) if kind.__class__ is str else None
        if handler is None:
            continue
        try:
            events += handler(item)
        except MalformedFrame:
            malformed += 1
    return ClobParse(tuple(events), malformed)


def _asset_list(asset_ids: Iterable[str]) -> list[str]:
    if isinstance(asset_ids, (str, bytes)):
        raise TypeError("asset_ids must be an iterable of token-id strings, not a single string")
    return [str(a) for a in asset_ids]


def clob_subscribe_message(
    asset_ids: Iterable[str], initial_dump: bool = True, custom_feature_enabled: bool = True
) -> str:
    """Build the initial market-channel subscription (sent right after connecting).

    Args:
        asset_ids: Token ids (not condition ids). Keep ≤ 500 per connection.
        initial_dump: Ask for a ``book`` snapshot per asset on subscribe.
        custom_feature_enabled: Enable ``best_bid_ask``, ``new_market``, ``market_resolved``.

    Returns:
        ``{"assets_ids":[...],"type":"market","initial_dump":true,"custom_feature_enabled":true}``.
    """
    return orjson.dumps(
        {
            "assets_ids": _asset_list(asset_ids),
            "type": "market",
            "initial_dump": bool(initial_dump),
            "custom_feature_enabled": bool(custom_feature_enabled),
        }
    ).decode()


def clob_operation_message(
    asset_ids: Iterable[str], operation: str = "subscribe", custom_feature_enabled: bool = True
) -> str:
    """Build a dynamic subscribe/unsubscribe on a live connection.

    Args:
        asset_ids: Token ids to add or remove.
        operation: ``"subscribe"`` or ``"unsubscribe"``.
        custom_feature_enabled: Included (only) on ``subscribe``, as in the docs.

    Returns:
        ``{"assets_ids":[...],"operation":"subscribe","custom_feature_enabled":true}``
        or ``{"assets_ids":[...],"operation":"unsubscribe"}``.

    Raises:
        ValueError: unknown ``operation``.
    """
    if operation not in ("subscribe", "unsubscribe"):
        raise ValueError(f"operation must be 'subscribe' or 'unsubscribe', not {operation!r}")
    msg: dict[str, Any] = {"assets_ids": _asset_list(asset_ids), "operation": operation}
    if operation == "subscribe":
        msg["custom_feature_enabled"] = bool(custom_feature_enabled)
    return orjson.dumps(msg).decode()
