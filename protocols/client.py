"""The frontend WebSocket protocol: JSON text frames ``{"type": ..., "data": ...}``.

Server → client:

- ``hello``: ``{"server", "version", "seq", "oldest_seq", "heartbeat_interval"}`` on connect;
- broadcasts, each with a top-level ``seq`` increasing by one per broadcast:
  ``whale_trade``, ``market_update`` (and ``prediction``);
- ``subscribed`` (the effective filter), ``pong``, ``lagged`` (``{"missed", "resume_from"}``),
  ``error`` (``{"code", "message"}``, plus ``oldest_seq`` for ``resume_gap``);
- ``batch`` (``data`` is a list of broadcast messages) only for clients that asked for it.

Client → server: ``subscribe`` (``{"types", "markets", "min_amount", "batch"}``), ``resume``
(``{"since": SEQ}``), ``ping``.  Everything here is pure: parsing raises
:class:`ClientError` with a code, never anything else.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import attrs
import orjson

#: Broadcast message types a client can subscribe to.
BROADCAST_TYPES = ("whale_trade", "market_update", "prediction")


class ClientError(ValueError):
    """A client message the server cannot act on; ``code`` goes back in an ``error`` frame."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@attrs.frozen
class Subscription:
    """What one client wants: ``None`` means everything."""

    types: frozenset[str] | None = None
    markets: frozenset[str] | None = None
    min_amount: float = 0.0
    batch: bool = False

    def wants(self, type_: str, market: str | None, amount: float | None) -> bool:
        if self.types is not None and type_ not in self.types:
            return False
        if self.markets is not None and market is not None and market not in self.markets:
            return False
        if self.min_amount and amount is not None and amount < self.min_amount:
            return False
        return True

    def as_data(self) -> dict[str, Any]:
        return {"types": sorted(self.types) if self.types is not None else list(BROADCAST_TYPES),
                "markets": sorted(self.markets) if self.markets is not None else None,
                "min_amount": self.min_amount, "batch": self.batch}


EVERYTHING = Subscription()


@attrs.frozen
class Subscribe:
    subscription: Subscription


@attrs.frozen
class Resume:
    since: int


@attrs.frozen
class Ping:
    pass


ClientMessage = Subscribe | Resume | Ping


def _str_list(value: Any, field: str, *, limit: int = 1000) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ClientError("bad_request", f"'{field}' must be a list of strings")
    if len(value) > limit:
        raise ClientError("bad_request", f"'{field}' has more than {limit} entries")
    return frozenset(value)


def parse_client_message(text: str | bytes, *, max_bytes: int = 65536) -> ClientMessage:
    """Parse one client frame.

    Raises:
        ClientError: ``too_large``, ``bad_json``, ``bad_request`` or ``unknown_type``.
    """
    if len(text) > max_bytes:
        raise ClientError("too_large", f"messages are limited to {max_bytes} bytes")
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise ClientError("bad_json", "not valid JSON") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        raise ClientError("bad_request", 'expected an object with a string "type"')
    kind = obj["type"]
    data = obj.get("data", {})
    if data is None:
        data = {}
    if kind == "ping":
        return Ping()
    if not isinstance(data, dict):
        raise ClientError("bad_request", '"data" must be an object')
    if kind == "subscribe":
        types = markets = None
        if data.get("types") is not None:
            types = _str_list(data["types"], "types")
            unknown = sorted(types - set(BROADCAST_TYPES))
            if unknown:
                raise ClientError("bad_request", f"unknown type {unknown[0]!r}; known: {', '.join(BROADCAST_TYPES)}")
        if data.get("markets") is not None:
            markets = _str_list(data["markets"], "markets")
        min_amount = data.get("min_amount", 0) or 0
        if isinstance(min_amount, bool) or not isinstance(min_amount, (int, float)) or min_amount < 0:
            raise ClientError("bad_request", "'min_amount' must be a number >= 0")
        batch = data.get("batch", False)
        if not isinstance(batch, bool):
            raise ClientError("bad_request", "'batch' must be true or false")
        return Subscribe(Subscription(types, markets, float(min_amount), batch))
    if kind == "resume":
        since = data.get("since")
        if isinstance(since, bool) or not isinstance(since, int) or since < 0:
            raise ClientError("bad_request", "'since' must be a whole number >= 0 (the last seq you received)")
        return Resume(since)
    raise ClientError("unknown_type", f"unknown message type {kind!r}; send subscribe, resume or ping")


def iso_utc(epoch_seconds: float) -> str:
    """ISO 8601 UTC with a ``Z`` (the seed's timestamp format)."""
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def encode(type_: str, data: Any, seq: int | None = None) -> str:
    """One server frame as text (encoded once, sent to every client)."""
    message: dict[str, Any] = {"type": type_}
    if seq is not None:
        message["seq"] = seq
    message["data"] = data
    return orjson.dumps(message).decode()


def encode_batch(frames: Iterable[str]) -> str:
    """Several already-encoded broadcast frames as one ``batch`` frame, without re-encoding."""
    return '{"type":"batch","data":[' + ",".join(frames) + "]}"


def error_frame(code: str, message: str, **extra: Any) -> str:
    return encode("error", {"code": code, "message": message, **extra})


def ws_text_frame(text: str | bytes) -> bytes:
    """``text`` as one complete, unmasked WebSocket text frame (RFC 6455 §5.2), as a server sends it.

    A server's frames are the same bytes for every client (no mask; this server negotiates no
    compression extension), so a broadcast is framed once and written to every socket as is.
    """
    payload = text.encode() if isinstance(text, str) else text
    n = len(payload)
    if n < 126:
        header = bytes((0x81, n))
    elif n < 65536:
        header = bytes((0x81, 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((0x81, 127)) + n.to_bytes(8, "big")
    return header + payload
