"""Assembles the service's supervision tree from the settings.

Everything actors share (inboxes, the market directory, feed health records) is built here
once per service, so it outlives any actor's restart; each actor gets only what it needs.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import trio
from loguru import logger

from config import Settings, __version__
from protocols.polymarket import MarketInfo, PriceTick, Trade
from supervision import (
    Backoff,
    ChildSpec,
    DynamicSupervisor,
    Inbox,
    Registry,
    Strategy,
    SupervisorSpec,
    chaos_monkey,
    supervisor_child,
)

from ._ws_client import Connector, open_ws
from .ai import AiPart, AiStats, build_ai, history_loader
from .alerts import AlertsPart, OutletConfig, build_alerts, delivered_loader, outlets_from_settings
from .ai import describe as describe_ai
from .backfill import BackfillConfig, BackfillState, backfill_actor
from .catalog import CatalogConfig, HttpClientFactory, catalog_actor, default_http_client
from .clob import ClobIngest, ClobShards, ClobSinks, clob_shard_actor
from .db_writer import DbStats, db_writer_actor
from .directory import MarketDirectory
from .feed_health import FeedHealth
from .http_server import HttpConfig, HttpSources, HttpStats, http_actor
from .hub import HubState, hub_actor
from ._metrics import metrics_registry
from ._status import readiness, status_document
from .market_filter import FilterStats, market_filter_actor
from .market_rules import MarketRules, load_custom_rule
from .market_state import MarketStateStore, market_state_actor
from .memory import memory_trimmer
from .whale_watcher import WhaleStats, whale_watcher_actor
from .ws_server import FrontendConfig, FrontendStats, ws_server_actor
from .recorder import Recorder
from .replay import ReplayState, replay_actor
from .rtds import GapRequest, RtdsIngest, rtds_actor
from .status_log import status_logger
from .trade_merge import MergeStats, TradeDeduper, trade_merge_actor


@attrs.frozen
class ServiceOptions:
    """Command-line choices that shape the tree (beyond the settings)."""

    #: Chaos mode: kill a random actor this many times a minute (None: off).
    chaos_per_minute: float | None = None
    #: Seed for chaos and jitter, for reproducible runs (None: random).
    seed: int | None = None
    #: Record every raw upstream frame to this file.
    record: Path | None = None
    #: Replay this recording instead of the live feeds.
    replay: Path | None = None
    #: Replay speed: 1 = as recorded, 0 = as fast as possible.
    speed: float = 1.0
    #: Stop the service when the replay is done.
    exit_when_done: bool = False


@attrs.define
class Ports:
    """The service's I/O, injectable for tests."""

    connect: Connector = open_ws
    http_client: HttpClientFactory = default_http_client
    wall_clock: Callable[[], float] = time.time


@attrs.define
class Service:
    """The root of the tree and what its actors share."""

    settings: Settings
    options: ServiceOptions
    spec: SupervisorSpec
    children: list[ChildSpec]
    rng: random.Random
    registry: Registry
    directory: MarketDirectory
    rtds_health: FeedHealth
    clob_health: list[FeedHealth]
    merge_stats: MergeStats
    backfill_state: BackfillState
    replay_state: ReplayState | None
    recorder: Recorder | None
    hub: HubState
    frontend_stats: FrontendStats
    sessions: DynamicSupervisor
    filter_stats: FilterStats
    whale_stats: WhaleStats
    market_state: MarketStateStore
    db_stats: DbStats
    #: Inboxes by actor name (for status and tests).
    inboxes: dict[str, Inbox[Any]]
    #: The trade merger's memory of trades seen, and the RTDS parser's of transactions (for status).
    deduper: TradeDeduper
    rtds_ingest: RtdsIngest
    #: The AI part's spend, budget, pauses and counters (``enabled`` is False when it is off).
    ai_stats: AiStats = attrs.field(factory=AiStats)
    #: The AI subtree's shared state (None when the AI part is off).
    ai: AiPart | None = None
    #: The HTTP side's bound port and request counters.
    http_stats: HttpStats = attrs.field(factory=HttpStats)
    #: Which tokens each CLOB connection watches (None in replay or with CLOB off).
    clob_shards: ClobShards | None = None
    #: The alert outlets (None when none is configured).
    alerts: AlertsPart | None = None


def build_service(
    settings: Settings,
    options: ServiceOptions,
    *,
    ports: Ports | None = None,
    trades_sink: trio.MemorySendChannel[Trade] | None = None,
    ticks_sink: trio.MemorySendChannel[PriceTick] | None = None,
    outlets: list[OutletConfig] | None = None,
) -> Service:
    """The root supervisor's spec and children, in start order.

    Start order puts consumers before producers, so shutdown (reverse order) stops the
    producers first and lets consumers drain their inboxes.  ``trades_sink``/``ticks_sink``
    replace the pipeline as receivers of the unique trade stream and the price ticks (tests of
    the ingestion side alone).
    """
    ports = ports or Ports()
    rng = random.Random(options.seed)
    registry = Registry(wall_clock=ports.wall_clock)
    directory = MarketDirectory()
    now = ports.wall_clock()
    inboxes: dict[str, Inbox[Any]] = {
        "catalog": Inbox("catalog", 1024),
        "trade_merge": Inbox("trade_merge", 1024),
        "backfill": Inbox("backfill", 64),
        "market_filter": Inbox("market_filter", 1024),
        "whale_watcher": Inbox("whale_watcher", 1024),
        "market_state": Inbox("market_state", 4096),
        "hub": Inbox("hub", 4096),
        "db_writer": Inbox("db_writer", 4096),
    }
    recorder: Recorder | None = None
    if options.record is not None:
        inboxes["recorder"] = Inbox("recorder", 4096)
        recorder = Recorder(options.record, inboxes["recorder"], wall_clock=ports.wall_clock)

    pipeline_owned = trades_sink is None
    if pipeline_owned:
        trades_sink = inboxes["market_filter"].send_channel
        ticks_sink = inboxes["market_state"].send_channel
    hub = HubState(settings.ws_ring_size, lag_limit=settings.ws_lag_limit)
    frontend_stats = FrontendStats()
    sessions = DynamicSupervisor(max_children=settings.ws_max_connections + 64)
    filter_stats, whale_stats, market_state = FilterStats(), WhaleStats(), MarketStateStore()
    db_stats = DbStats()
    store_in = inboxes["db_writer"].send_channel
    rtds_health = FeedHealth("rtds")
    merge_stats = MergeStats()
    deduper = TradeDeduper()
    backfill_state = BackfillState()
    merge_in = inboxes["trade_merge"].send_channel
    catalog_in = inboxes["catalog"].send_channel
    rtds_ingest = RtdsIngest(merge_in, rtds_health)
    sinks = ClobSinks(ticks=ticks_sink, trades=merge_in, catalog=catalog_in)
    per_shard = settings.clob_tokens_per_connection
    shards = ClobShards(max(1, settings.clob_max_connections), per_shard) if settings.clob_max_connections else None

    ai_stats = AiStats()
    # The AI part: only with a key, and only when this service runs the pipeline (it needs the
    # whale watcher, market state and the DB writer).  Its inboxes exist now (the whale watcher
    # sends to the scheduler); its subtree is placed after the pipeline below.
    ai_inboxes: dict[str, Inbox[Any]] = {}
    ai_hints = None
    if not settings.openrouter_api_key:
        logger.bind(actor="ai").info("AI analysis off: OPENROUTER_API_KEY is not set")
    elif pipeline_owned:
        ai_inboxes["ai_scheduler"] = Inbox("ai_scheduler", 1024)
        ai_hints = ai_inboxes["ai_scheduler"].send_channel
        logger.bind(actor="ai").info(describe_ai(settings))

    # The root supervises subtrees only (and the chaos monkey): a worker that keeps failing
    # escalates through its subtree, whose tolerance is set for its kind of work.
    children: list[ChildSpec] = []
    ops: list[ChildSpec] = []
    if settings.status_log_interval > 0:
        ops.append(ChildSpec(id="status_log", run=status_logger(settings.status_log_interval), shutdown=0,
                             backoff=Backoff(min=1, max=30)))
    if settings.memory_trim_interval > 0:
        ops.append(ChildSpec(id="memory", run=memory_trimmer(settings.memory_trim_interval), shutdown=0,
                             backoff=Backoff(min=1, max=30)))
    if recorder is not None:
        ops.append(ChildSpec(id="recorder", run=recorder.actor(), inbox=inboxes["recorder"], shutdown=10))
    http_stats = HttpStats()
    started, started_at = time.monotonic(), ports.wall_clock()

    def status() -> dict[str, Any]:
        return status_document(service, ports.wall_clock(), started_at, time.monotonic() - started)

    ops.append(ChildSpec(id="http", backoff=Backoff(min=0.5, max=10), shutdown=2, run=http_actor(
        HttpConfig(host=settings.http_host, port=settings.http_port, auth_token=settings.ws_auth_token),
        HttpSources(status=status, not_ready=lambda: readiness(service),
                    metrics=metrics_registry(lambda: service, ports.wall_clock)),
        http_stats)))
    if ops:
        children.append(supervisor_child("ops", SupervisorSpec(Strategy.ONE_FOR_ONE, intensity=30, period=60), ops))

    frontend = [
        ChildSpec(id="hub", inbox=inboxes["hub"], run=hub_actor(hub), backoff=Backoff(min=0.05, max=5)),
        ChildSpec(id="sessions", run=sessions.run, shutdown=5, backoff=Backoff(min=0.1, max=5)),
        ChildSpec(id="ws_server", backoff=Backoff(min=0.5, max=10), shutdown=1, run=ws_server_actor(
            FrontendConfig(host=settings.ws_server_host, port=settings.ws_server_port, version=__version__,
                           auth_token=settings.ws_auth_token,
                           allowed_origins=frozenset(settings.ws_allowed_origins),
                           max_connections=settings.ws_max_connections,
                           max_message_bytes=settings.ws_max_message_bytes, queue_size=settings.ws_queue_size,
                           heartbeat_interval=settings.ws_heartbeat_interval, idle_timeout=settings.ws_idle_timeout),
            hub, sessions, frontend_stats)),
    ]
    # Pipeline and frontend actors restart in milliseconds and lose nothing (their inboxes and
    # state outlive them), so their supervisors tolerate bursts: 30 restarts in 30 s.
    children.append(supervisor_child("frontend", SupervisorSpec(Strategy.ONE_FOR_ONE, intensity=30, period=30),
                                     frontend))
    custom_rule = load_custom_rule(settings.market_filter_hook) if settings.market_filter_hook else None
    rules = MarketRules.from_settings(settings, custom=custom_rule)
    hub_in = inboxes["hub"].send_channel
    pipeline: list[ChildSpec] = []
    if pipeline_owned:
        flush_timeout = 5.0
        pipeline = [
            # first: it stops last, after everything that feeds it has drained into it
            ChildSpec(id="db_writer", inbox=inboxes["db_writer"], shutdown=flush_timeout + 10,
                      backoff=Backoff(min=0.05, max=5),
                      run=db_writer_actor(settings.database_url, db_stats, batch_rows=settings.db_batch_rows,
                                          batch_seconds=settings.db_batch_seconds,
                                          memory_limit_rows=settings.db_memory_limit_rows,
                                          journal_path=Path(settings.db_journal_path), flush_timeout=flush_timeout,
                                          wall_clock=ports.wall_clock, rng=random.Random(rng.random()))),
            ChildSpec(id="market_state", inbox=inboxes["market_state"], backoff=Backoff(min=0.05, max=5),
                      run=market_state_actor(directory, market_state, hub_in,
                                             interval=settings.market_update_interval, wall_clock=ports.wall_clock,
                                             persist=store_in)),
            ChildSpec(id="whale_watcher", inbox=inboxes["whale_watcher"], backoff=Backoff(min=0.05, max=5),
                      run=whale_watcher_actor(settings.whale_trade_threshold, settings.ignore_price_threshold,
                                              directory, whale_stats, broadcast=hub_in, store=store_in,
                                              analysis=ai_hints)),
            ChildSpec(id="market_filter", inbox=inboxes["market_filter"], backoff=Backoff(min=0.05, max=5),
                      run=market_filter_actor(settings.trade_notional_threshold, rules, directory, filter_stats,
                                              kept=[inboxes["whale_watcher"].send_channel, store_in],
                                              every_trade=[inboxes["market_state"].send_channel])),
        ]
    replay_state: ReplayState | None = None
    catalog_config = CatalogConfig(gamma_url=settings.gamma_api_url, refresh_interval=settings.catalog_refresh_seconds,
                                   offline=options.replay is not None)
    def watch(market: MarketInfo) -> bool:
        return rules.exclusion(title=market.question, slug=market.slug, event_slug=market.event_slug,
                               category=market.category, tags=market.tags,
                               condition_id=market.condition_id) is None

    catalog = ChildSpec(
        id="catalog", inbox=inboxes["catalog"], backoff=Backoff(min=1, max=60),
        run=catalog_actor(catalog_config, directory, shards=None if options.replay else shards, recorder=recorder,
                          http_client=ports.http_client, wall_clock=ports.wall_clock,
                          rng=random.Random(rng.random()), watch=watch,
                          store=store_in if pipeline_owned else None))
    pipeline.append(ChildSpec(
        id="trade_merge", inbox=inboxes["trade_merge"], backoff=Backoff(min=0.05, max=5),
        run=trade_merge_actor(trades_sink, deduper, merge_stats, rtds_health=rtds_health, directory=directory,
                              catalog=catalog_in, wall_clock=ports.wall_clock)))
    children.append(supervisor_child("pipeline", SupervisorSpec(Strategy.ONE_FOR_ONE, intensity=30, period=30),
                                     pipeline))
    ai_position = len(children)  # after the pipeline (it feeds the DB writer), before the feeds

    feed_backoff = Backoff(min=1.0, max=60.0, factor=2.0, jitter=0.2)
    feeds: list[ChildSpec] = [catalog]
    clob_health: list[FeedHealth] = []
    if options.replay is not None:
        replay_state = ReplayState(path=options.replay, speed=options.speed)
        replay_clob = ClobIngest(sinks, FeedHealth("clob"))
        clob_health.append(replay_clob.health)
        feeds.append(ChildSpec(
            id="replay", backoff=Backoff(min=0.1, max=5),
            run=replay_actor(replay_state, rtds_ingest, replay_clob, catalog_in, merge_in,
                             wall_clock=ports.wall_clock)))
    else:
        feeds.append(ChildSpec(
            id="backfill", inbox=inboxes["backfill"], backoff=Backoff(min=2, max=120),
            run=backfill_actor(BackfillConfig(data_api_url=settings.data_api_url,
                                              min_notional=settings.trade_notional_threshold,
                                              startup_lookback=settings.backfill_lookback_minutes * 60,
                                              settle=settings.backfill_settle_seconds),
                               merge_in, backfill_state, deduper=deduper, health=rtds_health, recorder=recorder,
                               http_client=ports.http_client, wall_clock=ports.wall_clock,
                               rng=random.Random(rng.random()))))
        feeds.append(ChildSpec(
            id="rtds", backoff=feed_backoff, shutdown=1,
            run=rtds_actor(settings.polymarket_rtds_url, rtds_ingest, gaps=inboxes["backfill"].send_channel,
                           silence_timeout=settings.rtds_silence_timeout, connect=ports.connect,
                           recorder=recorder, wall_clock=ports.wall_clock, watch_since=now)))
        if shards is not None:
            for index in range(len(shards.desired)):
                ingest = ClobIngest(sinks, FeedHealth(f"clob-{index}"))
                clob_health.append(ingest.health)
                feeds.append(ChildSpec(
                    id=f"clob-{index}", backoff=feed_backoff, shutdown=1,
                    run=clob_shard_actor(index, settings.polymarket_ws_url, shards, ingest,
                                         silence_timeout=settings.clob_silence_timeout, connect=ports.connect,
                                         recorder=recorder, wall_clock=ports.wall_clock)))
    # Feeds: a connection failing forever must not take the service down: with backoff
    # doubling from 1 s to 60 s a dead upstream costs about 6 restarts in its first minute and
    # 1 a minute after; 30 a minute leaves room for several feeds failing at once (and chaos).
    children.append(supervisor_child("feeds", SupervisorSpec(Strategy.ONE_FOR_ONE, intensity=30, period=60), feeds,
                                     rng=random.Random(rng.random())))
    if options.chaos_per_minute:
        children.append(ChildSpec(
            id="chaos", run=chaos_monkey(options.chaos_per_minute, rng=random.Random(rng.random())), shutdown=0))
    ai: AiPart | None = None
    if ai_hints is not None:
        # (its random generator is drawn last, so enabling the AI changes no other seed)
        ai = build_ai(settings, ai_stats, directory=directory, market_state=market_state, wanted=watch,
                      broadcast=hub_in, store=store_in, http_client=ports.http_client, wall_clock=ports.wall_clock,
                      rng=random.Random(rng.random()), inboxes=ai_inboxes,
                      history=history_loader(settings.database_url, db_stats, settings.reanalysis_hours * 3600,
                                             wall_clock=ports.wall_clock))
        inboxes.update(ai.inboxes)
        children.insert(ai_position, ai.child)
    if outlets is None:
        outlets = outlets_from_settings(settings)
    alerts: AlertsPart | None = None
    if outlets and pipeline_owned:
        # after the pipeline (its delivery records go to the DB writer, which must outlive it)
        alerts = build_alerts(outlets, hub, directory=directory, store=store_in,
                              load_delivered=delivered_loader(settings.database_url, db_stats, wall_clock=ports.wall_clock),
                              wall_clock=ports.wall_clock,
                              rng=random.Random(rng.random()), version=__version__)
        children.insert(ai_position + (1 if ai is not None else 0), alerts.child)
        logger.bind(actor="alerts").info("alerts to {n} outlet(s): {o}", n=len(outlets),
                                         o=", ".join(f"{o.name} ({o.describe()})" for o in outlets))
    # Root: tolerate a burst of 3 subtree restarts a minute; anything worse is a real outage.
    service = Service(
        settings=settings, options=options, spec=SupervisorSpec(intensity=3, period=60), children=children, rng=rng,
        registry=registry, directory=directory, rtds_health=rtds_health, clob_health=clob_health,
        merge_stats=merge_stats, backfill_state=backfill_state, replay_state=replay_state, recorder=recorder,
        hub=hub, frontend_stats=frontend_stats, sessions=sessions, filter_stats=filter_stats,
        whale_stats=whale_stats, market_state=market_state, db_stats=db_stats, inboxes=inboxes, deduper=deduper,
        rtds_ingest=rtds_ingest, ai_stats=ai_stats,
        ai=ai, http_stats=http_stats, clob_shards=shards if options.replay is None else None, alerts=alerts)
    return service


__all__ = ["GapRequest", "Ports", "Service", "ServiceOptions", "build_service"]
