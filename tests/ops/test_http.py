"""The HTTP side over real sockets: health, readiness, status, metrics, auth."""

from __future__ import annotations

import re
import secrets
from typing import Any

import httpx
import pytest
import trio

from actors import Service, ServiceOptions
from tests.fakes import open_ws_client
from tests.fakes.tcp_proxy import open_tcp_proxy
from tests.frontend._client import SAMPLE, expected_whales
from tests.frontend.test_e2e import replayed_and_quiet, service
from tests.storage.conftest import admin, ensure_mariadb

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def base(svc: Service) -> str:
    assert svc.http_stats.bound_port
    return f"http://127.0.0.1:{svc.http_stats.bound_port}"


def sample(metrics: str, name: str, **labels: str) -> float:
    """One sample's value from Prometheus text (labels must match exactly)."""
    for line in metrics.splitlines():
        if line.startswith("#"):
            continue
        m = re.fullmatch(r"([a-z_:]+)(?:\{(.*)\})? (\S+)", line)
        assert m, f"not exposition format: {line!r}"
        if m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        if got == labels:
            return float(m.group(3))
    raise KeyError(f"{name}{labels} not in metrics")


async def test_health_status_and_metrics_follow_a_replay() -> None:
    async with service(ServiceOptions(seed=5, replay=SAMPLE, speed=0)) as svc, httpx.AsyncClient() as http:
        assert (await http.get(base(svc) + "/healthz")).json() == {"status": "ok"}
        await replayed_and_quiet(svc)
        before = (await http.get(base(svc) + "/metrics")).text
        async with open_ws_client(f"ws://127.0.0.1:{svc.frontend_stats.bound_port}") as ws:
            await ws.get_message()                                    # hello
            await ws.send_message("{not json")
            assert '"bad_json"' in await ws.get_message()
            during = (await http.get(base(svc) + "/metrics")).text
        ready = await http.get(base(svc) + "/readyz")
        assert ready.status_code == 200 and ready.json() == {"ready": True, "not_ready": []}
        response = await http.get(base(svc) + "/metrics")
        assert response.headers["content-type"].startswith("text/plain")
        after = response.text
        status = (await http.get(base(svc) + "/status")).json()
        missing = await http.get(base(svc) + "/nope")
    whales = len(expected_whales())
    # metrics move with what happens, and agree with /status
    assert sample(before, "polymarket_insights_clients") == 0 and sample(during, "polymarket_insights_clients") == 1
    assert sample(during, "polymarket_insights_client_connections_total") == \
        sample(before, "polymarket_insights_client_connections_total") + 1
    assert sample(during, "polymarket_insights_client_errors_total", code="bad_json") == 1
    assert sample(during, "polymarket_insights_frames_sent_total") >= sample(before, "polymarket_insights_frames_sent_total") + 2
    assert sample(after, "polymarket_insights_whales_total") == whales == status["pipeline"]["whales_total"]
    assert sample(after, "polymarket_insights_broadcasts_total", type="whale_trade") == whales
    assert sample(after, "polymarket_insights_replay_frames_total") == status["replay"]["frames_total"] > 0
    assert sample(after, "polymarket_insights_trades_kept_total") == status["pipeline"]["trades_kept_total"] > whales
    assert sample(after, "polymarket_insights_trades_dropped_total", reason="below_threshold") > 0
    assert sample(after, "polymarket_insights_db_rows_written_total") >= status["pipeline"]["trades_kept_total"]
    assert sample(after, "polymarket_insights_db_up") == 1 and sample(after, "polymarket_insights_ready") == 1
    assert sample(after, "polymarket_insights_actor_restarts_total", actor="root/pipeline/whale_watcher") == 0
    assert sample(after, "polymarket_insights_process_resident_memory_bytes") > 0
    # every family is ours and has a unit-suffixed, bounded-label shape
    names = set(re.findall(r"^# TYPE (\S+) (\S+)$", after, re.M))
    assert names and all(n.startswith("polymarket_insights_") for n, _ in names)
    assert all(n.endswith("_total") for n, kind in names if kind == "counter")
    labels = set(re.findall(r'[{,](\w+)="', after))
    assert labels <= {"actor", "feed", "reason", "type", "code", "mode", "version", "model", "kind", "trigger", "outlet",
                      "structure"}
    assert "0x" not in "".join(re.findall(r'"[^"]*"', after)), "no market or wallet ids in labels"
    # /status: the tree by path, feeds, hub, storage, AI
    paths = {a["path"]: a for a in status["actors"]}
    assert {"root/pipeline/whale_watcher", "root/frontend/hub", "root/ops/http", "root/feeds/replay"} <= set(paths)
    assert paths["root/pipeline/whale_watcher"]["state"] == "running"
    assert status["service"]["mode"] == "replay" and status["service"]["ws_port"] == svc.frontend_stats.bound_port
    assert status["hub"]["seq"] == svc.hub.seq and status["storage"]["state"] == "up"
    assert status["storage"]["backlog_rows"] == 0 and status["ai"] == {"enabled": False}
    assert missing.status_code == 404
    # memory: resident size, and each bounded structure against its limit, in both places
    memory = status["memory"]
    assert memory["peak_resident_bytes"] >= memory["resident_bytes"] > 10_000_000
    bounded = memory["bounded"]
    assert bounded["hub.ring"] == {"entries": min(svc.hub.seq, svc.settings.ws_ring_size),
                                   "limit": svc.settings.ws_ring_size} and svc.hub.seq > 0
    assert bounded["hub.broadcast_keys"]["entries"] == whales
    assert bounded["trade_merge.trade_ids"] == {"entries": status["pipeline"]["trades_unique_total"], "limit": 100_000}
    assert 0 < bounded["rtds.transactions"]["entries"] <= bounded["rtds.transactions"]["limit"]
    assert bounded["db_writer.buffered_rows"]["entries"] == 0
    for name, figures in bounded.items():
        assert sample(after, "polymarket_insights_memory_bounded_entries", structure=name) == figures["entries"]
        assert sample(after, "polymarket_insights_memory_bounded_limit_entries", structure=name) == figures["limit"]


async def test_status_and_metrics_show_a_restart_after_a_kill() -> None:
    async with service(ServiceOptions(seed=6, replay=SAMPLE, speed=0)) as svc, httpx.AsyncClient() as http:
        await replayed_and_quiet(svc)
        assert svc.registry.kill("market_filter", "chaos test")
        with trio.fail_after(10):
            while svc.registry.get("root/pipeline/market_filter").restarts < 1:  # type: ignore[union-attr]
                await trio.sleep(0.02)
        status = (await http.get(base(svc) + "/status")).json()
        metrics = (await http.get(base(svc) + "/metrics")).text
    actor = {a["path"]: a for a in status["actors"]}["root/pipeline/market_filter"]
    assert actor["restarts"] == 1 and actor["crashes"] == 1 and "chaos test" in actor["last_error"]
    assert sample(metrics, "polymarket_insights_actor_restarts_total", actor="root/pipeline/market_filter") == 1


async def test_readyz_is_503_while_the_database_is_away_and_200_after() -> None:
    await trio.to_thread.run_sync(ensure_mariadb)
    name = f"pmi_test_{secrets.token_hex(6)}"
    await admin(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    try:
        async with open_tcp_proxy("127.0.0.1", 3306) as proxy:
            proxy.refuse()
            env = {"DATABASE_URL": f"mysql://root@127.0.0.1:{proxy.port}/{name}"}
            async with service(ServiceOptions(seed=7, replay=SAMPLE, speed=0), **env) as svc, \
                    httpx.AsyncClient() as http:
                with trio.fail_after(30):
                    while svc.db_stats.state != "down":
                        await trio.sleep(0.05)
                away = await http.get(base(svc) + "/readyz")
                metrics_away = (await http.get(base(svc) + "/metrics")).text
                proxy.pass_through()
                with trio.fail_after(60):
                    while (back := await http.get(base(svc) + "/readyz")).status_code != 200:
                        await trio.sleep(0.1)
                metrics_back = (await http.get(base(svc) + "/metrics")).text
    finally:
        with trio.CancelScope(shield=True):
            await admin(f"DROP DATABASE IF EXISTS {name}")
    assert away.status_code == 503
    body: dict[str, Any] = away.json()
    assert body["ready"] is False and any(p.startswith("database: down") for p in body["not_ready"])
    assert sample(metrics_away, "polymarket_insights_db_up") == 0
    assert sample(metrics_away, "polymarket_insights_db_retries_total") >= 1
    assert back.json() == {"ready": True, "not_ready": []}
    assert sample(metrics_back, "polymarket_insights_db_up") == 1


async def test_the_token_guards_everything_but_health() -> None:
    token = "s3cret-token"
    async with service(ServiceOptions(seed=8, replay=SAMPLE, speed=0), WS_AUTH_TOKEN=token) as svc, \
            httpx.AsyncClient() as http:
        u = base(svc)
        open_paths = [(await http.get(u + p)).status_code for p in ("/healthz", "/readyz")]
        guarded = [(await http.get(u + p)).status_code for p in ("/status", "/metrics", "/", "/static/app.js")]
        wrong = await http.get(u + "/status", params={"token": "nope"})
        by_query = await http.get(u + "/status", params={"token": token})
        by_bearer = await http.get(u + "/metrics", headers={"Authorization": f"Bearer {token}"})
        by_header = await http.get(u + "/status", headers={"X-Auth-Token": token})
        page = await http.get(u + "/", params={"token": token})
        cookie = page.headers.get("set-cookie", "")
        by_cookie = await http.get(u + "/status", headers={"Cookie": cookie.split(";")[0]})
    assert open_paths[0] == 200 and open_paths[1] in (200, 503)
    assert guarded == [401, 401, 401, 401] and wrong.status_code == 401
    assert token not in wrong.text
    assert by_query.status_code == by_bearer.status_code == by_header.status_code == 200
    assert "HttpOnly" in cookie and by_cookie.status_code == 200
    assert page.status_code == 200 and b"<html" in page.content.lower()


async def test_unknown_methods_and_paths_are_refused_cleanly() -> None:
    async with service(ServiceOptions(seed=9, replay=SAMPLE, speed=0)) as svc, httpx.AsyncClient() as http:
        post = await http.post(base(svc) + "/status", content=b"x")
        traversal = await http.get(base(svc) + "/static/..%2F..%2Fconfig%2F__init__.py")
        hidden = await http.get(base(svc) + "/static/.env")
        alive = await http.get(base(svc) + "/healthz")
    assert post.status_code == 405 and post.headers["allow"] == "GET, HEAD"
    assert traversal.status_code == 404 and hidden.status_code == 404 and alive.status_code == 200
