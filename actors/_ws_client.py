"""The WebSocket client port the feed actors connect through.

trio-websocket's ``open_websocket_url`` (0.12.2) leaves the TCP socket open after an abnormal
close (1006) or a rejected handshake; here the caller's stream is owned and always closed.
Feed actors take a ``connect`` callable of this shape, so tests can hand in another.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from urllib.parse import urlsplit

import trio
from trio_websocket import WebSocketConnection, wrap_client_stream

#: ``connect(url) -> async context manager yielding a WebSocketConnection``
Connector = Callable[[str], AbstractAsyncContextManager[WebSocketConnection]]


@asynccontextmanager
async def open_ws(
    url: str,
    *,
    connect_timeout: float = 10.0,
    disconnect_timeout: float = 2.0,
    message_queue_size: int = 256,
    max_message_size: int = 16 * 2**20,
    ssl_context: ssl.SSLContext | None = None,
) -> AsyncIterator[WebSocketConnection]:
    """Connect to a ``ws://`` or ``wss://`` URL; the socket is closed however the block ends.

    Raises:
        trio.TooSlowError: connecting took longer than ``connect_timeout``.
        OSError, trio_websocket.HandshakeError: the server could not be reached or refused.
        Exceptions from the block propagate unwrapped.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ValueError(f"not a ws:// or wss:// URL: {url!r}")
    secure = parts.scheme == "wss"
    port = parts.port or (443 if secure else 80)
    resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    stream: trio.abc.Stream
    with trio.fail_after(connect_timeout):
        if secure:
            stream = await trio.open_ssl_over_tcp_stream(
                parts.hostname, port, ssl_context=ssl_context or ssl.create_default_context())
        else:
            stream = await trio.open_tcp_stream(parts.hostname, port)
    error: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            with trio.fail_after(connect_timeout):
                ws = await wrap_client_stream(
                    nursery, stream, parts.hostname if port in (80, 443) else f"{parts.hostname}:{port}", resource,
                    message_queue_size=message_queue_size, max_message_size=max_message_size)
            try:
                yield ws
            except BaseException as exc:  # noqa: BLE001 - re-raised below, outside the nursery
                error = exc
            finally:
                with trio.move_on_after(disconnect_timeout) as scope:
                    scope.shield = True
                    await ws.aclose()
                await trio.aclose_forcefully(stream)
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise
    finally:
        await trio.aclose_forcefully(stream)
    if error is not None:
        raise error
