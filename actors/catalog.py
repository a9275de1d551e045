"""Market catalog actor: Gamma ``/events`` → the market directory; on-demand lookups.

Pages through ``GET {GAMMA_API_URL}/events?active=true&closed=false`` (limit/offset until an
empty page), flattens events into markets, refreshes periodically, and tells the CLOB shards
which tokens to watch.  Markets that appear later (a CLOB ``new_market``, a trade for an
unknown condition id) are looked up on demand with ``GET /markets?condition_ids=...``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import attrs
import httpx
import trio

from protocols.polymarket import (
    MalformedFrame,
    MarketInfo,
    MarketResolved,
    NewMarket,
    PageStats,
    parse_events_page,
    parse_markets_page,
)
from supervision import ActorContext, deliver

from ._http import HttpStats, RetryPolicy, UpstreamError, get_with_retry
from .db_writer import StoreMarket
from .directory import MarketDirectory, Resolution

if TYPE_CHECKING:
    from .clob import ClobShards
    from .recorder import Recorder


@attrs.frozen
class LookupMarket:
    """Ask the catalog to fetch an unknown market (sent with ``send_nowait``; duplicates are cheap)."""

    condition_id: str


@attrs.frozen(eq=False)
class IngestGammaPage:
    """A recorded Gamma response to load instead of fetching (replay); ``done`` is set after."""

    request: str
    body: str
    done: trio.Event | None = None


CatalogMessage = LookupMarket | IngestGammaPage | NewMarket | MarketResolved


@attrs.frozen
class CatalogConfig:
    gamma_url: str
    refresh_interval: float = 300.0
    page_limit: int = 100
    max_pages: int = 200
    lookup_batch: int = 20
    lookup_interval: float = 1.0
    negative_cache_seconds: float = 600.0
    retry_after_failure: float = 30.0
    #: Replay: never call Gamma, only ingest what the replay hands over.
    offline: bool = False


HttpClientFactory = Callable[[str], httpx.AsyncClient]


def default_http_client(base_url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(20.0),
                             headers={"User-Agent": "polymarket-insights/0.1"}, follow_redirects=True)


def catalog_actor(
    config: CatalogConfig,
    directory: MarketDirectory,
    *,
    shards: ClobShards | None = None,
    recorder: Recorder | None = None,
    http_client: HttpClientFactory = default_http_client,
    wall_clock: Callable[[], float] = time.time,
    rng: random.Random | None = None,
    watch: Callable[[MarketInfo], bool] | None = None,
    store: trio.MemorySendChannel[Any] | None = None,
) -> Callable[..., Any]:
    """The catalog actor body.

    ``watch`` decides which markets' tokens the CLOB shards subscribe to (the service passes
    "not excluded as crypto or sports": their ticks would only be dropped downstream).
    Every market loaded is also sent to ``store`` (the DB writer) as ``StoreMarket``.

    Cancellation: safe at any point; the directory keeps what was loaded.
    Errors: an unreachable or failing Gamma is logged and retried (the directory keeps its
    last good contents); malformed pages are counted and skipped. It only crashes on bugs.
    """
    stats = HttpStats()
    page_stats = PageStats()
    chooser = rng if rng is not None else random.Random()
    looked_up: dict[str, float] = {}

    def publish_tokens(ctx: ActorContext) -> None:
        if shards is not None:
            overflow_before = len(shards.overflow)
            added, removed = shards.update(directory.tradable_tokens(watch))
            if added or removed:
                ctx.log.info("CLOB tokens: +{a} -{r} (watching {n})", a=added, r=removed, n=shards.total())
            if len(shards.overflow) > overflow_before:
                ctx.log.warning("CLOB: {n} tokens exceed CLOB_MAX_CONNECTIONS x CLOB_TOKENS_PER_CONNECTION "
                                "and are not watched", n=len(shards.overflow))

    async def persist(markets: list[MarketInfo]) -> None:
        if store is not None:
            for market in markets:
                await deliver(store, StoreMarket(market))

    async def record(request: str, response: httpx.Response) -> None:
        if recorder is not None:
            await recorder.response("gamma", request, response.status_code, response.text)

    async def refresh(ctx: ActorContext, client: httpx.AsyncClient) -> bool:
        seen: set[str] = set()
        pages = 0
        for page in range(config.max_pages):
            params = {"active": "true", "closed": "false", "limit": config.page_limit,
                      "offset": page * config.page_limit, "order": "volume24hr", "ascending": "false"}
            try:
                response = await get_with_retry(client, "/events", params, stats=stats, rng=chooser,
                                                what="gamma /events")
            except UpstreamError as exc:
                if page > 0 and exc.status in (400, 422):
                    # Gamma caps offset paging; what we have is the most active part of the list
                    ctx.log.warning("catalog: Gamma refused page {p} ({err}); using the first {n} pages",
                                    p=page, err=str(exc), n=page)
                    break
                ctx.log.warning("catalog refresh stopped at page {p}: {err}", p=page, err=str(exc))
                return False
            await record("/events?" + urlencode(params), response)
            try:
                markets = parse_events_page(response.content, stats=page_stats)
            except MalformedFrame as exc:
                ctx.log.warning("catalog: malformed Gamma /events page {p} ({r}); refresh stopped", p=page,
                                r=exc.reason)
                return False
            pages += 1
            if not markets and _is_empty_page(response.content):
                break
            directory.upsert(markets)
            await persist(markets)
            seen.update(m.condition_id for m in markets)
            publish_tokens(ctx)
        retired = directory.retire_missing(seen)
        directory.refreshed_at = wall_clock()
        directory.refreshes_total += 1
        ctx.log.info("catalog refreshed: {n} active markets in {p} pages ({r} retired, {s} records skipped)",
                     n=len(seen), p=pages, r=retired, s=page_stats.skipped)
        publish_tokens(ctx)
        return True

    async def lookup(ctx: ActorContext, client: httpx.AsyncClient, ids: list[str]) -> None:
        directory.lookups_total += len(ids)
        params = [("condition_ids", cid) for cid in ids]
        try:
            response = await get_with_retry(client, "/markets", params, stats=stats, rng=chooser,
                                            what="gamma /markets", policy=RetryPolicy(attempts=3))
            await record("/markets?" + urlencode(params), response)
            markets = parse_markets_page(response.content, stats=page_stats)
        except (UpstreamError, MalformedFrame) as exc:
            ctx.log.warning("catalog lookup of {n} markets failed: {err}", n=len(ids), err=str(exc))
            return
        found = {m.condition_id for m in markets}
        directory.lookup_misses_total += len(set(ids) - found)
        if markets:
            directory.upsert(markets)
            await persist(markets)
            publish_tokens(ctx)
            ctx.log.info("catalog: looked up {n} new markets", n=len(markets))

    def on_new_market(event: NewMarket) -> None:
        existing = directory.get(event.condition_id)
        if existing is not None:
            return
        directory.upsert([MarketInfo(
            condition_id=event.condition_id, question=event.question, slug=event.slug,
            event_slug=event.event_slug, event_title="", description=event.description, category="", tags=(),
            end_date=None, outcomes=event.outcomes, token_ids=event.asset_ids, volume_24h=0.0, active=True,
            closed=False, outcome_prices=())])

    async def run(ctx: ActorContext, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        assert ctx.inbox is not None
        pending: dict[str, None] = {}
        lookup_wanted = trio.Event()
        async with http_client(config.gamma_url) as client, trio.open_nursery() as nursery:
            task_status.started()

            async def refresher() -> None:
                while True:
                    ok = await refresh(ctx, client)
                    await trio.sleep(config.refresh_interval if ok else config.retry_after_failure)

            async def looker() -> None:
                nonlocal lookup_wanted
                while True:
                    await lookup_wanted.wait()
                    lookup_wanted = trio.Event()
                    while pending:
                        batch = list(pending)[: config.lookup_batch]
                        for cid in batch:
                            del pending[cid]
                        await lookup(ctx, client, batch)
                        await trio.sleep(config.lookup_interval)

            if not config.offline:
                nursery.start_soon(refresher)
                nursery.start_soon(looker)
            async for message in ctx.inbox:
                if isinstance(message, LookupMarket):
                    cid = message.condition_id
                    now = trio.current_time()
                    if config.offline or cid in directory.markets or cid in pending:
                        continue
                    if now - looked_up.get(cid, -1e18) < config.negative_cache_seconds:
                        continue
                    looked_up[cid] = now
                    pending[cid] = None
                    lookup_wanted.set()
                elif isinstance(message, IngestGammaPage):
                    try:
                        if message.request.startswith("/markets"):
                            markets = parse_markets_page(message.body, stats=page_stats)
                        else:
                            markets = parse_events_page(message.body, stats=page_stats)
                    except MalformedFrame as exc:
                        ctx.log.warning("replayed Gamma page {req} is malformed ({r})", req=message.request,
                                        r=exc.reason)
                        markets = []
                    directory.upsert(markets)
                    directory.refreshed_at = wall_clock()
                    await persist(markets)
                    publish_tokens(ctx)
                    if message.done is not None:
                        message.done.set()
                elif isinstance(message, NewMarket):
                    on_new_market(message)
                    publish_tokens(ctx)
                    if not config.offline:
                        pending[message.condition_id] = None  # fetch its tags and category too
                        lookup_wanted.set()
                elif isinstance(message, MarketResolved):
                    directory.resolve(Resolution(message.condition_id, message.winning_asset_id,
                                                 message.winning_outcome, message.timestamp))
                    publish_tokens(ctx)
                    ctx.log.info("market {cid} resolved: {o}", cid=message.condition_id, o=message.winning_outcome)
            nursery.cancel_scope.cancel()

    run.stats = stats  # type: ignore[attr-defined]
    return run


def _is_empty_page(body: bytes) -> bool:
    stripped = body.strip()
    return stripped in (b"[]", b"") or stripped.startswith(b'{"events":[]')
