"""RTDS trade firehose: every Polymarket trade, with the trader's wallet.

Subscribes to ``activity``/``trades`` and ``activity``/``orders_matched`` on
``{POLYMARKET_RTDS_URL}``, sends the text ``PING`` every 5 s, and reconnects (through its
supervisor, with backoff) when the socket drops or goes silent.  After every outage it asks
the backfill actor to fetch the gap from the Data API.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs
import trio

from protocols.polymarket import (
    RTDS_PING,
    MalformedFrame,
    RtdsOther,
    Trade,
    parse_rtds_frame,
    rtds_subscribe_message,
)
from supervision import ActorContext, deliver

from ._recent import RecentMap
from ._ws_client import Connector, open_ws
from ._wsfeed import run_ws_session
from .feed_health import FeedHealth

if TYPE_CHECKING:
    from .recorder import Recorder


@attrs.frozen
class GapRequest:
    """Trades between ``since`` and ``until`` (epoch s) may be missing: backfill them."""

    since: float
    until: float
    reason: str


class RtdsIngest:
    """Parses RTDS frames into trades; shared by the live actor and replay.

    Taker and maker rows: ``orders_matched`` carries one row per fill, the taker's; ``trades``
    carries the taker's row again plus one row per maker.  A trade is the taker's fill (as
    the Data API reports it), so ``trades`` rows of a transaction already seen on
    ``orders_matched`` that are not its taker row are maker rows: counted, not forwarded.
    ``orders_matched`` arrives first (by ~0.2–0.4 s, measured); a ``trades`` row whose
    transaction has not been seen there is forwarded (the merger drops the taker duplicate
    when ``orders_matched`` comes later), so a missing ``orders_matched`` never loses a trade.
    """

    def __init__(self, out: trio.MemorySendChannel[Trade] | None, health: FeedHealth,
                 *, memory: int = 50_000) -> None:
        self.out = out
        self.health = health
        #: Transaction hash -> its taker rows' trade ids (almost always one), for the last
        #: ``memory`` transactions: what tells maker rows apart.
        self.transactions: RecentMap[str, tuple[str, ...]] = RecentMap(memory)

    async def handle_text(self, text: str, log: Any) -> None:
        """Parse one frame; forward a trade.  Bad frames are counted and dropped, never raised."""
        health = self.health
        try:
            frame = parse_rtds_frame(text)
        except MalformedFrame as exc:
            health.drop_malformed(log, f"a malformed frame ({exc.reason})", text)
            return
        if frame is None:
            health.keepalives_total += 1
            return
        if frame.__class__ is RtdsOther:
            health.count(f"other:{frame.topic}/{frame.type}")  # type: ignore[union-attr]
            return
        trade: Trade = frame  # type: ignore[assignment]
        tx = trade.transaction_hash
        if trade.source == "rtds.orders_matched":
            if tx:
                ids = self.transactions.get(tx)
                if ids is None:
                    self.transactions.set(tx, (trade.trade_id,))
                elif trade.trade_id not in ids:
                    self.transactions.set(tx, (*ids, trade.trade_id))
        elif tx and (ids := self.transactions.get(tx)) is not None and trade.trade_id not in ids:
            health.count("maker_rows")
            return
        if health.last_trade_ts is None or trade.timestamp > health.last_trade_ts:
            health.last_trade_ts = trade.timestamp
        health.count(trade.source)
        if self.out is not None:
            await deliver(self.out, trade)


def rtds_actor(
    url: str,
    ingest: RtdsIngest,
    *,
    gaps: trio.MemorySendChannel[GapRequest] | None = None,
    ping_interval: float = 5.0,
    silence_timeout: float = 30.0,
    connect: Connector = open_ws,
    recorder: Recorder | None = None,
    wall_clock: Callable[[], float] = time.time,
    watch_since: float | None = None,
    first_connect_grace: float = 10.0,
) -> Callable[..., Any]:
    """The RTDS connection actor.

    ``watch_since`` (wall time the service started watching) bounds the gap of a first
    connection that took longer than ``first_connect_grace`` seconds.

    Cancellation: closes the socket; nothing else to save (the health record keeps the time
    of the last trade, where the next gap backfill starts).
    Errors: a refused connection, a drop or a silence longer than ``silence_timeout`` fails
    the actor so its supervisor reconnects with backoff and jitter.
    """
    health = ingest.health

    async def run(ctx: ActorContext, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        with ctx.stop_scope():
            async with connect(url) as ws:
                await ws.send_message(rtds_subscribe_message())
                now = wall_clock()
                first = health.connects_total == 0
                # where the missing stretch starts: the newest trade seen, else the last frame,
                # else when the service started watching (the start-up backfill covers before)
                outage_since = next((t for t in (health.last_trade_ts, health.last_frame_at, watch_since)
                                     if t is not None), now)
                gap = max(0.0, now - outage_since)
                health.connected, health.connected_since = True, now
                health.connects_total += 1
                if first and gap < first_connect_grace:
                    ctx.log.info("rtds connected to {url}", url=url)
                else:
                    ctx.log.warning("rtds connected after {gap:.0f} s without trades; backfilling the gap", gap=gap)
                    if gaps is not None:
                        health.gaps_total += 1
                        health.gap_seconds_total += gap
                        await gaps.send(GapRequest(since=outage_since, until=now,
                                                   reason="rtds start-up delay" if first else "rtds outage"))

                async def on_text(text: str) -> None:
                    if recorder is not None:
                        await recorder.frame("rtds", text)
                    await ingest.handle_text(text, ctx.log)

                try:
                    await run_ws_session(ws, health=health, on_text=on_text, ping_text=RTDS_PING,
                                         ping_interval=ping_interval, silence_timeout=silence_timeout,
                                         wall_clock=wall_clock)
                finally:
                    health.connected = False

    return run
