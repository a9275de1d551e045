"""Fake Polymarket servers for tests: RTDS, CLOB market channel, Gamma REST, Data API.

All four bind 127.0.0.1 on ephemeral ports and speak the real wire formats
(see /work/shared/reference/polymarket-protocol.md §1–§4, §6)::

    async with open_fake_polymarket() as fake:
        fake.rtds_url      # ws://127.0.0.1:P            (wss://ws-live-data.polymarket.com)
        fake.clob_url      # ws://127.0.0.1:P/ws/market  (wss://ws-subscriptions-clob.polymarket.com/ws/market)
        fake.gamma_url     # http://127.0.0.1:P          (https://gamma-api.polymarket.com)
        fake.data_api_url  # http://127.0.0.1:P          (https://data-api.polymarket.com)

Leaving the ``async with`` cancels every server task; client sockets see the connection die.

Fault injection at a glance
---------------------------
WebSocket fakes (``fake.rtds``, ``fake.clob``; see :class:`tests.fakes._ws.FakeWsServer`):
``go_silent()``/``resume()``, ``go_silent_after(n)``, ``drop_connections()`` (TCP RST, no close
frame), ``close_connections(code, reason)``, ``send_raw(text)`` (garbage, truncated JSON,
``[]``, ``42``), ``reject_next_handshakes(n, status)``, ``set_script([...])``,
``ping_timeout`` (+ ``ping_timeout_action``), slow consumers closed with 1013.
REST fakes (``fake.gamma``, ``fake.data_api``; see :class:`tests.fakes._http.FakeHttpServer`):
``fail_next(n, status, retry_after=None, body=None)``, ``delay`` / ``delay_next``,
``garbage`` / ``garbage_next``, ``disconnect_next``.
"""

from __future__ import annotations

import base64
import copy
import csv
import functools
import hashlib
import json
import os
import re
import secrets
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import trio

from ._http import FakeHttpServer, RecordedRequest, Response, multi, parse_bool
from ._ws import (
    FakeWsConnection,
    FakeWsServer,
    ScriptAction,
    ScriptStep,
    dumps,
    open_ws_client,
    parse_json,
)

# ====================================================================== shared data

#: the real Data API trades of the 2025 Nobel Peace Prize event (5,000 rows)
NOBEL_CSV = Path(
    os.environ.get(
        "POLYMARKET_NOBEL_CSV",
        str(Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real-trades"
            / "nobel-peace-prize-2025-trades.csv"),
    )
)

#: Data API v1 ``/trades`` item fields, in the real order
DATA_API_TRADE_FIELDS: tuple[str, ...] = (
    "proxyWallet",
    "side",
    "asset",
    "conditionId",
    "size",
    "price",
    "timestamp",
    "title",
    "slug",
    "icon",
    "eventSlug",
    "outcome",
    "outcomeIndex",
    "name",
    "pseudonym",
    "bio",
    "profileImage",
    "profileImageOptimized",
    "transactionHash",
)

#: RTDS ``activity`` payload fields, in the (alphabetical) order the real server sends them
RTDS_PAYLOAD_FIELDS: tuple[str, ...] = (
    "asset",
    "bio",
    "conditionId",
    "eventSlug",
    "icon",
    "name",
    "outcome",
    "outcomeIndex",
    "price",
    "profileImage",
    "proxyWallet",
    "pseudonym",
    "side",
    "size",
    "slug",
    "timestamp",
    "title",
    "transactionHash",
)

#: Data API v1 (camelCase) → v2 (snake_case) field names
V2_FIELD_NAMES: dict[str, str] = {
    "proxyWallet": "proxy_wallet",
    "side": "side",
    "asset": "token_id",
    "conditionId": "condition_id",
    "size": "size",
    "price": "price",
    "timestamp": "timestamp",
    "title": "title",
    "slug": "slug",
    "icon": "icon",
    "eventSlug": "event_slug",
    "outcome": "outcome",
    "outcomeIndex": "outcome_index",
    "name": "name",
    "pseudonym": "pseudonym",
    "bio": "bio",
    "profileImage": "profile_image",
    "profileImageOptimized": "profile_image_optimized",
    "transactionHash": "transaction_hash",
}

#: a few frames every client must survive (send them with ``send_raw``)
BAD_FRAMES: tuple[str, ...] = (
    "garbage{",
    '{"connection_id":"x","payload":{"asset":"123","price":0.5,',  # truncated JSON
    "[]",
    "42",
    "null",
    '"just a string"',
    "{}",
    "",
)

_NUMBER_FIELDS_FLOAT = ("size", "price", "fee")
_NUMBER_FIELDS_INT = ("timestamp", "outcomeIndex")


def _to_number(value: Any) -> Any:
    """A numeric string as the JSON number the API sends ("4045" → 4045, "0.59" → 0.59)."""
    if not isinstance(value, str):
        return value
    v = value.strip()
    if v == "":
        return value
    try:
        if re.fullmatch(r"[+-]?\d+", v):
            return int(v)
        return float(v)
    except ValueError:
        return value


def normalize_trade(row: Mapping[str, Any]) -> dict[str, Any]:
    """A CSV/str-valued trade row as the Data API returns it: ``size``/``price`` (and ``fee``)
    numbers, ``timestamp``/``outcomeIndex`` ints, everything else untouched."""
    out = dict(row)
    for key in _NUMBER_FIELDS_FLOAT:
        if key in out:
            out[key] = _to_number(out[key])
    for key in _NUMBER_FIELDS_INT:
        if key in out and isinstance(out[key], str) and out[key].strip() != "":
            out[key] = int(float(out[key]))
    return out


def load_trades_csv(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Load a Data API–shaped CSV (header row = field names) as a list of trade dicts."""
    with open(path, newline="", encoding="utf-8") as f:
        return [normalize_trade(row) for row in csv.DictReader(f)]


@functools.cache
def _nobel_cached() -> tuple[dict[str, Any], ...]:
    return tuple(load_trades_csv(NOBEL_CSV))


def load_nobel_trades(limit: int | None = None) -> list[dict[str, Any]]:
    """The 5,000 real Nobel Peace Prize 2025 trades, newest first as in the CSV, as Data API
    dicts (fresh copies; the CSV is parsed once per process)."""
    rows = _nobel_cached()
    if limit is not None:
        rows = rows[:limit]
    return [dict(r) for r in rows]


def make_trade(**overrides: Any) -> dict[str, Any]:
    """A synthetic Data API v1 trade with every real field; override any of them."""
    n = secrets.token_hex(4)
    trade: dict[str, Any] = {
        "proxyWallet": "0x" + secrets.token_hex(20),
        "side": "BUY",
        "asset": str(int(secrets.token_hex(32), 16)),
        "conditionId": "0x" + secrets.token_hex(32),
        "size": 100.0,
        "price": 0.5,
        "timestamp": int(time.time()),
        "title": f"Will test market {n} resolve Yes?",
        "slug": f"test-market-{n}",
        "icon": "https://polymarket-upload.s3.us-east-2.amazonaws.com/test.png",
        "eventSlug": f"test-event-{n}",
        "outcome": "Yes",
        "outcomeIndex": 0,
        "name": "",
        "pseudonym": "Fake-Trader",
        "bio": "",
        "profileImage": "",
        "profileImageOptimized": "",
        "transactionHash": "0x" + secrets.token_hex(32),
    }
    trade.update(overrides)
    return trade


def rtds_payload_from_trade(trade: Mapping[str, Any], *, fee: float | None = None) -> dict[str, Any]:
    """An RTDS ``activity`` payload from a Data API trade or a CSV row.

    Keeps the real payload fields (alphabetical order, as the real server sends them),
    converts numeric strings (``price``/``size`` numbers, ``timestamp`` int seconds,
    ``outcomeIndex`` int), drops Data-API-only fields such as ``profileImageOptimized``. A
    ``fee`` already in ``trade`` is kept; pass ``fee=`` to add one.
    """
    t = normalize_trade(trade)
    payload = {k: t[k] for k in RTDS_PAYLOAD_FIELDS if k in t}
    if fee is not None:
        payload["fee"] = fee
    elif "fee" in t and t["fee"] != "":
        payload["fee"] = t["fee"]
    return payload


def new_connection_id() -> str:
    """A connection id shaped like the real ones (``gXseIO-NQWeIKEhJwA==``)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(13)).decode()


def now_ms() -> int:
    return int(time.time() * 1000)


def rtds_envelope(
    payload: Mapping[str, Any],
    *,
    topic: str = "activity",
    type: str = "trades",  # noqa: A002 - the wire name
    connection_id: str | None = None,
    timestamp_ms: int | None = None,
) -> dict[str, Any]:
    """The real RTDS envelope, keys in the real order:
    ``{"connection_id","payload","timestamp"(ms int),"topic","type"}``."""
    return {
        "connection_id": connection_id if connection_id is not None else new_connection_id(),
        "payload": dict(payload),
        "timestamp": timestamp_ms if timestamp_ms is not None else now_ms(),
        "topic": topic,
        "type": type,
    }


def trade_to_v2(trade: Mapping[str, Any]) -> dict[str, Any]:
    """A Data API v1 (camelCase) trade as a ``/v2/trades`` (snake_case) item."""
    t = normalize_trade(trade)
    return {V2_FIELD_NAMES[k]: t[k] for k in DATA_API_TRADE_FIELDS if k in t}


# ====================================================================== RTDS


@attrs.frozen
class RtdsSubscription:
    """One entry of an RTDS ``subscriptions`` list."""

    topic: str
    type: str
    filters: str | None = None

    def matches(self, topic: str, type_: str, payload: Any) -> bool:
        """Whether a ``(topic, type)`` message with ``payload`` is delivered under this entry.

        ``type == "*"`` matches every type. For ``activity`` the JSON ``filters`` string is
        honoured for ``event_slug`` (payload ``eventSlug``) and ``market_slug`` (payload ``slug``);
        empty, unparsable or other filters match everything.
        """
        if topic != self.topic or (self.type != "*" and self.type != type_):
            return False
        if not self.filters or topic != "activity" or not isinstance(payload, Mapping):
            return True
        ok, flt = parse_json(self.filters)
        if not ok or not isinstance(flt, dict):
            return True
        if "event_slug" in flt and payload.get("eventSlug") != flt["event_slug"]:
            return False
        if "market_slug" in flt and payload.get("slug") != flt["market_slug"]:
            return False
        return True


@attrs.define(eq=False)
class RtdsConnection(FakeWsConnection):
    """An RTDS connection: its ``connection_id`` and current subscriptions."""

    connection_id: str = attrs.field(factory=new_connection_id)
    subscriptions: list[RtdsSubscription] = attrs.field(factory=list)
    subscribe_messages: list[dict[str, Any]] = attrs.field(factory=list, repr=False)
    invalid_messages: list[str] = attrs.field(factory=list, repr=False)

    def wants(self, topic: str, type_: str, payload: Any) -> bool:
        return any(s.matches(topic, type_, payload) for s in self.subscriptions)


class FakeRtds(FakeWsServer):
    """Fake ``wss://ws-live-data.polymarket.com`` (any path is accepted).

    Client → server: ``{"action":"subscribe"|"unsubscribe","subscriptions":[{"topic","type",
    "filters"?}]}``; text ``PING``/``ping`` → ``PONG``. Anything else is recorded in
    ``invalid_messages`` / ``other_messages`` and ignored (e.g. moon-dev's ``{"type":"ping"}``).
    After every valid subscribe the server sends an empty text frame (as measured on the
    real server) unless ``send_empty_after_subscribe`` is False.
    """

    name = "rtds"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        #: every valid subscribe message (parsed), over all connections, in order
        self.subscribe_messages: list[dict[str, Any]] = []
        #: every valid unsubscribe message (parsed)
        self.unsubscribe_messages: list[dict[str, Any]] = []
        #: JSON objects that were neither (e.g. ``{"type":"ping"}``)
        self.other_messages: list[Any] = []
        #: frames that were not JSON objects / had an unusable shape
        self.invalid_messages: list[str] = []
        self.send_empty_after_subscribe: bool = True

    def _connection_class(self) -> type[FakeWsConnection]:
        return RtdsConnection

    @property
    def open_connections(self) -> list[RtdsConnection]:  # type: ignore[override]
        return [c for c in self.connections if c.is_open]  # type: ignore[misc]

    def subscribed_connections(self, topic: str | None = None, type: str | None = None) -> list[RtdsConnection]:  # noqa: A002
        """Open connections with at least one subscription (to ``topic``/``type`` if given)."""
        out = []
        for c in self.open_connections:
            for s in c.subscriptions:
                if (topic is None or s.topic == topic) and (type is None or s.type in (type, "*")):
                    out.append(c)
                    break
        return out

    async def wait_subscribed(self, count: int = 1, *, topic: str | None = None, type: str | None = None) -> None:  # noqa: A002
        """Until ``count`` *open* connections hold a subscription (to ``topic``/``type``).

        After ``drop_connections()`` this therefore waits for the client to reconnect and
        subscribe again.
        """
        await self.wait_until(lambda: len(self.subscribed_connections(topic, type)) >= count)

    # ------------------------------------------------------------------ sending

    async def send_message(
        self,
        topic: str,
        type: str,  # noqa: A002
        payload: Any,
        *,
        to_all: bool = False,
        timestamp_ms: int | None = None,
        wait: bool = True,
    ) -> int:
        """Wrap ``payload`` in the real envelope (each connection gets its own
        ``connection_id``) and send it to every open connection whose subscriptions match
        (``to_all=True``: to every open connection, e.g. an unknown topic nobody asked for).
        Returns the number of connections it was queued for."""
        ts = timestamp_ms if timestamp_ms is not None else now_ms()
        targets = [c for c in self.open_connections if to_all or c.wants(topic, type, payload)]
        n = 0
        for c in targets:
            env = {"connection_id": c.connection_id, "payload": payload, "timestamp": ts, "topic": topic, "type": type}
            n += self._enqueue(c, dumps(env))
        if wait:
            await self._flush(targets)
        return n

    async def send_trade(
        self,
        payload: Mapping[str, Any],
        types: Sequence[str] = ("trades", "orders_matched"),
        *,
        timestamp_ms: int | None = None,
        wait: bool = True,
    ) -> int:
        """Send one ``activity`` payload (as given) once per type in ``types``, in that order,
        to the connections subscribed to it. Returns the number of frames queued."""
        n = 0
        for t in types:
            n += await self.send_message("activity", t, dict(payload), timestamp_ms=timestamp_ms, wait=False)
        if wait:
            await self.flush()
        return n

    async def send_trades(
        self,
        trades: Iterable[Mapping[str, Any]],
        types: Sequence[str] = ("orders_matched",),
        *,
        convert: bool = True,
        wait: bool = True,
    ) -> int:
        """Send many trades quickly. With ``convert`` each is passed through
        :func:`rtds_payload_from_trade` first (Data API dicts / CSV rows)."""
        n = 0
        for t in trades:
            payload = rtds_payload_from_trade(t) if convert else dict(t)
            n += await self.send_trade(payload, types, wait=False)
        if wait:
            await self.flush()
        return n

    # ------------------------------------------------------------------ receiving

    def _render_script_frame(self, conn: FakeWsConnection, frame: Any) -> str:
        if isinstance(frame, Mapping) and "payload" in frame:
            assert isinstance(conn, RtdsConnection)
            env = {
                "connection_id": frame.get("connection_id", conn.connection_id),
                "payload": frame["payload"],
                "timestamp": frame.get("timestamp", now_ms()),
                "topic": frame.get("topic", "activity"),
                "type": frame.get("type", "trades"),
            }
            return dumps(env)
        return super()._render_script_frame(conn, frame)

    async def _on_text(self, conn: FakeWsConnection, text: str) -> None:
        assert isinstance(conn, RtdsConnection)
        ok, msg = parse_json(text)
        if not ok or not isinstance(msg, dict):
            conn.invalid_messages.append(text)
            self.invalid_messages.append(text)
            return
        action = msg.get("action")
        subs = msg.get("subscriptions")
        if action not in ("subscribe", "unsubscribe") or not isinstance(subs, list):
            self.other_messages.append(msg)
            return
        parsed: list[RtdsSubscription] = []
        for s in subs:
            if not isinstance(s, dict) or not isinstance(s.get("topic"), str) or not isinstance(s.get("type"), str):
                continue
            filters = s.get("filters")
            if filters is not None and not isinstance(filters, str):
                filters = dumps(filters)
            parsed.append(RtdsSubscription(s["topic"], s["type"], filters or None))
        if not parsed:
            conn.invalid_messages.append(text)
            self.invalid_messages.append(text)
            return
        if action == "subscribe":
            for sub in parsed:
                if sub not in conn.subscriptions:
                    conn.subscriptions.append(sub)
            conn.subscribe_messages.append(msg)
            self.subscribe_messages.append(msg)
            if self.send_empty_after_subscribe:
                self._enqueue(conn, "")
            self._start_script(conn)
        else:
            self.unsubscribe_messages.append(msg)
            for sub in parsed:
                conn.subscriptions = [
                    s
                    for s in conn.subscriptions
                    if not (s.topic == sub.topic and s.type == sub.type and (sub.filters is None or s.filters == sub.filters))
                ]


# ====================================================================== CLOB market channel


def dec(value: Any) -> str:
    """A price/size as the CLOB's decimal string ("0.5", "219.217767"); strings pass through."""
    if isinstance(value, str):
        return value
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, bool):  # pragma: no cover - guard
        raise TypeError("bool is not a decimal")
    if isinstance(value, int):
        return str(value)
    f = float(value)
    return str(int(f)) if f.is_integer() else repr(f)


def ms(value: int | float | str | None = None) -> str:
    """A CLOB timestamp: epoch milliseconds as a string (default: now)."""
    if value is None:
        return str(now_ms())
    if isinstance(value, str):
        return value
    return str(int(value))


def fake_condition_id(seed: str) -> str:
    """A deterministic ``0x`` + 64 hex condition id for ``seed`` (e.g. an asset id)."""
    return "0x" + hashlib.sha256(seed.encode()).hexdigest()


def fake_token_id(seed: str) -> str:
    """A deterministic big-decimal-integer token id for ``seed``."""
    return str(int(hashlib.sha256(("token:" + seed).encode()).hexdigest(), 16))


def _levels(levels: Iterable[Any]) -> list[dict[str, str]]:
    out = []
    for lvl in levels:
        if isinstance(lvl, Mapping):
            out.append({"price": dec(lvl["price"]), "size": dec(lvl["size"])})
        else:
            price, size = lvl
            out.append({"price": dec(price), "size": dec(size)})
    return out


DEFAULT_BIDS: tuple[tuple[str, str], ...] = ((".48", "30"), (".49", "20"), (".50", "15"))
DEFAULT_ASKS: tuple[tuple[str, str], ...] = ((".52", "25"), (".53", "60"), (".54", "10"))


def book_event(
    asset_id: str,
    market: str | None = None,
    bids: Iterable[Any] = DEFAULT_BIDS,
    asks: Iterable[Any] = DEFAULT_ASKS,
    *,
    timestamp: int | str | None = None,
    hash: str | None = None,  # noqa: A002 - the wire name
    tick_size: str | None = "0.01",
    last_trade_price: str | None = "0.5",
) -> dict[str, Any]:
    """A ``book`` event. Levels are ``(price, size)`` pairs or dicts; numbers become decimal
    strings. Like real frames it also carries ``tick_size`` and ``last_trade_price`` (pass
    None to leave them out)."""
    ev: dict[str, Any] = {
        "event_type": "book",
        "asset_id": asset_id,
        "market": market or fake_condition_id(asset_id),
        "bids": _levels(bids),
        "asks": _levels(asks),
        "timestamp": ms(timestamp),
        "hash": hash or "0x" + secrets.token_hex(20),
    }
    if tick_size is not None:
        ev["tick_size"] = tick_size
    if last_trade_price is not None:
        ev["last_trade_price"] = last_trade_price
    return ev


def price_change_item(
    asset_id: str,
    price: Any,
    size: Any,
    side: str = "BUY",
    *,
    hash: str | None = None,  # noqa: A002
    best_bid: Any = "0.5",
    best_ask: Any = "0.51",
) -> dict[str, str]:
    """One element of a new-schema ``price_changes`` list (``size`` = new aggregate level size)."""
    return {
        "asset_id": asset_id,
        "price": dec(price),
        "size": dec(size),
        "side": side,
        "hash": hash or secrets.token_hex(20),
        "best_bid": dec(best_bid),
        "best_ask": dec(best_ask),
    }


def price_change_event(
    market: str,
    price_changes: Sequence[Mapping[str, Any]],
    *,
    timestamp: int | str | None = None,
) -> dict[str, Any]:
    """A ``price_change`` event in the new (2025-09-15+) schema."""
    return {
        "market": market,
        "price_changes": [dict(pc) for pc in price_changes],
        "timestamp": ms(timestamp),
        "event_type": "price_change",
    }


def legacy_price_change_event(
    asset_id: str,
    market: str,
    changes: Iterable[Any],
    *,
    timestamp: int | str | None = None,
    hash: str | None = None,  # noqa: A002
) -> dict[str, Any]:
    """A ``price_change`` event in the legacy (pre-2025-09-15) schema. ``changes`` are
    ``(price, side, size)`` tuples or dicts."""
    out = []
    for ch in changes:
        if isinstance(ch, Mapping):
            out.append({"price": dec(ch["price"]), "side": ch["side"], "size": dec(ch["size"])})
        else:
            price, side, size = ch
            out.append({"price": dec(price), "side": side, "size": dec(size)})
    return {
        "asset_id": asset_id,
        "changes": out,
        "event_type": "price_change",
        "market": market,
        "timestamp": ms(timestamp),
        "hash": hash or secrets.token_hex(20),
    }


def last_trade_price_event(
    asset_id: str,
    market: str,
    price: Any,
    size: Any,
    side: str = "BUY",
    *,
    fee_rate_bps: str = "0",
    transaction_hash: str | None = "",
    timestamp: int | str | None = None,
) -> dict[str, Any]:
    """A ``last_trade_price`` event (``side`` = taker side). Real frames carry
    ``transaction_hash``: by default a random one; pass None to omit it."""
    ev: dict[str, Any] = {
        "asset_id": asset_id,
        "event_type": "last_trade_price",
        "fee_rate_bps": fee_rate_bps,
        "market": market,
        "price": dec(price),
        "side": side,
        "size": dec(size),
        "timestamp": ms(timestamp),
    }
    if transaction_hash is not None:
        ev["transaction_hash"] = transaction_hash or "0x" + secrets.token_hex(32)
    return ev


def tick_size_change_event(
    asset_id: str,
    market: str,
    old_tick_size: Any = "0.01",
    new_tick_size: Any = "0.001",
    *,
    timestamp: int | str | None = None,
) -> dict[str, Any]:
    """A ``tick_size_change`` event."""
    return {
        "event_type": "tick_size_change",
        "asset_id": asset_id,
        "market": market,
        "old_tick_size": dec(old_tick_size),
        "new_tick_size": dec(new_tick_size),
        "timestamp": ms(timestamp),
    }


def best_bid_ask_event(
    asset_id: str,
    market: str,
    best_bid: Any,
    best_ask: Any,
    *,
    spread: Any = None,
    timestamp: int | str | None = None,
) -> dict[str, Any]:
    """A ``best_bid_ask`` event (only delivered with ``custom_feature_enabled``)."""
    if spread is None:
        spread = Decimal(dec(best_ask)) - Decimal(dec(best_bid))
    return {
        "event_type": "best_bid_ask",
        "market": market,
        "asset_id": asset_id,
        "best_bid": dec(best_bid),
        "best_ask": dec(best_ask),
        "spread": dec(spread),
        "timestamp": ms(timestamp),
    }


def new_market_event(
    market: str,
    question: str,
    slug: str,
    assets_ids: Sequence[str],
    outcomes: Sequence[str] = ("Yes", "No"),
    *,
    id: str = "1031769",  # noqa: A002
    description: str = "This market will resolve to \"Yes\" if ...",
    event_message: Mapping[str, Any] | None = None,
    timestamp: int | str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A ``new_market`` event (custom features; sent for all markets, not only subscribed).
    ``extra`` adds the Gamma-like fields real frames carry."""
    ev: dict[str, Any] = {
        "id": id,
        "question": question,
        "market": market,
        "slug": slug,
        "description": description,
        "assets_ids": list(assets_ids),
        "outcomes": list(outcomes),
        "event_message": dict(event_message)
        if event_message is not None
        else {
            "id": "125819",
            "ticker": slug + "-event",
            "slug": slug + "-event",
            "title": question,
            "description": description,
        },
        "timestamp": ms(timestamp),
        "event_type": "new_market",
    }
    ev.update(extra)
    return ev


def market_resolved_event(
    market: str,
    question: str,
    slug: str,
    assets_ids: Sequence[str],
    winning_asset_id: str,
    winning_outcome: str,
    outcomes: Sequence[str] = ("Yes", "No"),
    **kwargs: Any,
) -> dict[str, Any]:
    """A ``market_resolved`` event: the ``new_market`` fields plus ``winning_asset_id`` and
    ``winning_outcome`` (a display label — match on the asset id)."""
    ev = new_market_event(market, question, slug, assets_ids, outcomes, **kwargs)
    ev["winning_asset_id"] = winning_asset_id
    ev["winning_outcome"] = winning_outcome
    ev["event_type"] = "market_resolved"
    return ev


@attrs.frozen
class CapViolation:
    """A subscribe that pushed a connection over the per-connection asset cap."""

    connection: int  # FakeWsConnection.id
    requested_total: int  # assets the connection asked for in total (incl. this message)
    cap: int
    ignored_assets: tuple[str, ...]  # silently get no events


@attrs.define(eq=False)
class ClobConnection(FakeWsConnection):
    """A market-channel connection: subscribed assets and feature flags."""

    assets: set[str] = attrs.field(factory=set)  # effective subscriptions (≤ cap)
    over_cap: set[str] = attrs.field(factory=set)  # requested beyond the cap: never get events
    custom_features: bool = False
    subscribe_messages: list[dict[str, Any]] = attrs.field(factory=list, repr=False)
    invalid_messages: list[str] = attrs.field(factory=list, repr=False)


class FakeClob(FakeWsServer):
    """Fake ``wss://ws-subscriptions-clob.polymarket.com/ws/market`` (path ``/ws/market``).

    Accepts the docs' initial ``{"assets_ids":[...],"type":"market"|"MARKET",
    "initial_dump"?,"custom_feature_enabled"?,"level"?}``, the Rust-client shape
    ``{"type":"market","operation":"subscribe","markets":[],"assets_ids":[...]}`` and live
    ``{"assets_ids":[...],"operation":"subscribe"|"unsubscribe"}``. ``initial_dump`` (default
    true) sends a ``book`` for each newly subscribed asset as ONE JSON array frame.

    Asset cap: at most ``asset_cap`` (default 500) assets per connection are live; extra
    assets are accepted silently and simply never get events (like the real server). Each
    occurrence is recorded in ``cap_violations``.
    """

    name = "clob"
    accepted_paths = frozenset({"/ws/market"})

    def __init__(self, *, asset_cap: int = 500, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.asset_cap = asset_cap
        self.cap_violations: list[CapViolation] = []
        #: every valid subscription message (initial or operation), parsed
        self.subscribe_messages: list[dict[str, Any]] = []
        self.invalid_messages: list[str] = []
        #: when one asset is dumped: send ``[book]`` (True) or the bare object (False)
        self.dump_single_as_array: bool = True
        self._books: dict[str, dict[str, Any]] = {}
        self._markets: dict[str, str] = {}

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}/ws/market"

    def _connection_class(self) -> type[FakeWsConnection]:
        return ClobConnection

    @property
    def open_connections(self) -> list[ClobConnection]:  # type: ignore[override]
        return [c for c in self.connections if c.is_open]  # type: ignore[misc]

    # ------------------------------------------------------------------ observations

    @property
    def subscriptions(self) -> dict[int, set[str]]:
        """``{connection id: set of asset ids it currently gets events for}`` (open connections)."""
        return {c.id: set(c.assets) for c in self.open_connections}

    @property
    def subscribed_assets(self) -> set[str]:
        """Union of live subscriptions over open connections."""
        out: set[str] = set()
        for c in self.open_connections:
            out |= c.assets
        return out

    @property
    def cap_exceeded(self) -> bool:
        """Whether any connection ever asked for more than ``asset_cap`` assets."""
        return bool(self.cap_violations)

    @property
    def max_assets_per_connection(self) -> int:
        """Largest number of assets (live + over cap) any connection ever held."""
        return max((len(c.assets) + len(c.over_cap) for c in self.connections), default=0)

    async def wait_subscribed(self, asset_ids: Iterable[str] | None = None, *, count: int = 1) -> None:
        """Until every asset in ``asset_ids`` is live on some open connection; without
        ``asset_ids``, until ``count`` open connections have at least one asset."""
        if asset_ids is not None:
            wanted = set(asset_ids)
            await self.wait_until(lambda: wanted <= self.subscribed_assets)
        else:
            await self.wait_until(lambda: sum(1 for c in self.open_connections if c.assets) >= count)

    # ------------------------------------------------------------------ books

    def set_market(self, asset_id: str, market: str) -> None:
        """Which condition id ``asset_id`` belongs to (used by the default book)."""
        self._markets[asset_id] = market

    def set_book(
        self,
        asset_id: str,
        bids: Iterable[Any] = DEFAULT_BIDS,
        asks: Iterable[Any] = DEFAULT_ASKS,
        *,
        market: str | None = None,
        tick_size: str | None = "0.01",
        last_trade_price: str | None = "0.5",
    ) -> None:
        """The book sent for ``asset_id`` on subscribe (default: the docs' small book)."""
        if market is not None:
            self._markets[asset_id] = market
        self._books[asset_id] = {
            "bids": list(bids),
            "asks": list(asks),
            "tick_size": tick_size,
            "last_trade_price": last_trade_price,
        }

    def book_for(self, asset_id: str) -> dict[str, Any]:
        """A fresh ``book`` event for ``asset_id`` from the configured (or default) book."""
        cfg = self._books.get(asset_id, {})
        return book_event(
            asset_id,
            self._markets.get(asset_id) or fake_condition_id(asset_id),
            cfg.get("bids", DEFAULT_BIDS),
            cfg.get("asks", DEFAULT_ASKS),
            tick_size=cfg.get("tick_size", "0.01"),
            last_trade_price=cfg.get("last_trade_price", "0.5"),
        )

    # ------------------------------------------------------------------ sending

    @staticmethod
    def event_assets(event: Mapping[str, Any]) -> set[str]:
        """Asset ids an event is about (new-schema ``price_change``: all its items)."""
        out: set[str] = set()
        if isinstance(event.get("asset_id"), str):
            out.add(event["asset_id"])
        for pc in event.get("price_changes") or ():
            if isinstance(pc, Mapping) and isinstance(pc.get("asset_id"), str):
                out.add(pc["asset_id"])
        if event.get("event_type") == "market_resolved":
            out.update(a for a in event.get("assets_ids") or () if isinstance(a, str))
            if isinstance(event.get("winning_asset_id"), str):
                out.add(event["winning_asset_id"])
        return out

    def wants(self, conn: ClobConnection, event: Any) -> bool:
        """Routing rule: ``new_market`` → every custom-feature connection; ``best_bid_ask`` /
        ``market_resolved`` need custom features and a subscribed asset; everything else →
        connections subscribed (below the cap) to one of its assets. Events without any asset
        (and non-objects) go to everybody."""
        if not isinstance(event, Mapping):
            return True
        et = event.get("event_type")
        if et == "new_market":
            return conn.custom_features
        if et in ("best_bid_ask", "market_resolved") and not conn.custom_features:
            return False
        assets = self.event_assets(event)
        if not assets:
            return True
        return bool(assets & conn.assets)

    async def send_event(
        self,
        event: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        *,
        to_all: bool = False,
        wait: bool = True,
    ) -> int:
        """Send one event object, or a list as ONE JSON-array frame, to the interested
        connections (a list is filtered per connection and stays an array). Returns the number
        of connections that got a frame."""
        targets = []
        for c in self.open_connections:
            if isinstance(event, Mapping):
                if to_all or self.wants(c, event):
                    targets.append((c, dumps(event)))
            else:
                items = [e for e in event if to_all or self.wants(c, e)]
                if items:
                    targets.append((c, dumps(items)))
        n = sum(self._enqueue(c, text) for c, text in targets)
        if wait:
            await self._flush([c for c, _ in targets])
        return n

    async def send_book(self, asset_id: str, *, wait: bool = True) -> int:
        """Send the current book of ``asset_id`` (as an object) to its subscribers."""
        return await self.send_event(self.book_for(asset_id), wait=wait)

    async def burst_price_changes(
        self,
        asset_id: str,
        k: int,
        *,
        market: str | None = None,
        start_price: float = 0.40,
        tick: float = 0.01,
        side: str = "BUY",
        as_array_every: int = 0,
        wait: bool = True,
    ) -> list[dict[str, Any]]:
        """Emit ``k`` new-schema ``price_change`` frames for ``asset_id`` back to back (prices
        cycle through 20 ticks from ``start_price``, sizes vary, every 7th size is "0" = level
        removed). With ``as_array_every=m`` every m-th frame is wrapped in a JSON array.
        Returns the events sent."""
        market = market or self._markets.get(asset_id) or fake_condition_id(asset_id)
        events = []
        for i in range(k):
            price = round(start_price + tick * (i % 20), 6)
            size = "0" if i % 7 == 6 else str(10 + (i * 37) % 500)
            ev = price_change_event(
                market,
                [
                    price_change_item(
                        asset_id,
                        dec(price),
                        size,
                        side,
                        best_bid=dec(round(start_price + tick * 19, 6)),
                        best_ask=dec(round(start_price + tick * 20, 6)),
                    )
                ],
            )
            events.append(ev)
            frame: Any = [ev] if as_array_every and (i + 1) % as_array_every == 0 else ev
            await self.send_event(frame, wait=False)
        if wait:
            await self.flush()
        return events

    # ------------------------------------------------------------------ receiving

    async def _on_text(self, conn: FakeWsConnection, text: str) -> None:
        assert isinstance(conn, ClobConnection)
        ok, msg = parse_json(text)
        assets = msg.get("assets_ids") if ok and isinstance(msg, dict) else None
        if not isinstance(assets, list) or not all(isinstance(a, str) for a in assets):
            conn.invalid_messages.append(text)
            self.invalid_messages.append(text)
            return
        op = msg.get("operation")
        if op is None:
            if str(msg.get("type", "")).lower() != "market":
                conn.invalid_messages.append(text)
                self.invalid_messages.append(text)
                return
            op = "subscribe"
        if op not in ("subscribe", "unsubscribe"):
            conn.invalid_messages.append(text)
            self.invalid_messages.append(text)
            return
        conn.subscribe_messages.append(msg)
        self.subscribe_messages.append(msg)
        if op == "unsubscribe":
            for a in assets:
                conn.assets.discard(a)
                conn.over_cap.discard(a)
            return
        if msg.get("custom_feature_enabled"):
            conn.custom_features = True
        new: list[str] = []
        ignored: list[str] = []
        for a in dict.fromkeys(assets):  # de-duplicate, keep order
            if a in conn.assets or a in conn.over_cap:
                continue
            if len(conn.assets) < self.asset_cap:
                conn.assets.add(a)
                new.append(a)
            else:
                conn.over_cap.add(a)
                ignored.append(a)
        if ignored:
            self.cap_violations.append(
                CapViolation(conn.id, len(conn.assets) + len(conn.over_cap), self.asset_cap, tuple(ignored))
            )
        if new and msg.get("initial_dump", True) is not False:
            books = [self.book_for(a) for a in new]
            frame: Any = books if (len(books) > 1 or self.dump_single_as_array) else books[0]
            self._enqueue(conn, dumps(frame))
        if new or ignored:
            self._start_script(conn)


# ====================================================================== Gamma


def _encoded(values: Sequence[Any]) -> str:
    """Gamma's JSON-in-a-string encoding, with the real ``", "`` separator."""
    return json.dumps([str(v) for v in values])


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def make_tag(label: str, id: int | str | None = None, slug: str | None = None) -> dict[str, Any]:  # noqa: A002
    """A Gamma tag ``{"id","label","slug"}`` (id as a string, like the real API)."""
    tag_id = str(id) if id is not None else str(int(hashlib.sha256(label.encode()).hexdigest(), 16) % 100_000)
    return {"id": tag_id, "label": label, "slug": slug or slugify(label)}


def _tags(tags: Iterable[Any]) -> list[dict[str, Any]]:
    return [make_tag(t) if isinstance(t, str) else dict(t) for t in tags]


def make_gamma_market(
    condition_id: str,
    question: str,
    slug: str,
    token_ids: Sequence[str],
    outcomes: Sequence[str] = ("Yes", "No"),
    *,
    id: str | int | None = None,  # noqa: A002
    outcome_prices: Sequence[Any] | None = None,
    volume_24h: float = 0.0,
    volume: float | None = None,
    liquidity: float = 0.0,
    active: bool = True,
    closed: bool = False,
    archived: bool = False,
    category: str | None = None,
    tags: Iterable[Any] | None = None,
    end_date: str = "2026-12-31T12:00:00Z",
    start_date: str = "2025-01-01T00:00:00Z",
    description: str = "",
    neg_risk: bool = False,
    best_bid: float | None = None,
    best_ask: float | None = None,
    last_trade_price: float | None = None,
    group_item_title: str = "",
    omit: Iterable[str] = (),
    **extra: Any,
) -> dict[str, Any]:
    """A Gamma Market with the real encoding traps: ``outcomes``/``outcomePrices``/
    ``clobTokenIds`` are JSON-encoded *strings*; ``volume``/``liquidity`` strings;
    ``volumeNum``/``liquidityNum``/``volume24hr`` numbers; ``category`` usually null.
    ``omit`` removes keys (real closed markets lack e.g. ``volume``/``volume24hr``); ``extra``
    adds/overrides raw keys."""
    if len(token_ids) != len(outcomes):
        raise ValueError("token_ids and outcomes must have the same length")
    if outcome_prices is None:
        outcome_prices = [dec(round(1 / len(outcomes), 4))] * len(outcomes)
    vol = volume if volume is not None else volume_24h * 10
    bb = best_bid if best_bid is not None else 0.49
    ba = best_ask if best_ask is not None else 0.51
    market: dict[str, Any] = {
        "id": str(id) if id is not None else str(int(hashlib.sha256(condition_id.encode()).hexdigest(), 16) % 10_000_000),
        "question": question,
        "conditionId": condition_id,
        "slug": slug,
        "description": description,
        "category": category,
        "endDate": end_date,
        "startDate": start_date,
        "endDateIso": end_date[:10],
        "startDateIso": start_date[:10],
        "outcomes": _encoded(outcomes),
        "outcomePrices": _encoded([dec(p) for p in outcome_prices]),
        "clobTokenIds": _encoded(token_ids),
        "volume": dec(vol),
        "volumeNum": float(vol),
        "volume24hr": float(volume_24h),
        "volume1wk": float(volume_24h) * 5,
        "volume1mo": float(volume_24h) * 20,
        "liquidity": dec(liquidity),
        "liquidityNum": float(liquidity),
        "active": active,
        "closed": closed,
        "archived": archived,
        "acceptingOrders": active and not closed,
        "enableOrderBook": True,
        "orderPriceMinTickSize": 0.01,
        "orderMinSize": 5,
        "bestBid": bb,
        "bestAsk": ba,
        "spread": round(ba - bb, 6),
        "lastTradePrice": last_trade_price if last_trade_price is not None else 0.5,
        "oneDayPriceChange": 0,
        "negRisk": neg_risk,
        "groupItemTitle": group_item_title,
        "umaResolutionStatus": "resolved" if closed else None,
    }
    if tags is not None:
        market["tags"] = _tags(tags)
    market.update(extra)
    for key in omit:
        market.pop(key, None)
    return market


def make_gamma_event(
    slug: str,
    title: str,
    markets: Sequence[Mapping[str, Any]],
    *,
    tags: Iterable[Any] = (),
    category: str | None = None,
    id: str | int | None = None,  # noqa: A002
    active: bool = True,
    closed: bool = False,
    archived: bool = False,
    volume_24h: float | None = None,
    volume: float | None = None,
    liquidity: float | None = None,
    start_date: str = "2025-01-01T00:00:00Z",
    end_date: str = "2026-12-31T12:00:00Z",
    description: str = "",
    neg_risk: bool = False,
    omit: Iterable[str] = (),
    **extra: Any,
) -> dict[str, Any]:
    """A Gamma Event with nested ``markets``; ``tags`` are labels or ``{id,label,slug}`` dicts.
    Volumes/liquidity default to the sum over the markets (event-level ones are numbers)."""
    mk = [dict(m) for m in markets]
    event: dict[str, Any] = {
        "id": str(id) if id is not None else str(int(hashlib.sha256(slug.encode()).hexdigest(), 16) % 1_000_000),
        "ticker": slug,
        "slug": slug,
        "title": title,
        "description": description,
        "startDate": start_date,
        "endDate": end_date,
        "active": active,
        "closed": closed,
        "archived": archived,
        "liquidity": liquidity if liquidity is not None else sum(float(m.get("liquidityNum") or 0) for m in mk),
        "volume": volume if volume is not None else sum(float(m.get("volumeNum") or 0) for m in mk),
        "volume24hr": volume_24h if volume_24h is not None else sum(float(m.get("volume24hr") or 0) for m in mk),
        "openInterest": 0,
        "category": category,
        "negRisk": neg_risk,
        "markets": mk,
        "tags": _tags(tags),
        "series": [],
    }
    event.update(extra)
    for key in omit:
        event.pop(key, None)
    return event


#: Gamma ``order`` keys → JSON field (both spellings of 24h volume are accepted)
GAMMA_ORDER_FIELDS: dict[str, str] = {
    "volume_24hr": "volume24hr",
    "volume24hr": "volume24hr",
    "volume": "volume",
    "volumeNum": "volumeNum",
    "liquidity": "liquidity",
    "liquidityNum": "liquidityNum",
    "start_date": "startDate",
    "startDate": "startDate",
    "end_date": "endDate",
    "endDate": "endDate",
    "competitive": "competitive",
    "closed_time": "closedTime",
    "closedTime": "closedTime",
    "id": "id",
}


def _sort_key_value(v: Any) -> tuple[int, Any]:
    if v is None:
        return (0, 0)
    if isinstance(v, bool):
        return (1, int(v))
    if isinstance(v, (int, float)):
        return (1, float(v))
    if isinstance(v, str):
        try:
            return (1, float(v))
        except ValueError:
            return (2, v)
    return (3, str(v))


def _order_items(items: list[dict[str, Any]], order: str | None, ascending: bool) -> list[dict[str, Any]]:
    if not order:
        return items
    for key in reversed([k.strip() for k in order.split(",") if k.strip()]):
        field = GAMMA_ORDER_FIELDS.get(key) or re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), key)
        present = [i for i in items if i.get(field) is not None]
        missing = [i for i in items if i.get(field) is None]
        present.sort(key=lambda i: _sort_key_value(i.get(field)), reverse=not ascending)
        items = present + missing  # missing keys sort last either way
    return items


class FakeGamma(FakeHttpServer):
    """Fake ``https://gamma-api.polymarket.com``.

    ``GET /events`` (``limit``/``offset``/``active``/``closed``/``archived``/``slug``/``id``/
    ``tag_id``/``tag_slug``/``exclude_tag_id``/``order``/``ascending``), ``GET /events/{id}``,
    ``GET /events/slug/{slug}``, ``GET /markets`` (``id``, ``slug``, ``condition_ids``,
    ``clob_token_ids``, ``active``, ``closed``, ``archived``, ``limit``, ``offset``, ``order``,
    ``ascending``), ``GET /markets/{id}``, ``GET /markets/slug/{slug}``. Every list is a bare
    JSON array; an empty array past the end.

    Defaults chosen where the real API is undocumented: ``default_limit`` 20 when ``limit``
    is absent, ``ascending`` false when ``order`` is given, no max limit/offset unless set.
    ``clob_token_ids`` must be repeated params: a comma-joined value is one (non-matching)
    id, unless ``split_comma_token_ids`` is set.
    """

    name = "gamma"

    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict[str, Any]] = []
        #: markets not nested in any event (``/markets`` also sees every nested market)
        self.extra_markets: list[dict[str, Any]] = []
        self.default_limit: int = 20
        self.max_limit: int | None = None
        self.max_offset: int | None = None
        self.split_comma_token_ids: bool = False

    def set_events(self, events: Iterable[Mapping[str, Any]]) -> None:
        """Replace the event list (deep-copied); their nested markets feed ``/markets`` too."""
        self.events = [copy.deepcopy(dict(e)) for e in events]

    def add_events(self, events: Iterable[Mapping[str, Any]]) -> None:
        self.events.extend(copy.deepcopy(dict(e)) for e in events)

    def set_markets(self, markets: Iterable[Mapping[str, Any]]) -> None:
        """Standalone markets served by ``/markets`` in addition to the events' markets."""
        self.extra_markets = [copy.deepcopy(dict(m)) for m in markets]

    @property
    def markets(self) -> list[dict[str, Any]]:
        """Every market ``/markets`` serves: nested ones (with an ``events`` back-reference,
        like the real API) then the standalone ones."""
        out: list[dict[str, Any]] = []
        for e in self.events:
            ref = {k: v for k, v in e.items() if k not in ("markets", "tags", "series")}
            for m in e.get("markets") or ():
                mm = dict(m)
                mm.setdefault("events", [ref])
                out.append(mm)
        out.extend(dict(m) for m in self.extra_markets)
        return out

    # ------------------------------------------------------------------ routing

    def route(self, method: str, path: str, params: dict[str, list[str]]) -> Response:
        if method != "GET":
            return self.error_response(405, "method not allowed", path=path)
        try:
            if path == "/events":
                return Response(200, self._list(self.events, params, kind="events"))
            if path == "/markets":
                return Response(200, self._list(self.markets, params, kind="markets"))
            for prefix, items, key in (
                ("/events/slug/", self.events, "slug"),
                ("/markets/slug/", self.markets, "slug"),
                ("/events/", self.events, "id"),
                ("/markets/", self.markets, "id"),
            ):
                if path.startswith(prefix):
                    wanted = path[len(prefix) :]
                    for item in items:
                        if str(item.get(key)) == wanted:
                            return Response(200, item)
                    return self.error_response(404, "not found", path=path)
        except _BadRequest as exc:
            return self.error_response(exc.status, str(exc), path=path)
        return self.error_response(404, "not found", path=path)

    def _list(self, items: list[dict[str, Any]], params: dict[str, list[str]], *, kind: str) -> list[dict[str, Any]]:
        def boolean(name: str) -> bool | None:
            try:
                return parse_bool(_first(params, name))
            except ValueError as exc:
                raise _BadRequest(str(exc), 422) from None

        out = list(items)
        for flag in ("active", "closed", "archived"):
            value = boolean(flag)
            if value is not None:
                out = [i for i in out if bool(i.get(flag)) == value]
        ids = set(multi(params, "id"))
        if ids:
            out = [i for i in out if str(i.get("id")) in ids]
        slugs = set(multi(params, "slug"))
        if slugs:
            out = [i for i in out if i.get("slug") in slugs]
        if kind == "events":
            tag_ids = set(multi(params, "tag_id"))
            if tag_ids:
                out = [i for i in out if tag_ids & {str(t.get("id")) for t in i.get("tags") or ()}]
            tag_slug = _first(params, "tag_slug")
            if tag_slug:
                out = [i for i in out if tag_slug in {t.get("slug") for t in i.get("tags") or ()}]
            excluded = set(multi(params, "exclude_tag_id"))
            if excluded:
                out = [i for i in out if not excluded & {str(t.get("id")) for t in i.get("tags") or ()}]
        else:
            cids = {c.lower() for c in multi(params, "condition_ids")}
            if cids:
                out = [m for m in out if str(m.get("conditionId", "")).lower() in cids]
            tokens = set(multi(params, "clob_token_ids", split_commas=self.split_comma_token_ids))
            if tokens:
                out = [m for m in out if tokens & set(_decode_list(m.get("clobTokenIds")))]
        order = _first(params, "order")
        asc = boolean("ascending")
        out = _order_items(out, order, bool(asc) if asc is not None else False)
        limit = _int_param(params, "limit", self.default_limit, status=422)
        offset = _int_param(params, "offset", 0, status=422)
        if limit < 0 or offset < 0:
            raise _BadRequest("limit and offset must be >= 0", 422)
        if self.max_limit is not None:
            limit = min(limit, self.max_limit)
        if self.max_offset is not None and offset > self.max_offset:
            raise _BadRequest(f"offset must be <= {self.max_offset}", 422)
        return out[offset : offset + limit]


def _decode_list(value: Any) -> list[str]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return []
    return [str(v) for v in value or ()]


class _BadRequest(Exception):
    def __init__(self, message: str, status: int = 400, parameter: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.parameter = parameter


def _first(params: Mapping[str, Sequence[str]], *names: str) -> str | None:
    for name in names:
        values = params.get(name)
        if values:
            return values[0]
    return None


def _int_param(params: Mapping[str, Sequence[str]], name: str, default: int, *, status: int = 400, aliases: Sequence[str] = ()) -> int:
    raw = _first(params, name, *aliases)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise _BadRequest(f"invalid {name}: {raw!r}", status, name) from None


# ====================================================================== Data API


@attrs.define
class _StoredTrade:
    trade: dict[str, Any]
    taker: bool
    seq: int


class FakeDataApi(FakeHttpServer):
    """Fake ``https://data-api.polymarket.com``: ``GET /trades`` (v1) and ``GET /v2/trades``.

    v1: bare array, newest first. ``limit`` (default 100) clamped to ``max_limit`` (500);
    ``offset`` > ``max_offset`` (1000) → 400; ``takerOnly`` (default true; maker rows are
    those added with ``taker=False``); ``filterType`` (CASH: size×price ≥ amount, TOKENS:
    size ≥ amount) and ``filterAmount`` both or neither → else 400; ``market`` comma list of
    condition ids (exclusive with ``eventId``); ``user``; ``side``. Unknown params (e.g.
    moon-dev's ``_min_timestamp``) are ignored. Errors ``{"error": ...}``.

    v2: ``{"data":[snake_case...],"pagination":{limit,offset,has_more,next_cursor}}`` with
    opaque cursors; ``offset`` → 400; errors ``{error,code,retryable,trace_id[,parameter]}``.
    """

    name = "data-api"

    def __init__(self) -> None:
        super().__init__()
        self._trades: list[_StoredTrade] = []
        self._seq = 0
        self.max_limit: int = 500
        self.max_offset: int = 1000
        self.v2_max_limit: int = 1000

    def set_trades(self, trades: Iterable[Mapping[str, Any]], *, taker: bool = True) -> None:
        """Replace the trade store (Data API v1 dicts or CSV rows; numbers are normalised)."""
        self._trades = []
        self.add_trades(trades, taker=taker)

    def add_trades(self, trades: Iterable[Mapping[str, Any]], *, taker: bool = True) -> None:
        """Add trades; ``taker=False`` marks maker rows (hidden while ``takerOnly`` is true)."""
        for t in trades:
            self._seq += 1
            self._trades.append(_StoredTrade(normalize_trade(t), taker, self._seq))

    @property
    def trades(self) -> list[dict[str, Any]]:
        """Every stored trade, newest first (what ``/trades?takerOnly=false`` would page through)."""
        return [s.trade for s in self._sorted()]

    def _sorted(self) -> list[_StoredTrade]:
        return sorted(self._trades, key=lambda s: (-int(s.trade.get("timestamp") or 0), s.seq))

    def error_response(
        self,
        status: int,
        message: str,
        *,
        path: str = "",
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> Response:
        if path.startswith("/v2/"):
            body = {
                "error": message,
                "code": extra.pop("code", _v2_code(status)),
                "retryable": status in (429, 500, 502, 503, 504),
                "trace_id": secrets.token_hex(8),
                **extra,
            }
            return Response(status, body, headers or {})
        return Response(status, {"error": message, **extra}, headers or {})

    def route(self, method: str, path: str, params: dict[str, list[str]]) -> Response:
        if method != "GET":
            return self.error_response(405, "method not allowed", path=path)
        try:
            if path == "/trades":
                return Response(200, self._v1(params))
            if path == "/v2/trades":
                return Response(200, self._v2(params))
        except _BadRequest as exc:
            extra = {"parameter": exc.parameter} if (exc.parameter and path.startswith("/v2/")) else {}
            return self.error_response(exc.status, str(exc), path=path, **extra)
        return self.error_response(404, "not found", path=path)

    @staticmethod
    def _filter_amount(params: Mapping[str, Sequence[str]], type_names: Sequence[str], amount_names: Sequence[str], *, v2: bool) -> tuple[str | None, float | None]:
        ftype = _first(params, *type_names)
        famount = _first(params, *amount_names)
        if not v2 and (ftype is None) != (famount is None):
            raise _BadRequest("filterType and filterAmount must be provided together", 400, "filterType")
        if v2:
            ftype = ftype or "TOKENS"
            famount = famount if famount is not None else "0.01"
        if ftype is None or famount is None:
            return None, None
        if ftype not in ("CASH", "TOKENS"):
            raise _BadRequest(f"invalid filterType {ftype!r}: must be CASH or TOKENS", 400, "filter_type")
        try:
            amount = float(famount)
        except ValueError:
            raise _BadRequest(f"invalid filterAmount {famount!r}", 400, "filter_amount") from None
        if amount < 0:
            raise _BadRequest("filterAmount must be >= 0", 400, "filter_amount")
        return ftype, amount

    def _select(
        self,
        *,
        taker_only: bool,
        ftype: str | None,
        amount: float | None,
        markets: set[str],
        user: str | None,
        side: str | None,
        start: int | None = None,
        end: int | None = None,
    ) -> list[dict[str, Any]]:
        out = []
        for s in self._sorted():
            t = s.trade
            if taker_only and not s.taker:
                continue
            size = float(t.get("size") or 0)
            price = float(t.get("price") or 0)
            if ftype == "CASH" and amount is not None and size * price < amount:
                continue
            if ftype == "TOKENS" and amount is not None and size < amount:
                continue
            if markets and str(t.get("conditionId", "")).lower() not in markets:
                continue
            if user and str(t.get("proxyWallet", "")).lower() != user.lower():
                continue
            if side and t.get("side") != side:
                continue
            ts = int(t.get("timestamp") or 0)
            if start is not None and ts < start:
                continue
            if end is not None and ts > end:
                continue
            out.append(t)
        return out

    def _v1(self, params: dict[str, list[str]]) -> list[dict[str, Any]]:
        limit = _int_param(params, "limit", 100)
        offset = _int_param(params, "offset", 0)
        if limit < 0:
            raise _BadRequest("limit must be >= 0", 400, "limit")
        if offset < 0:
            raise _BadRequest("offset must be >= 0", 400, "offset")
        if offset > self.max_offset:
            raise _BadRequest(f"max historical activity offset of {self.max_offset} exceeded", 400, "offset")
        limit = min(limit, self.max_limit)
        try:
            taker_only = parse_bool(_first(params, "takerOnly"), True)
        except ValueError as exc:
            raise _BadRequest(str(exc), 400, "takerOnly") from None
        ftype, amount = self._filter_amount(params, ("filterType",), ("filterAmount",), v2=False)
        markets = {m.lower() for m in multi(params, "market")}
        if markets and _first(params, "eventId"):
            raise _BadRequest("market and eventId are mutually exclusive", 400, "market")
        side = _first(params, "side")
        if side is not None and side not in ("BUY", "SELL"):
            raise _BadRequest(f"invalid side {side!r}", 400, "side")
        rows = self._select(
            taker_only=bool(taker_only), ftype=ftype, amount=amount, markets=markets, user=_first(params, "user"), side=side
        )
        return [dict(t) for t in rows[offset : offset + limit]]

    def _v2(self, params: dict[str, list[str]]) -> dict[str, Any]:
        if "offset" in params:
            raise _BadRequest("offset is not supported; use cursor", 400, "offset")
        limit = _int_param(params, "limit", 100)
        if limit < 1:
            raise _BadRequest("limit must be >= 1", 400, "limit")
        limit = min(limit, self.v2_max_limit)
        cursor = _first(params, "cursor")
        offset = 0
        if cursor:
            offset = _decode_cursor(cursor)
        try:
            taker_only = parse_bool(_first(params, "taker_only", "takerOnly"), True)
        except ValueError as exc:
            raise _BadRequest(str(exc), 400, "taker_only") from None
        ftype, amount = self._filter_amount(params, ("filter_type", "filterType"), ("filter_amount", "filterAmount"), v2=True)
        markets = {m.lower() for m in multi(params, "condition", "condition_id", "conditionId")}
        if len(markets) > 20:
            raise _BadRequest("at most 20 condition ids", 400, "condition")
        side = _first(params, "side")
        if side is not None and side not in ("BUY", "SELL"):
            raise _BadRequest(f"invalid side {side!r}", 400, "side")
        user = _first(params, "user")
        start = end = None
        if user:
            start = _int_param(params, "start", 0) or None
            end = _int_param(params, "end", 0) or None
        rows = self._select(
            taker_only=bool(taker_only),
            ftype=ftype,
            amount=amount,
            markets=markets,
            user=user,
            side=side,
            start=start,
            end=end,
        )
        page = rows[offset : offset + limit]
        has_more = offset + limit < len(rows)
        return {
            "data": [trade_to_v2(t) for t in page],
            "pagination": {
                "limit": limit,
                "offset": offset,
                "has_more": has_more,
                "next_cursor": _encode_cursor(offset + limit) if has_more else None,
            },
        }


def _encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(dumps({"o": offset, "n": secrets.token_hex(2)}).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)
        offset = int(value["o"])
        if offset < 0:
            raise ValueError
        return offset
    except Exception:
        raise _BadRequest("invalid cursor", 400, "cursor") from None


def _v2_code(status: int) -> str:
    return {
        400: "INVALID_PARAMETER",
        404: "NOT_FOUND",
        429: "RATE_LIMITED",
        500: "INTERNAL",
        503: "UNAVAILABLE",
    }.get(status, f"HTTP_{status}")


# ====================================================================== all together


@attrs.define(eq=False)
class FakePolymarket:
    """The four fakes, running. Get one from :func:`open_fake_polymarket`."""

    rtds: FakeRtds
    clob: FakeClob
    gamma: FakeGamma
    data_api: FakeDataApi

    @property
    def rtds_url(self) -> str:
        """``ws://127.0.0.1:P`` — replaces ``wss://ws-live-data.polymarket.com``."""
        return self.rtds.url

    @property
    def clob_url(self) -> str:
        """``ws://127.0.0.1:P/ws/market``."""
        return self.clob.url

    @property
    def gamma_url(self) -> str:
        """``http://127.0.0.1:P`` — replaces ``https://gamma-api.polymarket.com``."""
        return self.gamma.url

    @property
    def data_api_url(self) -> str:
        """``http://127.0.0.1:P`` — replaces ``https://data-api.polymarket.com``."""
        return self.data_api.url

    @property
    def errors(self) -> list[BaseException]:
        """Exceptions swallowed by any fake (should stay empty in a healthy test)."""
        return [*self.rtds.errors, *self.clob.errors, *self.gamma.errors, *self.data_api.errors]


@asynccontextmanager
async def open_fake_polymarket(*, clob_asset_cap: int = 500, send_queue_size: int = 10_000) -> AsyncIterator[FakePolymarket]:
    """Start all four fakes on 127.0.0.1 (port 0 each) and stop them on exit."""
    fake = FakePolymarket(
        rtds=FakeRtds(send_queue_size=send_queue_size),
        clob=FakeClob(asset_cap=clob_asset_cap, send_queue_size=send_queue_size),
        gamma=FakeGamma(),
        data_api=FakeDataApi(),
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(fake.rtds.run)
        await nursery.start(fake.clob.run)
        await nursery.start(fake.gamma.run)
        await nursery.start(fake.data_api.run)
        try:
            yield fake
        finally:
            nursery.cancel_scope.cancel()


@asynccontextmanager
async def open_fake_rtds(**kwargs: Any) -> AsyncIterator[FakeRtds]:
    """Just the RTDS fake."""
    server = FakeRtds(**kwargs)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run)
        try:
            yield server
        finally:
            nursery.cancel_scope.cancel()


@asynccontextmanager
async def open_fake_clob(**kwargs: Any) -> AsyncIterator[FakeClob]:
    """Just the CLOB market-channel fake."""
    server = FakeClob(**kwargs)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run)
        try:
            yield server
        finally:
            nursery.cancel_scope.cancel()


@asynccontextmanager
async def open_fake_gamma() -> AsyncIterator[FakeGamma]:
    """Just the Gamma fake."""
    server = FakeGamma()
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run)
        try:
            yield server
        finally:
            nursery.cancel_scope.cancel()


@asynccontextmanager
async def open_fake_data_api() -> AsyncIterator[FakeDataApi]:
    """Just the Data API fake."""
    server = FakeDataApi()
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run)
        try:
            yield server
        finally:
            nursery.cancel_scope.cancel()


__all__ = [
    "BAD_FRAMES",
    "DATA_API_TRADE_FIELDS",
    "DEFAULT_ASKS",
    "DEFAULT_BIDS",
    "GAMMA_ORDER_FIELDS",
    "NOBEL_CSV",
    "RTDS_PAYLOAD_FIELDS",
    "V2_FIELD_NAMES",
    "CapViolation",
    "ClobConnection",
    "FakeClob",
    "FakeDataApi",
    "FakeGamma",
    "FakePolymarket",
    "FakeRtds",
    "FakeHttpServer",
    "FakeWsConnection",
    "FakeWsServer",
    "RecordedRequest",
    "RtdsConnection",
    "RtdsSubscription",
    "ScriptAction",
    "ScriptStep",
    "best_bid_ask_event",
    "book_event",
    "dec",
    "fake_condition_id",
    "fake_token_id",
    "last_trade_price_event",
    "legacy_price_change_event",
    "load_nobel_trades",
    "load_trades_csv",
    "make_gamma_event",
    "make_gamma_market",
    "make_tag",
    "make_trade",
    "market_resolved_event",
    "ms",
    "new_connection_id",
    "new_market_event",
    "normalize_trade",
    "open_fake_clob",
    "open_fake_data_api",
    "open_fake_gamma",
    "open_fake_polymarket",
    "open_fake_rtds",
    "open_ws_client",
    "price_change_event",
    "price_change_item",
    "rtds_envelope",
    "rtds_payload_from_trade",
    "tick_size_change_event",
    "trade_to_v2",
]
