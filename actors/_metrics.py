"""Prometheus metrics: read at scrape time from the counters the actors already keep.

One collector turns the service's shared state (feed health, filter, hub, storage, AI and
supervision registry) into ``polymarket_insights_*`` metric families when ``/metrics`` is
scraped, so no actor carries metrics code and nothing can drift between ``/status`` and
``/metrics``.  Label sets are bounded: feeds, reasons, message types, actors of the fixed tree
(client sessions are summed into one ``sessions`` row), configured models — never markets or
wallets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric

from supervision import ActorState

from ._status import SESSIONS_PREFIX, bounded_structures, readiness, tree_actors

if TYPE_CHECKING:
    from ._service import Service

PREFIX = "polymarket_insights"


def _counter(name: str, doc: str, value: float | None = None, labels: Iterable[str] = ()) -> CounterMetricFamily:
    return CounterMetricFamily(f"{PREFIX}_{name}", doc, value=value, labels=list(labels) or None)


def _gauge(name: str, doc: str, value: float | None = None, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}_{name}", doc, value=value, labels=list(labels) or None)


def _by(name: str, doc: str, label: str, values: Mapping[str, float], *, gauge: bool = False) -> Metric:
    family = (_gauge if gauge else _counter)(name, doc, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([str(key)], value)
    return family


class ServiceCollector:
    """A ``prometheus_client`` custom collector over one :class:`Service` (see module doc)."""

    def __init__(self, service: Callable[[], Service], wall_clock: Callable[[], float]) -> None:
        self._service_now = service
        self.wall_clock = wall_clock

    @property
    def service(self) -> Service:
        return self._service_now()

    def collect(self) -> Iterator[Metric]:
        yield from self._service()
        yield from self._feeds()
        yield from self._pipeline()
        yield from self._frontend()
        yield from self._storage()
        yield from self._ai()
        yield from self._alerts()
        yield from self._memory()

    def _service(self) -> Iterator[Metric]:
        from config import __version__

        svc = self.service
        info = InfoMetricFamily(f"{PREFIX}_build", "Version of the running service")
        info.add_metric([], {"version": __version__, "mode": "replay" if svc.replay_state else "live"})
        yield info
        yield _gauge("ready", "1 when /readyz answers 200", 0.0 if readiness(svc) else 1.0)
        restarts = _counter("actor_restarts", "Restarts of each actor since the service started", labels=["actor"])
        crashes = _counter("actor_crashes", "Abnormal exits of each actor", labels=["actor"])
        up = _gauge("actor_up", "1 while the actor runs", labels=["actor"])
        for actor in tree_actors(svc):
            path = actor.path
            restarts.add_metric([path], actor.restarts)
            crashes.add_metric([path], actor.crashes)
            up.add_metric([path], 1.0 if actor.state is ActorState.RUNNING else 0.0)
        session_crashes = sum(a.crashes for a in svc.registry if a.path.startswith(SESSIONS_PREFIX))
        crashes.add_metric([SESSIONS_PREFIX + "*"], session_crashes)
        yield from (restarts, crashes, up)
        dead = _counter("inbox_dead_letters", "Messages dropped as poison after repeated crashes", labels=["actor"])
        depth = _gauge("inbox_depth", "Messages queued or in flight in an actor's inbox", labels=["actor"])
        for name, inbox in sorted(svc.inboxes.items()):
            stats = inbox.statistics()
            dead.add_metric([name], stats.dead_letters_total)
            depth.add_metric([name], stats.queued + stats.in_flight)
        yield from (dead, depth)

    def _feeds(self) -> Iterator[Metric]:
        svc, now = self.service, self.wall_clock()
        feeds = [svc.rtds_health, *svc.clob_health]
        families = {
            "frames": _counter("feed_frames", "Upstream frames received", labels=["feed"]),
            "malformed": _counter("feed_malformed_frames", "Upstream frames or items dropped as malformed",
                                  labels=["feed"]),
            "connects": _counter("feed_connects", "Successful connections", labels=["feed"]),
            "disconnects": _counter("feed_disconnects", "Connections lost", labels=["feed"]),
            "stalls": _counter("feed_stalls", "Connections dropped for silence", labels=["feed"]),
            "gaps": _counter("feed_gaps", "Outages whose trades were backfilled", labels=["feed"]),
            "backfilled": _counter("feed_trades_backfilled", "Trades recovered by backfill", labels=["feed"]),
            "connected": _gauge("feed_connected", "1 while the feed is connected", labels=["feed"]),
            "age": _gauge("feed_last_frame_age_seconds", "Seconds since the last frame", labels=["feed"]),
        }
        for h in feeds:
            families["frames"].add_metric([h.name], h.frames_total)
            families["malformed"].add_metric([h.name], h.malformed_total)
            families["connects"].add_metric([h.name], h.connects_total)
            families["disconnects"].add_metric([h.name], h.disconnects_total)
            families["stalls"].add_metric([h.name], h.stalls_total)
            families["gaps"].add_metric([h.name], h.gaps_total)
            families["backfilled"].add_metric([h.name], h.trades_backfilled_total)
            families["connected"].add_metric([h.name], 1.0 if h.connected else 0.0)
            if h.last_frame_at is not None:
                families["age"].add_metric([h.name], max(0.0, now - h.last_frame_at))
        yield from families.values()
        if svc.replay_state is not None:
            yield _counter("replay_frames", "Frames replayed from the recording", svc.replay_state.frames_total)

    def _pipeline(self) -> Iterator[Metric]:
        svc = self.service
        merge, kept, whales = svc.merge_stats, svc.filter_stats, svc.whale_stats
        yield _counter("trades_unique", "Unique trades after merging the feeds", merge.emitted_total)
        yield _counter("trades_duplicate", "Trades seen again on another feed or by backfill", merge.duplicates_total)
        yield _counter("trades_kept", "Trades kept by the market filter", kept.kept_total)
        yield _by("trades_dropped", "Trades dropped by the market filter, by reason", "reason", kept.dropped)
        yield _counter("whales", "Whale trades broadcast", whales.whales_total)
        yield _counter("whales_near_settlement", "Whale trades held back for a price near 0 or 1",
                       whales.near_settlement_total)
        yield _gauge("markets_known", "Markets in the catalog", len(svc.directory))

    def _frontend(self) -> Iterator[Metric]:
        svc = self.service
        hub, stats, frontend = svc.hub, svc.hub.stats, svc.frontend_stats
        messages_sent, frames_sent = hub.sent_totals()
        yield _by("broadcasts", "Broadcasts numbered by the hub, by type", "type", stats.by_type)
        yield _counter("broadcast_duplicates", "Redelivered broadcasts dropped by key", stats.duplicates_total)
        yield _gauge("clients", "Connected WebSocket clients", len(hub.clients))
        yield _counter("client_connections", "WebSocket connections accepted", frontend.connections_total)
        yield _by("client_rejections", "WebSocket handshakes refused, by reason", "reason", frontend.rejected_total)
        yield _by("client_disconnects", "WebSocket connections ended, by reason", "reason", frontend.disconnects_total)
        yield _by("client_errors", "Bad client messages, by error code", "code", frontend.client_errors_total)
        yield _counter("client_lagged", "Times a client fell behind and started missing broadcasts",
                       stats.lagged_clients_total)
        yield _counter("client_kicked", "Clients disconnected for lagging too long", stats.kicked_clients_total)
        yield _counter("messages_missed", "Broadcasts lagging clients missed", stats.missed_total)
        yield _counter("messages_sent", "Broadcasts handed to client sockets", messages_sent)
        yield _counter("frames_sent", "WebSocket frames handed to client sockets", frames_sent)
        yield _gauge("hub_seq", "The last broadcast sequence number", hub.seq)
        yield _gauge("hub_ring_messages", "Broadcasts held for resume", len(hub.ring))

    def _storage(self) -> Iterator[Metric]:
        db, now = self.service.db_stats, self.wall_clock()
        yield _gauge("db_up", "1 while the database is writable", 1.0 if db.state == "up" else 0.0)
        yield _counter("db_rows_written", "Rows committed to the database", db.rows_written)
        yield _counter("db_batches", "Batches committed", db.batches_written)
        yield _counter("db_retries", "Failed connection or write attempts (each retried)", db.retries)
        yield _counter("db_outages", "Times the database went away", db.outages)
        yield _counter("db_rows_rejected", "Rows the database refused for their content", db.rows_rejected)
        yield _counter("db_rows_journaled", "Rows appended to the local journal during outages", db.rows_journaled)
        yield _gauge("db_backlog_rows", "Rows not yet in the database (memory and journal)",
                     db.rows_buffered + db.journal_rows)
        yield _gauge("db_journal_bytes", "Size of the outage journal file", db.journal_bytes)
        yield _gauge("db_oldest_unwritten_age_seconds", "Age of the oldest row not yet written",
                     db.oldest_unwritten_age(now))

    def _memory(self) -> Iterator[Metric]:
        entries = _gauge("memory_bounded_entries", "Entries held by a structure that fills up to a limit",
                         labels=["structure"])
        limits = _gauge("memory_bounded_limit_entries", "The limit of that structure", labels=["structure"])
        for name, held, limit in bounded_structures(self.service):
            entries.add_metric([name], held)
            limits.add_metric([name], limit)
        yield from (entries, limits)

    def _ai(self) -> Iterator[Metric]:
        ai = self.service.ai_stats
        yield _gauge("ai_enabled", "1 when the AI part runs (OPENROUTER_API_KEY set)", 1.0 if ai.enabled else 0.0)
        if not ai.enabled:
            return
        calls = _counter("llm_calls", "Requests to the LLM server (each retry counts)", labels=["model"])
        tokens = _counter("llm_tokens", "Tokens used, by model and kind", labels=["model", "kind"])
        cost = _counter("llm_cost_usd", "Spend in USD, by model", labels=["model"])
        answers = _counter("llm_forecasts", "Forecasts a model gave", labels=["model"])
        failures = _counter("llm_forecast_failures", "Failed forecasts, by model and reason",
                            labels=["model", "reason"])
        for m in ai.models.values():
            calls.add_metric([m.model], m.calls)
            tokens.add_metric([m.model, "prompt"], m.prompt_tokens)
            tokens.add_metric([m.model, "completion"], m.completion_tokens)
            cost.add_metric([m.model], m.cost_usd)
            answers.add_metric([m.model], m.answers)
            for reason, n in sorted(m.failures.items()):
                failures.add_metric([m.model, reason], n)
        yield from (calls, tokens, cost, answers, failures)
        yield _by("llm_call_failures", "Failed LLM requests (including retried ones), by reason", "reason",
                  ai.call_failures)
        yield _gauge("ai_spend_today_usd", "Spend today (UTC) against the daily budget", ai.cost_today_usd)
        yield _gauge("ai_budget_usd", "The daily budget (AI_DAILY_BUDGET_USD)", ai.budget_usd)
        yield _counter("ai_skipped_for_budget", "Analyses not started because the budget was spent",
                       ai.skipped_for_budget)
        yield _by("ai_analyses", "Analyses started, by trigger", "trigger", ai.rounds_by_trigger)
        yield _counter("ai_predictions", "Swarm forecasts stored and broadcast", ai.rounds_published)
        yield _counter("ai_no_quorum", "Analyses that ended without a quorum", ai.rounds_no_quorum)


    def _alerts(self) -> Iterator[Metric]:
        part = self.service.alerts
        if part is None:
            return
        names = {
            "sent": ("alerts_sent", "Alerts delivered one by one"),
            "digests": ("alert_digests_sent", "Digest messages delivered"),
            "folded": ("alerts_folded", "Alerts folded into digests (rate cap)"),
            "retried": ("alert_retries", "Delivery attempts retried (5xx, timeouts, 429)"),
            "undeliverable": ("alerts_undeliverable", "Alerts given up after their tries or refused"),
            "overflow": ("alerts_overflow", "Alerts recorded undeliverable because the outlet's queue was full"),
            "already_delivered": ("alerts_already_delivered", "Alerts not sent again (in the delivery record)"),
            "pauses": ("alert_outlet_pauses", "Pauses after 401/403/404"),
        }
        families = {field: _counter(name, doc, labels=["outlet"]) for field, (name, doc) in names.items()}
        skipped = _counter("alerts_skipped", "Broadcasts an outlet's rules left out, by reason",
                           labels=["outlet", "reason"])
        queued = _gauge("alert_queue", "Alerts waiting for an outlet (queued or folded)", labels=["outlet"])
        paused = _gauge("alert_outlet_paused", "1 while an outlet is paused", labels=["outlet"])
        for state in part.states:
            stats = state.stats
            for field, family in families.items():
                family.add_metric([stats.name], getattr(stats, field))
            for reason, n in sorted(stats.skipped.items()):
                skipped.add_metric([stats.name, reason], n)
            queued.add_metric([stats.name], len(state.feed.items) + len(state.folded))
            paused.add_metric([stats.name], 1.0 if stats.paused else 0.0)
        yield from (*families.values(), skipped, queued, paused)


def metrics_registry(service: Callable[[], Service], wall_clock: Callable[[], float]) -> CollectorRegistry:
    """A registry holding the service collector and process metrics (``polymarket_insights_process_*``).

    ``service`` returns the service to read (it is built after its HTTP actor's spec)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServiceCollector(service, wall_clock))  # type: ignore[arg-type]
    ProcessCollector(namespace=PREFIX, registry=registry)
    return registry
