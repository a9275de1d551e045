"""Backfill actor: fetches missed trades from the Data API after start-up and every outage.

``GET {DATA_API_URL}/trades?filterType=CASH&filterAmount=<TRADE_NOTIONAL_THRESHOLD>`` pages
newest-first (limit ≤ 500, offset ≤ 1000, the documented caps) back to the start of the gap;
the trades go oldest-first into the trade merger, which drops those already seen live.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import attrs
import trio

from protocols.polymarket import MalformedFrame, PageStats, Trade, parse_trades_page
from supervision import ActorContext

from ._http import HttpStats, UpstreamError, get_with_retry
from .catalog import HttpClientFactory, default_http_client
from .rtds import GapRequest

if TYPE_CHECKING:
    from .feed_health import FeedHealth
    from .recorder import Recorder
    from .trade_merge import TradeDeduper


@attrs.frozen
class BackfillConfig:
    data_api_url: str
    min_notional: float
    #: Start-up look-back in seconds (0: none).
    startup_lookback: float = 3600.0
    page_limit: int = 500
    max_offset: int = 1000
    #: The Data API lags real time by 5–10 s: wait this long after a gap ends before fetching.
    settle: float = 15.0


@attrs.define
class BackfillState:
    """Survives restarts: whether the start-up backfill was done, and totals."""

    startup_done: bool = False
    runs_total: int = 0
    pages_total: int = 0
    fetched_total: int = 0
    recovered_total: int = 0
    truncated_total: int = 0
    last_run: dict[str, Any] | None = None


def backfill_actor(
    config: BackfillConfig,
    out: trio.MemorySendChannel[Trade],
    state: BackfillState,
    *,
    deduper: TradeDeduper | None = None,
    health: FeedHealth | None = None,
    recorder: Recorder | None = None,
    http_client: HttpClientFactory = default_http_client,
    wall_clock: Callable[[], float] = time.time,
    rng: random.Random | None = None,
) -> Callable[..., Any]:
    """The backfill actor body; its inbox receives :class:`~actors.rtds.GapRequest`.

    Cancellation: a gap being fetched when the actor is stopped or killed is redelivered by
    the inbox to the next incarnation and fetched again (the merger drops repeats).
    Errors: Data API failures are retried (429 honours ``Retry-After``); a gap that still
    cannot be fetched fails the actor, so its supervisor retries it with backoff.
    """
    stats = HttpStats()
    page_stats = PageStats()
    chooser = rng if rng is not None else random.Random()

    async def fill(ctx: ActorContext, client: Any, gap: GapRequest) -> None:
        wait = gap.until + config.settle - wall_clock()
        if wait > 0:
            await trio.sleep(wait)
        collected: dict[str, Trade] = {}
        pages = 0
        reached = False
        offset = 0
        while offset <= config.max_offset:
            params = {"limit": config.page_limit, "offset": offset, "takerOnly": "true",
                      "filterType": "CASH", "filterAmount": f"{config.min_notional:g}"}
            response = await get_with_retry(client, "/trades", params, stats=stats, rng=chooser,
                                            what="data-api /trades")
            if recorder is not None:
                await recorder.response("data_api", "/trades?" + urlencode(params), response.status_code,
                                        response.text)
            try:
                trades = parse_trades_page(response.content, stats=page_stats)
            except MalformedFrame as exc:
                raise UpstreamError(f"data-api /trades page is malformed ({exc.reason})") from None
            pages += 1
            state.pages_total += 1
            if not trades:
                reached = True
                break
            for trade in trades:
                if trade.timestamp >= gap.since:
                    collected[trade.trade_id] = trade
            if min(t.timestamp for t in trades) < gap.since:
                reached = True
                break
            if len(trades) < config.page_limit:
                reached = True
                break
            offset += config.page_limit
            ctx.log.info("backfill: page {p} done, {n} trades so far", p=pages, n=len(collected))
        ordered = sorted(collected.values(), key=lambda t: t.timestamp)
        recovered = sum(1 for t in ordered if deduper is None or not deduper.seen(t.trade_id))
        for trade in ordered:
            await out.send(trade)
        state.runs_total += 1
        state.fetched_total += len(ordered)
        state.recovered_total += recovered
        if health is not None:
            health.trades_backfilled_total += recovered
        if not reached:
            state.truncated_total += 1
            ctx.log.warning(
                "backfill ({why}): the Data API paging limit was reached before the gap start; "
                "trades older than the oldest fetched may be missing", why=gap.reason)
        state.last_run = {"reason": gap.reason, "since": gap.since, "until": gap.until,
                          "gap_seconds": max(0.0, gap.until - gap.since), "pages": pages,
                          "fetched": len(ordered), "recovered": recovered, "complete": reached}
        ctx.log.info("backfill ({why}): gap of {g:.0f} s, {f} trades fetched in {p} pages, {r} recovered",
                     why=gap.reason, g=max(0.0, gap.until - gap.since), f=len(ordered), p=pages, r=recovered)

    async def run(ctx: ActorContext, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        assert ctx.inbox is not None
        async with http_client(config.data_api_url) as client:
            task_status.started()
            if not state.startup_done and config.startup_lookback > 0:
                now = wall_clock()
                await fill(ctx, client, GapRequest(since=now - config.startup_lookback, until=now - config.settle,
                                                   reason="start-up"))
            state.startup_done = True
            async for gap in ctx.inbox:
                await fill(ctx, client, gap)

    run.stats = stats  # type: ignore[attr-defined]
    return run
