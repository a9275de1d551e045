"""Gamma REST API (``https://gamma-api.polymarket.com``): ``/events`` and ``/markets``.

Gamma objects are camelCase, most fields are nullable or missing, ``outcomes``,
``outcomePrices`` and ``clobTokenIds`` are *JSON-encoded strings* (some clients
and proxies send real arrays), and ``volume``/``liquidity`` are strings while
``volumeNum``/``volume24hr`` are numbers. Everything here is decoded defensively.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import attrs
import orjson

from ._decimal import to_epoch_seconds, to_float
from ._errors import MalformedFrame

__all__ = [
    "MarketInfo",
    "PageStats",
    "decode_json_list",
    "parse_events_page",
    "parse_market",
    "parse_markets_page",
]


@attrs.frozen(slots=True)
class MarketInfo:
    """Static-ish description of one market, from Gamma.

    Attributes:
        condition_id: Market condition id.
        question: Market question.
        slug: Market slug.
        event_slug: Slug of the parent event (used in ``polymarket.com/event/...``).
        event_title: Title of the parent event.
        description: Resolution text.
        category: Market category, else the event's, else ``""``.
        tags: Lowercased tag labels and slugs, event tags first then market tags, deduplicated.
        end_date: Epoch seconds (``endDate``, else ``endDateIso``, else the event's), ``None`` if unknown.
        outcomes: Outcome labels.
        token_ids: CLOB token ids, in the order of ``outcomes``.
        volume_24h: ``volume24hr`` (USDC), 0.0 when missing.
        active: ``active`` (market's, else event's, else ``False``).
        closed: ``closed`` (market's, else event's, else ``False``).
        outcome_prices: Prices in the order of ``outcomes``; empty if missing/garbled.
        volume: Lifetime volume (``volumeNum``, else ``volume``), 0.0 when missing.
        liquidity: ``liquidityNum``, else ``liquidity``, 0.0 when missing.
    """

    condition_id: str
    question: str
    slug: str
    event_slug: str
    event_title: str
    description: str
    category: str
    tags: tuple[str, ...]
    end_date: float | None
    outcomes: tuple[str, ...]
    token_ids: tuple[str, ...]
    volume_24h: float
    active: bool
    closed: bool
    outcome_prices: tuple[float, ...]
    volume: float = 0.0
    liquidity: float = 0.0


@attrs.define(slots=True)
class PageStats:
    """Optional collector filled in by the page parsers (pass ``stats=PageStats()``).

    Counts accumulate across calls, so one instance can cover a whole crawl.

    Attributes:
        skipped: Records dropped: Gamma markets without ``conditionId`` or that are
            not objects, Data API rows that are malformed.
        next_cursor: Cursor for the next page (Gamma ``/events/keyset``
            ``next_cursor``, Data API v2 ``pagination.next_cursor``), ``None`` when
            absent (last page, or an offset-paged endpoint).
        has_more: Data API v2 ``pagination.has_more``; ``None`` when not given.
    """

    skipped: int = 0
    next_cursor: str | None = None
    has_more: bool | None = None


def decode_json_list(value: Any) -> list[Any]:
    """Decode a field that is a JSON-encoded array string *or* already an array.

    Args:
        value: ``'["Yes", "No"]'``, ``["Yes", "No"]``, ``None``, garbage...

    Returns:
        The list, or ``[]`` when missing, undecodable or not an array.
    """
    if value.__class__ is list:
        return value
    if isinstance(value, (str, bytes)):
        try:
            decoded = orjson.loads(value)
        except orjson.JSONDecodeError:
            return []
        return decoded if decoded.__class__ is list else []
    if value.__class__ is tuple:
        return list(value)
    return []


def _str(value: Any) -> str:
    return value if value.__class__ is str else ""


def _ids(value: Any) -> tuple[str, ...]:
    items = decode_json_list(value)
    if not all(v.__class__ is str or v.__class__ is int for v in items):
        return ()
    return tuple(str(v) for v in items)


def _labels(value: Any) -> tuple[str, ...]:
    items = decode_json_list(value)
    if not all(v.__class__ is str for v in items):
        return ()
    return tuple(items)


def _prices(value: Any) -> tuple[float, ...]:
    prices = []
    for v in decode_json_list(value):
        f = to_float(v)
        if f is None:
            return ()
        prices.append(f)
    return tuple(prices)


def _number(obj: dict[str, Any], *keys: str) -> float:
    for key in keys:
        f = to_float(obj.get(key))
        if f is not None:
            return f
    return 0.0


def _bool(value: Any) -> bool | None:
    if value.__class__ is bool:
        return value
    if value.__class__ is str:
        low = value.strip().lower()
        if low in ("true", "1"):
            return True
        if low in ("false", "0"):
            return False
    if value.__class__ is int:
        return bool(value)
    return None


def _date(value: Any) -> float | None:
    """ISO date-time (``2025-04-04T00:00:00Z``), ISO date, or an epoch number → epoch seconds."""
    if value.__class__ is str:
        text = value.strip()
        if not text or len(text) > 64:
            return None
        try:
            if len(text) == 10:
                d = date.fromisoformat(text)
                return datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()
            dt = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            return None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        try:
            return dt.timestamp()
        except (OverflowError, ValueError, OSError):
            return None
    if value.__class__ is int or value.__class__ is float:
        return to_epoch_seconds(value)
    return None


def _tags(*sources: Any) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for tags in sources:
        if tags.__class__ is not list:
            continue
        for tag in tags:
            if tag.__class__ is dict:
                candidates = (tag.get("label"), tag.get("slug"))
            else:
                candidates = (tag,)
            for c in candidates:
                if c.__class__ is str:
                    c = c.strip().lower()
                    if c:
                        seen[c] = None
    return tuple(seen)


def _market(m: dict[str, Any], event: dict[str, Any] | None) -> MarketInfo | None:
    condition_id = m.get("conditionId")
    if condition_id.__class__ is not str or not condition_id:
        return None
    if event is None:
        # A single /markets object may embed its parent event(s).
        events = m.get("events")
        event = events[0] if events.__class__ is list and events and events[0].__class__ is dict else {}
    end_date = _date(m.get("endDate"))
    if end_date is None:
        end_date = _date(m.get("endDateIso"))
    if end_date is None:
        end_date = _date(event.get("endDate"))
    active = _bool(m.get("active"))
    if active is None:
        active = bool(_bool(event.get("active")))
    closed = _bool(m.get("closed"))
    if closed is None:
        closed = bool(_bool(event.get("closed")))
    return MarketInfo(
        condition_id=condition_id,
        question=_str(m.get("question")),
        slug=_str(m.get("slug")),
        event_slug=_str(event.get("slug")),
        event_title=_str(event.get("title")),
        description=_str(m.get("description")),
        category=_str(m.get("category")) or _str(event.get("category")),
        tags=_tags(event.get("tags"), m.get("tags")),
        end_date=end_date,
        outcomes=_labels(m.get("outcomes")),
        token_ids=_ids(m.get("clobTokenIds")),
        volume_24h=_number(m, "volume24hr", "volume24hrClob"),
        active=active,
        closed=closed,
        outcome_prices=_prices(m.get("outcomePrices")),
        volume=_number(m, "volumeNum", "volume"),
        liquidity=_number(m, "liquidityNum", "liquidity"),
    )


def _decode(body: Any) -> Any:
    if isinstance(body, (dict, list)):
        return body
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise MalformedFrame("not json") from None


def parse_market(obj: dict[str, Any] | str | bytes) -> MarketInfo | None:
    """Parse one Gamma Market (``GET /markets/{id}``, ``/markets/slug/{slug}``, or a list element).

    Event fields (``event_slug``, ``event_title``, event tags, category/end-date
    fallbacks) come from the market's embedded ``events[0]`` when present.

    Args:
        obj: The decoded object, or its JSON text.

    Returns:
        The market, or ``None`` when it has no ``conditionId`` (skip it).

    Raises:
        MalformedFrame: not JSON, or not a JSON object.
    """
    m = _decode(obj)
    if m.__class__ is not dict:
        raise MalformedFrame("not an object")
    return _market(m, None)


def parse_markets_page(body: str | bytes | list[Any], *, stats: PageStats | None = None) -> list[MarketInfo]:
    """Parse a ``GET /markets`` response (a JSON array of Market).

    Args:
        body: Response body (or the decoded list).
        stats: Optional collector; ``skipped`` counts markets dropped (not an
            object, or no ``conditionId``).

    Returns:
        The markets, in page order.

    Raises:
        MalformedFrame: not JSON, or not an array.
    """
    page = _decode(body)
    if page.__class__ is not list:
        raise MalformedFrame("not an array")
    out: list[MarketInfo] = []
    skipped = 0
    for m in page:
        info = _market(m, None) if m.__class__ is dict else None
        if info is None:
            skipped += 1
        else:
            out.append(info)
    if stats is not None:
        stats.skipped += skipped
    return out


def parse_events_page(body: str | bytes | list[Any] | dict[str, Any], *, stats: PageStats | None = None) -> list[MarketInfo]:
    """Flatten a ``GET /events`` page into its markets.

    Accepts the offset-paged shape (a JSON array of Event) and the
    ``/events/keyset`` shape (``{"events": [...], "next_cursor": "..."}``). Each
    event's ``slug``, ``title``, ``tags``, and (as fallbacks) ``category``,
    ``endDate``, ``active``, ``closed`` apply to its nested ``markets``; market
    tags are merged after the event's.

    Args:
        body: Response body (or the decoded value).
        stats: Optional collector; ``skipped`` counts markets dropped (not an
            object, no ``conditionId``) and events that are not objects;
            ``next_cursor`` is set from a keyset page (``None`` on the last page).

    Returns:
        The markets of all events, in page order.

    Raises:
        MalformedFrame: not JSON, or neither an array nor an object with an
            ``events`` array.
    """
    page = _decode(body)
    cursor = None
    if page.__class__ is dict:
        cursor = page.get("next_cursor")
        page = page.get("events")
    if page.__class__ is not list:
        raise MalformedFrame("not an events page")
    out: list[MarketInfo] = []
    skipped = 0
    for event in page:
        if event.__class__ is not dict:
            skipped += 1
            continue
        markets = event.get("markets")
        if markets.__class__ is not list:
            continue
        for m in markets:
            info = _market(m, event) if m.__class__ is dict else None
            if info is None:
                skipped += 1
            else:
                out.append(info)
    if stats is not None:
        stats.skipped += skipped
        stats.next_cursor = cursor if cursor.__class__ is str and cursor else None
    return out
