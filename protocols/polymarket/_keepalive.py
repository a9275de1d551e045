"""Recognising the non-JSON keepalive frames both websockets send."""

from __future__ import annotations

from typing import Any

#: Text of the application-level heartbeat both sockets expect (RTDS every 5 s, CLOB every 10 s).
PING = "PING"

_KEEPALIVE_TEXT = frozenset({"", "PONG", "pong", "Pong", "PING", "ping", "Ping"})


def is_keepalive(text: Any) -> bool:
    """Whether a frame that is not JSON is a known keepalive.

    Known keepalives: the empty string, whitespace only, and ``PONG``/``PING``
    (upper, lower or title case), surrounding whitespace ignored.

    Args:
        text: The raw frame (``str`` or bytes-like).

    Returns:
        ``True`` for a keepalive, ``False`` for anything else.
    """
    if text.__class__ is not str:
        if not isinstance(text, (bytes, bytearray, memoryview)):
            return False
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            return False
    if len(text) > 64:
        return False
    return text.strip() in _KEEPALIVE_TEXT
