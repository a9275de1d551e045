"""The one loop every upstream WebSocket feed runs: heartbeat, silence watchdog, reader."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection

from .feed_health import FeedHealth


class FeedStalled(Exception):
    """Nothing (not even a keepalive) arrived for the silence timeout: the socket is presumed dead."""


class FeedDisconnected(Exception):
    """The upstream closed the connection."""


async def run_ws_session(
    ws: WebSocketConnection,
    *,
    health: FeedHealth,
    on_text: Callable[[str], Awaitable[None]],
    ping_text: str,
    ping_interval: float,
    silence_timeout: float,
    wall_clock: Callable[[], float] = time.time,
) -> None:
    """Drive one open connection until it fails; never returns normally.

    Sends ``ping_text`` every ``ping_interval`` seconds (Polymarket's application-level
    heartbeat; more often if ``silence_timeout`` is shorter than three intervals), hands every text frame to ``on_text`` (which parses, counts and forwards), and
    raises :class:`FeedStalled` when no frame at all arrived for ``silence_timeout`` seconds —
    the real feeds are known to freeze without closing the socket.

    Raises:
        FeedStalled: silence watchdog fired.
        FeedDisconnected: the server closed the connection (``ConnectionClosed``).
        Whatever ``on_text`` raises (bugs only: bad input must be counted, not raised).
    """
    # the heartbeat's answer is what keeps a quiet feed from looking silent: ping at least
    # three times per silence window
    ping_interval = min(ping_interval, silence_timeout / 3)
    last_frame = trio.current_time()
    stalled = False

    async def heartbeat() -> None:
        while True:
            await trio.sleep(ping_interval)
            await ws.send_message(ping_text)

    async def watchdog(cancel: trio.CancelScope) -> None:
        nonlocal stalled
        while True:
            deadline = last_frame + silence_timeout
            if trio.current_time() >= deadline:
                stalled = True
                cancel.cancel()
                return
            await trio.sleep_until(deadline)

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(heartbeat)
            nursery.start_soon(watchdog, nursery.cancel_scope)
            while True:
                message = await ws.get_message()
                last_frame = trio.current_time()
                health.last_frame_at = wall_clock()
                health.frames_total += 1
                await on_text(message if isinstance(message, str) else message.decode("utf-8", "replace"))
    except* ConnectionClosed as group:
        reason = group.exceptions[0].reason  # type: ignore[attr-defined]
        health.disconnects_total += 1
        raise FeedDisconnected(f"{health.name}: connection closed ({reason})") from None
    if stalled:
        health.stalls_total += 1
        raise FeedStalled(f"{health.name}: no frame for {silence_timeout:g} s")
    raise AssertionError("unreachable: the reader loop only ends by an exception")  # pragma: no cover
