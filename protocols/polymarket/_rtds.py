"""RTDS (``wss://ws-live-data.polymarket.com``): envelopes, activity trades, subscriptions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs
import orjson

from ._errors import MalformedFrame
from ._keepalive import PING, is_keepalive
from ._trade import Trade, trade_from_activity

__all__ = [
    "ACTIVITY_SUBSCRIPTIONS",
    "RTDS_PING",
    "RtdsFrame",
    "RtdsOther",
    "parse_rtds_frame",
    "rtds_subscribe_message",
    "rtds_unsubscribe_message",
]

#: Text frame to send every 5 s; the server answers ``PONG`` (or sometimes ``""``).
RTDS_PING = PING

#: Both trade streams of the ``activity`` topic (``trades`` = taker + makers, ``orders_matched`` = taker).
ACTIVITY_SUBSCRIPTIONS: tuple[tuple[str, str], ...] = (("activity", "trades"), ("activity", "orders_matched"))

_TRADE_SOURCES = {"trades": "rtds.trades", "orders_matched": "rtds.orders_matched"}
_JSON_CONTROL_TYPES = frozenset({"pong", "ping", "subscribed"})
_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError


@attrs.frozen(slots=True)
class RtdsOther:
    """A well-formed RTDS envelope that is not an activity trade.

    Returned so callers can count other topics (``crypto_prices``, ``comments``,
    ``clob_market``...) and other ``activity`` types; the payload is not parsed.

    Attributes:
        topic: Envelope ``topic``.
        type: Envelope ``type``.
    """

    topic: str
    type: str


#: What :func:`parse_rtds_frame` returns for a non-keepalive frame.
RtdsFrame = Trade | RtdsOther


def parse_rtds_frame(text: str | bytes) -> RtdsFrame | None:
    """Parse one RTDS text frame.

    Args:
        text: The raw websocket message (``str`` or bytes-like).

    Returns:
        * ``None`` for a keepalive: ``""``, whitespace, ``PONG``/``pong``/``PING``
          text, and the undocumented JSON control objects without a ``topic``
          whose ``type`` is ``pong``, ``ping`` or ``subscribed``.
        * A :class:`Trade` for ``topic == "activity"`` with type ``trades``
          (source ``"rtds.trades"``) or ``orders_matched`` (``"rtds.orders_matched"``).
        * :class:`RtdsOther` for any other envelope with string ``topic`` and ``type``.

    Raises:
        MalformedFrame: other non-JSON text (``"not json"``), JSON that is not an
            object (``"not an object"``), an envelope without string ``topic`` /
            ``type`` (``"bad envelope"``), a trade envelope whose ``payload`` is not
            an object (``"bad payload"``), or a trade payload with a bad price, size,
            side, asset, condition id or timestamp (see :func:`trade_from_activity`).
    """
    try:
        obj = _loads(text)
    except _JSONDecodeError:
        if is_keepalive(text):
            return None
        raise MalformedFrame("not json") from None
    if obj.__class__ is not dict:
        raise MalformedFrame("not an object")
    topic = obj.get("topic")
    kind = obj.get("type")
    if topic == "activity" and kind.__class__ is str:
        source = _TRADE_SOURCES.get(kind)
        if source is not None:
            payload = obj.get("payload")
            if payload.__class__ is not dict:
                raise MalformedFrame("bad payload")
            return trade_from_activity(payload, source, obj.get("timestamp"))
    if topic.__class__ is str and kind.__class__ is str:
        return RtdsOther(topic, kind)
    if topic is None and kind.__class__ is str and kind.lower() in _JSON_CONTROL_TYPES:
        return None
    raise MalformedFrame("bad envelope")


def _subscription_list(subscriptions: Iterable[Any]) -> list[dict[str, str]]:
    if isinstance(subscriptions, (str, bytes, Mapping)):
        raise TypeError("subscriptions must be an iterable of (topic, type[, filters]) or mappings")
    out: list[dict[str, str]] = []
    for sub in subscriptions:
        if isinstance(sub, Mapping):
            topic, kind, filters = sub["topic"], sub["type"], sub.get("filters")
        else:
            topic, kind, *rest = sub
            filters = rest[0] if rest else None
        entry = {"topic": str(topic), "type": str(kind)}
        if filters:
            entry["filters"] = filters if isinstance(filters, str) else orjson.dumps(filters).decode()
        out.append(entry)
    return out


def rtds_subscribe_message(subscriptions: Iterable[Any] = ACTIVITY_SUBSCRIPTIONS) -> str:
    """Build an RTDS subscribe message.

    Args:
        subscriptions: Items that are ``(topic, type)``, ``(topic, type, filters)``
            or mappings with ``topic``, ``type`` and optional ``filters``. RTDS wants
            ``filters`` as a *string*; a non-string value (e.g. a dict) is
            JSON-encoded into one. Empty/absent filters are omitted (no filtering).
            Defaults to :data:`ACTIVITY_SUBSCRIPTIONS`.

    Returns:
        E.g. ``{"action":"subscribe","subscriptions":[{"topic":"activity","type":"trades"}]}``.
    """
    return orjson.dumps({"action": "subscribe", "subscriptions": _subscription_list(subscriptions)}).decode()


def rtds_unsubscribe_message(subscriptions: Iterable[Any] = ACTIVITY_SUBSCRIPTIONS) -> str:
    """Build an RTDS unsubscribe message (same shape as :func:`rtds_subscribe_message`)."""
    return orjson.dumps({"action": "unsubscribe", "subscriptions": _subscription_list(subscriptions)}).decode()
