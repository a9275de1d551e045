"""The feed loop's heartbeat and silence watchdog, under MockClock with an in-memory socket."""

from __future__ import annotations

import pytest
import trio
from trio_websocket import CloseReason, ConnectionClosed

from actors._wsfeed import FeedDisconnected, FeedStalled, run_ws_session
from actors.feed_health import FeedHealth


class ScriptedSocket:
    """Delivers frames at scripted times; then stays silent (or closes)."""

    def __init__(self, frames: list[tuple[float, str]], *, close_at: float | None = None) -> None:
        self.frames = frames
        self.close_at = close_at
        self.sent: list[tuple[float, str]] = []

    async def get_message(self) -> str:
        if self.frames:
            at, text = self.frames.pop(0)
            await trio.sleep_until(at)
            return text
        if self.close_at is not None:
            await trio.sleep_until(self.close_at)
            raise ConnectionClosed(CloseReason(1006, None))
        await trio.sleep_forever()
        raise AssertionError

    async def send_message(self, text: str) -> None:
        self.sent.append((trio.current_time(), text))


async def test_watchdog_fires_after_exact_silence_and_pings_keep_time(autojump_clock: trio.testing.MockClock) -> None:
    sock = ScriptedSocket([(1.0, "PONG"), (4.0, "x"), (9.5, "PONG")])
    health = FeedHealth("t")
    seen: list[tuple[float, str]] = []

    async def on_text(text: str) -> None:
        seen.append((trio.current_time(), text))

    with pytest.raises(FeedStalled):
        await run_ws_session(sock, health=health, on_text=on_text, ping_text="PING", ping_interval=5.0,  # type: ignore[arg-type]
                             silence_timeout=30.0)
    assert trio.current_time() == 39.5          # 30 s after the last frame
    assert [t for t, _ in sock.sent] == [5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 35.0]
    assert {text for _, text in sock.sent} == {"PING"}
    assert seen == [(1.0, "PONG"), (4.0, "x"), (9.5, "PONG")]
    assert health.frames_total == 3 and health.stalls_total == 1


async def test_short_silence_timeout_pings_three_times_per_window(autojump_clock: trio.testing.MockClock) -> None:
    sock = ScriptedSocket([])
    with pytest.raises(FeedStalled):
        await run_ws_session(sock, health=FeedHealth("t"), on_text=lambda t: trio.lowlevel.checkpoint(),  # type: ignore[arg-type]
                             ping_text="PING", ping_interval=5.0, silence_timeout=3.0)
    # a third ping may or may not leave at exactly t=3.0, the same instant the watchdog fires
    assert [t for t, _ in sock.sent if t < 3.0] == [1.0, 2.0] and len(sock.sent) <= 3
    assert trio.current_time() == 3.0


async def test_close_is_reported_as_disconnect(autojump_clock: trio.testing.MockClock) -> None:
    health = FeedHealth("t")
    with pytest.raises(FeedDisconnected, match="1006"):
        await run_ws_session(ScriptedSocket([], close_at=2.0), health=health,  # type: ignore[arg-type]
                             on_text=lambda t: trio.lowlevel.checkpoint(), ping_text="PING", ping_interval=5.0,
                             silence_timeout=30.0)
    assert health.disconnects_total == 1
