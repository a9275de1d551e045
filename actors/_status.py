"""What the service knows about itself: the ``/status`` document and the ``/readyz`` verdict.

Pure functions over the :class:`~actors._service.Service`'s shared state objects: nothing here
awaits or changes anything, so the HTTP actor can call them on every request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from supervision import ActorInfo, ActorState

from .memory import resident_memory

if TYPE_CHECKING:
    from ._service import Service

#: Actors under this supervisor are one per connected client: counted, not listed.
SESSIONS_PREFIX = "root/frontend/sessions/"


def tree_actors(service: Service) -> list[ActorInfo]:
    """Every actor of the fixed tree, by path (client sessions left out)."""
    return sorted((info for info in service.registry if not info.path.startswith(SESSIONS_PREFIX)),
                  key=lambda info: info.path)


def _actor(info: ActorInfo) -> dict[str, Any]:
    data = info.as_dict()
    inbox = data.pop("inbox", None)
    data["inbox_depth"] = None if inbox is None else inbox["queued"] + inbox["in_flight"]
    return data


def _feeds(service: Service, now: float) -> list[dict[str, Any]]:
    feeds = [service.rtds_health, *service.clob_health]
    out = []
    for health in feeds:
        data = health.as_dict(now)
        out.append({key: data.get(key) for key in (
            "name", "connected", "connected_since", "last_frame_age_s", "frames_total", "malformed_total",
            "connects_total", "disconnects_total", "stalls_total", "gaps_total", "trades_backfilled_total")})
    return out


def _replay(service: Service) -> dict[str, Any] | None:
    state = service.replay_state
    if state is None:
        return None
    percent = 100.0 * state.position_bytes / state.size_bytes if state.size_bytes else None
    return {"path": str(state.path), "speed": state.speed, "frames_total": state.frames_total,
            "percent": percent, "running": state.running, "finished": state.done.is_set()}


def _hub(service: Service) -> dict[str, Any]:
    hub = service.hub
    messages_sent, frames_sent = hub.sent_totals()
    stats = hub.stats
    frontend = service.frontend_stats
    return {
        "clients": len(hub.clients), "seq": hub.seq, "oldest_seq": hub.oldest_seq,
        "ring_span": len(hub.ring), "ring_size": hub.ring.maxlen,
        "broadcasts_total": stats.broadcasts_total, "broadcasts_by_type": dict(stats.by_type),
        "lagged_clients_total": stats.lagged_clients_total, "kicked_clients_total": stats.kicked_clients_total,
        "missed_total": stats.missed_total, "messages_sent_total": messages_sent, "frames_sent_total": frames_sent,
        "connections_total": frontend.connections_total, "rejected_total": dict(frontend.rejected_total),
        "disconnects_total": dict(frontend.disconnects_total),
        "client_errors_total": dict(frontend.client_errors_total),
    }


def _storage(service: Service, now: float) -> dict[str, Any]:
    db = service.db_stats
    return {
        "state": db.state, "database": db.database, "schema_version": db.schema_version,
        "rows_written_total": db.rows_written, "batches_total": db.batches_written, "retries_total": db.retries,
        "outages_total": db.outages, "down_since": db.down_since, "backlog_rows": db.rows_buffered + db.journal_rows,
        "buffered_rows": db.rows_buffered, "journal_rows": db.journal_rows, "journal_bytes": db.journal_bytes,
        "rows_rejected_total": db.rows_rejected, "oldest_unwritten_age_s": db.oldest_unwritten_age(now),
        "last_error": db.last_error,
    }


def bounded_structures(service: Service) -> list[tuple[str, int, int]]:
    """(name, entries, limit) of each structure the service keeps in memory that fills up to a
    limit and then stays there: where memory goes in a service that runs for weeks."""
    hub, deduper, rtds = service.hub, service.deduper, service.rtds_ingest
    return [
        ("hub.ring", len(hub.ring), hub.ring.maxlen or 0),
        ("hub.broadcast_keys", len(hub.broadcast_keys), hub.broadcast_keys.capacity),
        ("trade_merge.trade_ids", len(deduper), deduper.capacity),
        ("trade_merge.fuzzy_index", deduper.fuzzy_entries, 2 * deduper.capacity),
        ("rtds.transactions", len(rtds.transactions), rtds.transactions.capacity),
        ("db_writer.buffered_rows", service.db_stats.rows_buffered, service.settings.db_memory_limit_rows),
    ]


def _memory(service: Service) -> dict[str, Any]:
    resident, peak = resident_memory()
    return {"resident_bytes": resident, "peak_resident_bytes": peak,
            "bounded": {name: {"entries": entries, "limit": limit}
                        for name, entries, limit in bounded_structures(service)}}


def _pipeline(service: Service) -> dict[str, Any]:
    merge, kept, whales = service.merge_stats, service.filter_stats, service.whale_stats
    return {
        "trades_unique_total": merge.emitted_total, "trades_duplicate_total": merge.duplicates_total,
        "trades_received_total": kept.received_total, "trades_kept_total": kept.kept_total,
        "trades_dropped": dict(kept.dropped), "whales_total": whales.whales_total,
        "near_settlement_total": whales.near_settlement_total,
        "markets_known": len(service.directory),
    }


def _ai(service: Service) -> dict[str, Any]:
    ai = service.ai_stats
    if not ai.enabled:
        return {"enabled": False}
    return {
        "enabled": True, "calls_total": ai.calls_total, "failures_total": sum(ai.call_failures.values()),
        "call_failures": dict(ai.call_failures), "forecasts_ok_total": ai.forecasts_ok,
        "forecasts_failed": dict(ai.forecasts_failed), "prompt_tokens_total": ai.prompt_tokens_total,
        "completion_tokens_total": ai.completion_tokens_total, "spend_today_usd": ai.cost_today_usd,
        "spend_total_usd": ai.cost_total_usd, "budget_usd": ai.budget_usd, "day": ai.day,
        "skipped_for_budget_total": ai.skipped_for_budget, "analyses_started_total": ai.rounds_started,
        "predictions_total": ai.rounds_published, "no_quorum_total": ai.rounds_no_quorum,
        "models": [{"model": m.model, "calls": m.calls, "answers": m.answers, "failures": dict(m.failures),
                    "cost_usd": m.cost_usd, "last_latency_ms": m.last_latency_ms, "last_error": m.last_error,
                    "paused": m.paused_until is not None, "pause_reason": m.pause_reason}
                   for m in ai.models.values()],
    }


def readiness(service: Service) -> list[str]:
    """What is not ready (empty: ready).

    Ready means: the feeds are connected (live: the RTDS trade feed and every CLOB shard that
    has tokens to watch; replay: the replay has started), the database is up (writable), and
    the hub and the WebSocket server run.
    """
    problems: list[str] = []
    if service.replay_state is not None:
        if service.replay_state.started_at is None:
            problems.append("replay: not started")
    else:
        if not service.rtds_health.connected:
            problems.append("feed rtds: not connected")
        shards = service.clob_shards
        for index, health in enumerate(service.clob_health):
            wanted = shards is not None and index < len(shards.desired) and shards.desired[index]
            if wanted and not health.connected:
                problems.append(f"feed {health.name}: not connected")
    db = service.db_stats
    if db.state != "up":
        detail = f" ({db.last_error})" if db.last_error else ""
        problems.append(f"database: {db.state}{detail}")
    for name in ("hub", "ws_server"):
        info = service.registry.get(f"root/frontend/{name}")
        if info is None or info.state is not ActorState.RUNNING:
            problems.append(f"{name}: {info.state.value if info else 'absent'}")
    if service.frontend_stats.bound_port is None:
        problems.append("ws_server: not listening")
    return problems


def status_document(service: Service, now: float, started_at: float, uptime: float) -> dict[str, Any]:
    """The ``/status`` JSON document (``now``, ``started_at``: wall clock; ``uptime``: seconds
    since the service was built, on the monotonic clock)."""
    from config import __version__

    problems = readiness(service)
    sessions = sum(1 for info in service.registry if info.path.startswith(SESSIONS_PREFIX))
    return {
        "service": {"name": "polymarket-insights", "version": __version__, "now": now,
                    "started_at": started_at, "uptime_seconds": uptime,
                    "mode": "replay" if service.replay_state is not None else "live",
                    "ws_port": service.frontend_stats.bound_port, "http_port": service.http_stats.bound_port},
        "ready": {"ready": not problems, "not_ready": problems},
        "actors": [_actor(info) for info in tree_actors(service)],
        "sessions": sessions,
        "feeds": _feeds(service, now),
        "replay": _replay(service),
        "pipeline": _pipeline(service),
        "hub": _hub(service),
        "storage": _storage(service, now),
        "ai": _ai(service),
        "memory": _memory(service),
        "alerts": [state.stats.as_status() | {"queued": len(state.feed.items) + len(state.folded)}
                   for state in (service.alerts.states if service.alerts else [])],
    }
