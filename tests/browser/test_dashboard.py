"""The dashboard against the whole service, in a real browser (Debian's Chromium via Playwright).

The service replays the Nobel sample (with the fake OpenRouter, so predictions flow too) and
serves the page from its own HTTP actor.  The page must show exactly the whales the service
broadcast — once each, newest first — and after its connection is cut (client sessions, hub and
WebSocket server killed, and the page kept away while more whales are broadcast) it must
reconnect (re-reading the WebSocket server's new port from ``/status``), resume, and end with no
duplicate and no missing row.  Its markets and predictions must match the last broadcast of each.  The
test takes a screenshot; with ``UPDATE_SCREENSHOT=1`` it replaces the one the README shows
(``docs/dashboard.png``), otherwise it goes to the test's temporary directory.

Playwright's sync API runs in one worker thread (``trio.to_thread.run_sync``); what it needs
from the service it asks the trio loop for with ``trio.from_thread``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

from actors import Service, ServiceOptions, build_service
from config import load_settings
from supervision import run_supervisor
from tests.fakes.openrouter import DEFAULT_KEY, RecordedCall, Reply, open_fake_openrouter
from tests.frontend._client import OFFLINE_ENV, SAMPLE, expected_whales

from ._browser import ROOT, chromium_page, conn, rows, wait_js

README_SCREENSHOT = ROOT / "docs" / "dashboard.png"
#: The sample's 29 whales fall in its first 2,288 s: about 11 s at this speed, so the page
#: connects while they arrive and some arrive while it is cut off.
SPEED = 200


def forecast(call: RecordedCall) -> Reply:
    """A different, deterministic forecast per market and model."""
    digest = hashlib.sha256((call.model + call.user_prompt()).encode()).digest()
    return Reply(probability=round(0.05 + 0.9 * digest[0] / 255, 3), confidence=round(0.3 + 0.6 * digest[1] / 255, 3))


# -- what the service broadcast (read in the trio loop) -------------------------------------------

def broadcast(svc: Service, kind: str) -> list[tuple[int, dict[str, Any]]]:
    """(seq, data) of every broadcast of ``kind`` the hub holds (its ring holds them all here)."""
    assert svc.hub.oldest_seq == 1, "the ring must hold every broadcast of this test"
    return [(e.seq, json.loads(e.frame)["data"]) for e in svc.hub.ring if e.type == kind]


def latest_by_market(svc: Service, kind: str) -> dict[str, dict[str, Any]]:
    latest: dict[str, dict[str, Any]] = {}
    for _, data in broadcast(svc, kind):
        latest[data["condition_id"]] = data
    return latest


def kill_frontend(svc: Service) -> list[str]:
    """Cut every client off: kill each client session, the hub and the WebSocket server."""
    victims = [info.path for info in svc.registry if "/sessions/client-" in info.path]
    victims += ["root/frontend/hub", "root/frontend/ws_server"]
    assert len(victims) >= 3, victims
    for path in victims:
        assert svc.registry.kill(path, "test: forced disconnect"), path
    return victims


async def replayed_and_quiet(svc: Service, still: float = 1.5) -> None:
    """Until the replay is read, no inbox holds anything and the hub has been still for ``still`` s."""
    assert svc.replay_state is not None
    with trio.fail_after(60):
        await svc.replay_state.done.wait()
        seen, since = -1, trio.current_time()
        while True:
            if any(inbox.pending() for inbox in svc.inboxes.values()) or svc.hub.seq != seen:
                seen, since = svc.hub.seq, trio.current_time()
            elif trio.current_time() - since >= still:
                return
            await trio.sleep(0.05)


async def whales_broadcast_after(svc: Service, cut: int, want: int) -> list[str]:
    """Trade ids of the whales broadcast after seq ``cut``, once there are ``want`` of them
    (or the sample's 29 whales are all out) and the WebSocket server listens again."""
    def after() -> list[str]:
        return [data["trade_id"] for seq, data in broadcast(svc, "whale_trade") if seq > cut]

    with trio.fail_after(30):
        while (len(after()) < want and len(broadcast(svc, "whale_trade")) < 29) or not ws_server_up(svc):
            await trio.sleep(0.02)
    return after()


def ws_server_up(svc: Service) -> bool:
    info = svc.registry.get("root/frontend/ws_server")
    return info is not None and info.restarts >= 1 and info.state.value == "running"


# -- the browser side (in a worker thread) -----------------------------------------------------

def in_trio(fn: Callable[..., Any], *args: Any) -> Any:
    return trio.from_thread.run_sync(fn, *args)


def page_markets(page: Any) -> dict[str, str]:
    return page.eval_on_selector_all("#market-rows tr", "rs => Object.fromEntries(rs.map(r => "
                                     "[r.dataset.conditionId, r.dataset.price]))")


def page_predictions(page: Any) -> dict[str, dict[str, Any]]:
    return page.eval_on_selector_all(".prediction", """cards => Object.fromEntries(cards.map(c => [
        c.dataset.conditionId, {outcome: c.dataset.outcome,
                                votes: [...c.querySelectorAll('.model-vote')].map(v => [v.dataset.model, v.dataset.outcome])}]))""")


def until_equal(page: Any, ours: Callable[[], Any], theirs: Callable[[], Any], what: str, timeout: float = 15) -> Any:
    """Poll until the page's view equals the service's (both re-read each time)."""
    deadline = trio.from_thread.run_sync(trio.current_time) + timeout
    while True:
        mine, expected = ours(), in_trio(theirs)
        if mine == expected:
            return mine
        if in_trio(trio.current_time) > deadline:
            assert mine == expected, f"the page's {what} differ from what the service broadcast"
        page.wait_for_timeout(100)


def drive(svc: Service, report: dict[str, Any]) -> None:
    http_port = in_trio(lambda: svc.http_stats.bound_port)
    assert http_port, "the HTTP actor serves the page (HTTP_PORT=0: svc.http_stats.bound_port)"
    with chromium_page() as (_context, page, errors):
        page.goto(f"http://127.0.0.1:{http_port}/")
        assert page.title() == "Polymarket Insights"
        # 1. history, then live: a few whales in, while the replay still broadcasts more
        wait_js(page, "return document.querySelectorAll('#whale-rows tr.whale').length >= 3", timeout=30_000)
        assert conn(page)["state"] == "connected"
        report["rows_at_cut"] = len(rows(page))
        report["whales_at_cut"] = in_trio(lambda: len(broadcast(svc, "whale_trade")))
        assert report["whales_at_cut"] < 29, "the replay ran through its whales before the page was up"
        # 2. forced disconnect.  The WebSocket server comes back on another port (WS_SERVER_PORT=0)
        # that the page can only learn from /status, which the browser is denied meanwhile: so
        # it stays away while the service broadcasts on
        status_blocked = True
        page.route(re.compile(r"/status(\?|$)"),
                   lambda route: route.abort("internetdisconnected") if status_blocked else route.continue_())
        report["ws_port_before"] = in_trio(lambda: svc.frontend_stats.bound_port)
        report["killed"] = in_trio(kill_frontend, svc)
        wait_js(page, "return document.querySelector('#conn-state').dataset.state === 'reconnecting'", timeout=15_000)
        cut = int(conn(page)["lastSeq"])
        report["cut"] = cut
        report["missed_while_away"] = trio.from_thread.run(whales_broadcast_after, svc, cut, 3)
        report["ws_port_after"] = in_trio(lambda: svc.frontend_stats.bound_port)
        assert conn(page)["connections"] == "1", "the page got back before /status was allowed"
        status_blocked = False
        # 3. reconnected and resumed from the last seq it had
        wait_js(page, "const d = document.querySelector('#conn-state').dataset; "
                      "return d.connections === '2' && d.state === 'connected'", timeout=30_000)
        state = conn(page)
        report["resumed_since"], report["hello_seq"] = int(state["resumedSince"]), int(state["helloSeq"])
        # the rest of the sample as fast as the pipeline goes (the replay reads its speed per frame)
        in_trio(lambda: setattr(svc.replay_state, "speed", 0))
        trio.from_thread.run(replayed_and_quiet, svc)
        # 4. the page equals what the service broadcast
        hub_whales = in_trio(lambda: broadcast(svc, "whale_trade"))
        expected_rows = [{"seq": str(s), "trade_id": d["trade_id"]} for s, d in sorted(hub_whales, reverse=True,
                                                                                         key=lambda sd: sd[0])]
        shown = until_equal(page, lambda: [{k: r[k] for k in ("seq", "trade_id")} for r in rows(page)],
                            lambda: expected_rows, "whale rows")
        report["rows"] = [r["trade_id"] for r in shown]
        report["hub_whales"] = [d["trade_id"] for _, d in sorted(hub_whales, key=lambda sd: sd[0])]
        report["row_texts"] = [r["text"] for r in rows(page)[:3]]
        report["markets"] = until_equal(
            page, lambda: page_markets(page),
            lambda: {cid: str(d["price"]) for cid, d in latest_by_market(svc, "market_update").items()}, "markets")
        report["predictions"] = until_equal(
            page, lambda: page_predictions(page),
            lambda: {cid: {"outcome": d["outcome"], "votes": [[m["model"], m["outcome"]] for m in d["models"]]}
                     for cid, d in latest_by_market(svc, "prediction").items()}, "predictions")
        # 5. the system panel (polled from /status) catches up, with the restarts we caused
        wait_js(page, "const r = document.querySelector('#sys-actor-rows tr[data-path=\"root/frontend/ws_server\"]');"
                      "const w = document.querySelector('#sys-tiles [data-tile=\"whales\"]');"
                      "return r && Number(r.dataset.restarts) >= 1 && w && w.dataset.value === '29'", timeout=10_000)
        report["system"] = page.inner_text("#sys-tiles")
        assert page.is_hidden("#status-error")
        report["state"] = conn(page)
        page.evaluate("document.querySelector('#whale-rows').closest('.scroll').scrollTop = 0")
        screenshot = report["screenshot"]
        screenshot.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(screenshot))
        report["errors"] = errors


async def test_the_page_shows_every_whale_once_and_resumes_after_a_forced_disconnect(tmp_path: Path) -> None:
    expected = expected_whales()
    assert len(expected) == 29
    report: dict[str, Any] = {"screenshot": README_SCREENSHOT if os.environ.get("UPDATE_SCREENSHOT") == "1"
                              else tmp_path / "dashboard.png"}
    async with open_fake_openrouter() as fake:
        fake.default = forecast
        env = {**OFFLINE_ENV, "DATABASE_URL": f"sqlite:///{tmp_path / 'insights.db'}",
               "DB_JOURNAL_PATH": str(tmp_path / "journal.jsonl"),
               "OPENROUTER_API_KEY": DEFAULT_KEY, "OPENROUTER_BASE_URL": fake.base_url,
               "AI_ANALYSES_PER_HOUR": "36000", "AI_INCLUDE_MARKET_PRICE": "true"}
        svc = build_service(load_settings(env, env_file=None), ServiceOptions(seed=8, replay=SAMPLE, speed=SPEED))
        stop = trio.Event()
        with trio.fail_after(120):
            async with trio.open_nursery() as nursery:
                await nursery.start(functools.partial(run_supervisor, svc.spec, svc.children, registry=svc.registry,
                                                      rng=svc.rng, stop=stop))
                try:
                    await trio.to_thread.run_sync(drive, svc, report)
                finally:
                    stop.set()
    # every whale the service broadcast, once, newest first; and they are the sample's whales
    assert report["rows"] == report["hub_whales"][::-1]
    assert len(report["rows"]) == len(set(report["rows"])) == 29
    assert sorted(report["rows"]) == sorted(expected)
    # the cut was real: whales were broadcast while the page was away, and the resume brought them
    assert report["missed_while_away"], report
    assert report["ws_port_after"] != report["ws_port_before"]
    assert report["resumed_since"] == report["cut"] < report["hello_seq"]
    assert set(report["missed_while_away"]) <= set(report["rows"])
    assert report["state"]["duplicates"] != "" and int(report["state"]["lastSeq"]) == svc.hub.seq
    first = report["row_texts"][0]
    assert "$" in first and "¢" in first and "Nobel Peace Prize" in first
    assert len(report["markets"]) == 20 and all(report["markets"].values())
    assert len(report["predictions"]) >= 1 and all(len(p["votes"]) == 3 for p in report["predictions"].values())
    assert "29" in report["system"]
    assert report["errors"] == [], report["errors"]
    assert report["screenshot"].stat().st_size < 400_000
