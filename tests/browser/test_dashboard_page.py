"""The dashboard's own logic in a real browser, with Playwright playing the service.

Resume after reconnects, ``lagged`` and ``resume_gap``, de-duplication by seq, backoff, the DOM
caps, escaping, the predictions and system panels, the token.  The page's clock is paused:
reconnect delays and polls happen only when a test advances it (no real waiting on timers).
"""

from __future__ import annotations

from typing import Any

from ._browser import MockedDashboard, browser_test, conn, market, rows, wait_js, whale


def row_seqs(page: Any) -> list[int]:
    return [int(r["seq"]) for r in rows(page)]


def wait_rows(page: Any, n: int) -> None:
    wait_js(page, "return document.querySelectorAll('#whale-rows tr.whale').length === arg", n)


@browser_test
def test_history_then_live_newest_first_and_a_replayed_seq_is_shown_once(page: Any) -> None:
    dash = MockedDashboard(page)
    dash.hello_seq = 4
    dash.open()
    dash.wait_sockets(1)
    assert dash.wait_received(lambda m: m["type"] == "resume") == {"type": "resume", "data": {"since": 0}}
    assert dash.urls == ["ws://dash.test:9101/"], "the port comes from /status"
    wait_js(page, "return document.querySelector('#conn-state').dataset.state === 'connected'")
    # a live broadcast can overtake the replay the resume asked for; then the replay, twice over
    dash.send(whale(5), whale(1), whale(2), market(3, "0xm", 0.5, 100), whale(4), whale(2), whale(5))
    wait_rows(page, 4)
    dash.send(whale(4), whale(6, trade_id="t6"))
    wait_rows(page, 5)
    assert row_seqs(page) == [6, 5, 4, 2, 1]
    assert [r["trade_id"] for r in rows(page)] == ["t6", "t5", "t4", "t2", "t1"]
    state = conn(page)
    assert state["lastSeq"] == "6" and state["duplicates"] == "3" and state["state"] == "connected"
    first = rows(page)[0]["text"]
    assert "$10,006" in first and "YES" in first and "42.0¢" in first and "Will market 6 happen?" in first
    link = page.get_attribute("#whale-rows tr.whale a.title", "href")
    assert link == "https://polymarket.com/event/e"


@browser_test
def test_reconnects_with_growing_backoff_rereads_the_port_and_resumes_without_gap_or_duplicate(page: Any) -> None:
    dash = MockedDashboard(page)
    dash.open()
    dash.wait_sockets(1)
    dash.send(*(whale(s) for s in (1, 2, 3)))
    wait_rows(page, 3)
    # the WebSocket server restarts elsewhere; connections fail until it is back
    dash.status["service"]["ws_port"] = 9202
    dash.hello_seq = None
    dash.sockets[0].close()
    wait_js(page, "return document.querySelector('#conn-state').dataset.attempt === '1'")
    assert conn(page)["state"] == "reconnecting" and conn(page)["dials"] == "1"
    dash.advance(400)                        # first retry after 0.5–0.6 s, not sooner
    assert conn(page)["dials"] == "1"
    dash.advance(250)
    assert conn(page)["dials"] == "2"
    dash.wait_sockets(2)
    assert dash.urls[1] == "ws://dash.test:9202/", "the new port was read from /status before reconnecting"
    dash.sockets[1].close()                  # refused before hello: the next wait doubles (1–1.2 s)
    wait_js(page, "return document.querySelector('#conn-state').dataset.attempt === '2'")
    dash.advance(900)
    assert conn(page)["dials"] == "2"
    dash.advance(400)
    assert conn(page)["dials"] == "3"
    dash.wait_sockets(3)
    dash.sockets[2].close()                  # ... and doubles again (2–2.4 s)
    wait_js(page, "return document.querySelector('#conn-state').dataset.attempt === '3'")
    dash.advance(1900)
    assert conn(page)["dials"] == "3"
    dash.hello_seq = 5
    dash.advance(600)
    assert conn(page)["dials"] == "4"
    dash.wait_sockets(4)
    assert dash.wait_received(lambda m: m["type"] == "resume", socket=3) == {"type": "resume", "data": {"since": 3}}
    dash.send(whale(4), whale(5), whale(2), whale(3))   # the hub replays from 3 (and an overlap)
    wait_rows(page, 5)
    assert row_seqs(page) == [5, 4, 3, 2, 1]
    state = conn(page)
    assert state["state"] == "connected" and state["connections"] == "2" and state["lastSeq"] == "5"
    # a connection that got hello resets the backoff: the next retry comes after 0.5–0.6 s again
    dash.sockets[3].close()
    wait_js(page, "return document.querySelector('#conn-state').dataset.state === 'reconnecting'")
    dash.advance(450)
    assert conn(page)["dials"] == "4"
    dash.advance(200)
    assert conn(page)["dials"] == "5"
    dash.wait_sockets(5)
    assert dash.wait_received(lambda m: m["type"] == "resume", socket=4)["data"] == {"since": 5}


@browser_test
def test_lagged_resumes_from_resume_from_and_resume_gap_skips_what_is_gone(page: Any) -> None:
    dash = MockedDashboard(page)
    dash.hello_seq = 120
    dash.open()
    dash.wait_sockets(1)
    assert dash.wait_received(lambda m: m["type"] == "resume")["data"] == {"since": 0}
    # the ring has wrapped: the hub says so, then replays what it holds (101..103 here)
    dash.send({"type": "error", "data": {"code": "resume_gap", "message": "...", "oldest_seq": 101}},
              whale(101), whale(102), whale(103))
    wait_rows(page, 3)
    wait_js(page, "return document.querySelector('#conn-state').dataset.lastSeq === '103'")
    # the client fell behind: missed 104..110, told to resume from 103
    dash.send(whale(111), {"type": "lagged", "data": {"missed": 7, "resume_from": 103}})
    wait_js(page, "return document.querySelector('#conn-state').dataset.state === 'lagged'")
    resumes = lambda: [m for m in dash.received[0] if m["type"] == "resume"]  # noqa: E731
    dash.wait_received(lambda m: m["type"] == "resume" and m["data"]["since"] == 103)
    assert [m["data"]["since"] for m in resumes()] == [0, 103]
    dash.send(*(whale(s) for s in range(104, 112)))      # the replay, 111 included again
    wait_rows(page, 11)
    wait_js(page, "return document.querySelector('#conn-state').dataset.state === 'connected'")
    assert row_seqs(page) == list(range(111, 100, -1))
    assert conn(page)["lastSeq"] == "111"
    # a reconnect resumes from the last seq, past the gap
    dash.sockets[0].close()
    dash.advance(650)
    dash.wait_sockets(2)
    assert dash.wait_received(lambda m: m["type"] == "resume", socket=1)["data"] == {"since": 111}


@browser_test
def test_a_restarted_service_starts_a_new_numbering_without_losing_the_tape(page: Any) -> None:
    dash = MockedDashboard(page)
    dash.open()
    dash.wait_sockets(1)
    dash.send(*(whale(s) for s in (1, 2, 3)))
    wait_rows(page, 3)
    # the service restarted: seq numbering starts again at 1; its history has one whale we know
    dash.status["service"]["started_at"] = MockedDashboard.T0 + 500
    dash.hello_seq = 2
    dash.sockets[0].close()
    dash.advance(650)
    dash.wait_sockets(2)
    assert dash.wait_received(lambda m: m["type"] == "resume", socket=1)["data"] == {"since": 0}
    dash.send(whale(1, trade_id="t3"), whale(2, trade_id="new"))
    wait_rows(page, 4)
    assert [r["trade_id"] for r in rows(page)] == ["new", "t3", "t2", "t1"]


@browser_test
def test_every_string_is_text_and_only_polymarket_is_linked(page: Any) -> None:
    dash = MockedDashboard(page)
    dash.open()
    dash.wait_sockets(1)
    evil = '<img src=x onerror="window.pwned=1">'
    dash.send(whale(1, market=evil, url="javascript:window.pwned=2", trader=evil, side=evil),
              market(2, "0xevil", 0.3, 5, title=evil, url="https://evil.example/polymarket.com"),
              {"type": "prediction", "seq": 3, "data": {"condition_id": "0xevil", "title": evil, "outcome": evil,
                                                         "votes": {evil: 1}, "url": "http://polymarket.com/x",
                                                         "models": [{"model": evil, "outcome": evil}]}})
    wait_rows(page, 1)
    dash.advance(300)   # markets and predictions render batched
    wait_js(page, "return document.querySelectorAll('.prediction').length === 1")
    assert page.evaluate("window.pwned") is None
    assert page.locator("img").count() == 0
    assert page.locator("#whale-rows a.title").count() == 0, "javascript: is not a link"
    assert page.locator("#market-rows a.title").count() == 0, "only polymarket.com is linked"
    assert page.locator(".prediction a.title").count() == 0, "only https is linked"
    assert evil in page.inner_text("#whale-rows") and evil in page.inner_text("#market-rows")
    assert evil in page.inner_text("#prediction-list")


@browser_test
def test_the_dom_stays_capped_and_markets_update_in_place(page: Any) -> None:
    dash = MockedDashboard(page)
    dash.hello_seq = 2600
    dash.open()
    dash.wait_sockets(1)
    # 2,000 whales (in batch frames, as a batching client gets them), then 300 markets twice
    for start in range(1, 2001, 250):
        dash.send_batch([whale(s) for s in range(start, start + 250)])
    updates = [market(2000 + i, f"0x{i % 300}", round(0.1 + (i % 7) / 10, 2), float(i % 300) * 10)
               for i in range(1, 601)]
    dash.send_batch(updates)
    wait_js(page, "return document.querySelector('#conn-state').dataset.lastSeq === '2600'", timeout=15_000)
    dash.advance(300)
    wait_js(page, "return document.querySelectorAll('#market-rows tr').length === 200")
    seqs = row_seqs(page)
    assert len(seqs) == 500 and seqs == list(range(2000, 1500, -1)), "the newest 500, newest first"
    assert page.get_attribute("#whale-count", "data-count") == "500"
    assert page.get_attribute("#market-count", "data-count") == "300"
    # one row per market, sorted by 24 h volume, showing its latest update
    ids = page.eval_on_selector_all("#market-rows tr", "rs => rs.map(r => r.dataset.conditionId)")
    assert len(set(ids)) == 200 and ids[0] == "0x299" and ids[-1] == "0x100"
    assert page.get_attribute('#market-rows tr[data-condition-id="0x299"]', "data-price") == str(updates[598]["data"]["price"])
    # one more: the oldest row goes
    dash.send(whale(2601))
    wait_js(page, "return document.querySelector('#conn-state').dataset.lastSeq === '2601'")
    seqs = row_seqs(page)
    assert len(seqs) == 500 and seqs[0] == 2601 and seqs[-1] == 1502
    # a market updated again changes its row in place
    dash.send(market(2602, "0x5", 0.77, 99_999.0))
    dash.advance(300)
    wait_js(page, "const r = document.querySelector('#market-rows tr'); return r.dataset.conditionId === '0x5'")
    assert page.locator('#market-rows tr[data-condition-id="0x5"]').count() == 1
    assert "77.0¢" in page.inner_text('#market-rows tr[data-condition-id="0x5"]')


def prediction(seq: int, cid: str, **data: Any) -> dict[str, Any]:
    body = {"forecast_id": f"f{seq}", "condition_id": cid, "title": f"Will {cid} win?", "outcome": "Yes",
            "probability": 0.64, "confidence": 0.41, "votes": {"Yes": 2, "No": 1},
            "models": [{"model": "openai/gpt-4o-mini", "outcome": "Yes", "probability": 0.7, "confidence": 0.6},
                       {"model": "anthropic/claude-3.5-haiku", "outcome": "Yes", "probability": 0.64,
                        "confidence": 0.5},
                       {"model": "google/gemini-2.0-flash-exp", "outcome": "No", "probability": 0.3,
                        "confidence": 0.7}],
            "market_price": 0.55, "outcomes": ["Yes", "No"], "timestamp": "2025-10-10T08:41:12Z",
            "url": "https://polymarket.com/event/e"}
    body.update(data)
    return {"type": "prediction", "seq": seq, "data": body}


@browser_test
def test_predictions_show_each_models_vote_beside_the_live_market_price(page: Any) -> None:
    dash = MockedDashboard(page, ai=True)
    dash.open()
    dash.wait_sockets(1)
    wait_js(page, "return document.querySelector('#predictions-empty').dataset.ai === 'on'")
    assert "No predictions yet" in page.inner_text("#predictions-empty")
    dash.send(prediction(1, "0xa"), prediction(2, "0xb", outcome="No", probability=0.2),
              market(3, "0xa", 0.61, 1000.0))
    dash.advance(300)
    wait_js(page, "return document.querySelectorAll('.prediction').length === 2")
    card = page.locator('.prediction[data-condition-id="0xa"]')
    text = card.inner_text()
    assert "61.0¢" in text, "the market's live price, not the price at forecast time"
    assert "64%" in text and "Yes 2 · No 1" in text and "41%" in text
    votes = card.locator(".model-vote").evaluate_all("vs => vs.map(v => [v.dataset.model, v.dataset.outcome])")
    assert votes == [["openai/gpt-4o-mini", "Yes"], ["anthropic/claude-3.5-haiku", "Yes"],
                     ["google/gemini-2.0-flash-exp", "No"]]
    assert "55.0¢" in page.locator('.prediction[data-condition-id="0xb"]').inner_text(), "price at forecast time"
    # a newer forecast replaces the market's card; a late older one does not
    dash.send(prediction(5, "0xa", outcome="No", probability=0.3), prediction(4, "0xa", outcome="Maybe"))
    dash.advance(300)
    wait_js(page, "return document.querySelector('.prediction[data-condition-id=\"0xa\"]').dataset.outcome === 'No'")
    assert page.locator(".prediction").count() == 2
    assert page.get_attribute(".prediction", "data-condition-id") == "0xa", "newest first"
    assert page.is_hidden("#predictions-empty")


@browser_test
def test_predictions_empty_state_when_the_ai_is_off(page: Any) -> None:
    MockedDashboard(page, ai=False).open()
    wait_js(page, "return document.querySelector('#predictions-empty').dataset.ai === 'off'")
    assert "AI analysis is off" in page.inner_text("#predictions-empty")
    assert page.locator(".prediction").count() == 0


FULL_STATUS: dict[str, Any] = {
    "service": {"name": "polymarket-insights", "version": "0.1.0", "started_at": 1.0, "uptime_seconds": 3725,
                "mode": "live", "ws_port": 9101, "now": 3726.0},
    "ready": {"ready": False, "not_ready": ["feed rtds: not connected"]},
    "actors": [
        {"path": "root/frontend", "kind": "supervisor", "state": "running", "restarts": 0},
        {"path": "root/frontend/ws_server", "kind": "worker", "state": "running", "restarts": 3,
         "crashes": 3, "last_error": "ActorKilled: <b>chaos</b>", "last_error_at": 2.0, "inbox_depth": None},
        {"path": "root/feeds/rtds", "kind": "worker", "state": "backoff", "restarts": 1},
        {"path": "root/frontend/sessions/client-7", "kind": "worker", "state": "running", "restarts": 0}],
    "sessions": 12,
    "feeds": [{"name": "rtds", "connected": False, "last_frame_age_s": 42.0, "frames_total": 1234567,
               "malformed_total": 2, "gaps_total": 1},
              {"name": "clob-0", "connected": True, "last_frame_age_s": 0.25, "frames_total": 10}],
    "replay": None,
    "pipeline": {"trades_received_total": 5000, "trades_kept_total": 1200, "whales_total": 29,
                 "near_settlement_total": 66},
    "hub": {"clients": 17, "seq": 4242, "oldest_seq": 1, "ring_span": 4242, "lagged_clients_total": 2,
            "kicked_clients_total": 1},
    "storage": {"state": "down", "backlog_rows": 1500, "journal_rows": 500, "rows_written_total": 9000,
                "retries_total": 4, "oldest_unwritten_age_s": 75, "last_error": "connection refused"},
    "ai": {"enabled": True, "calls_total": 60, "failures_total": 2, "spend_today_usd": 0.1234, "budget_usd": 5},
}


def tile(page: Any, name: str) -> str:
    return page.inner_text(f'#sys-tiles [data-tile="{name}"]')


@browser_test
def test_system_panel_shows_status_and_survives_nulls_and_errors(page: Any) -> None:
    dash = MockedDashboard(page)
    dash.status = FULL_STATUS
    dash.open()
    wait_js(page, "return document.querySelector('#system-panel').dataset.statusOk === 'true'")
    assert "17" in tile(page, "clients") and "lagged 2" in tile(page, "clients")
    assert "not ready" in tile(page, "ready") and "rtds" in tile(page, "ready")
    assert "down" in tile(page, "storage") and "backlog 1,500" in tile(page, "storage")
    assert "$0.12" in tile(page, "AI spend today") and "budget $5.00" in tile(page, "AI spend today")
    assert "calls 60" in tile(page, "AI spend today") and "failures 2" in tile(page, "AI spend today")
    assert "4,242" in tile(page, "hub seq")
    assert page.get_attribute('#sys-actor-rows tr[data-path="root/frontend/ws_server"]', "data-restarts") == "3"
    assert page.locator('#sys-actor-rows tr[data-path^="root/frontend/sessions/"]').count() == 0
    assert "12 client sessions" in page.inner_text("#sys-actor-summary")
    assert "<b>chaos</b>" in page.inner_text("#sys-actor-rows"), "errors are shown as text"
    feeds = page.inner_text("#sys-feed-rows")
    assert "rtds" in feeds and "down" in feeds and "42 s" in feeds and "1,234,567" in feeds
    assert "v0.1.0" in page.inner_text("#service-meta") and "live" in page.inner_text("#service-meta")
    # polled every few seconds; a document full of nulls or odd types breaks nothing
    dash.status = {"service": None, "ready": None, "actors": None, "feeds": [None, 3, {}], "replay": {"percent": None},
                   "hub": {"clients": None}, "storage": None, "ai": None, "pipeline": []}
    dash.advance(3100)
    wait_js(page, "return !document.querySelector('#sys-replay').hidden")
    assert page.locator("#sys-actor-rows tr").count() == 0
    assert page.locator("#sys-feed-rows tr").count() == 1
    dash.status_code = 401
    dash.advance(3100)
    wait_js(page, "return document.querySelector('#system-panel').dataset.statusOk === 'false'")
    assert "401" in page.inner_text("#status-error") and "token" in page.inner_text("#status-error")
    dash.status_code, dash.status = 200, FULL_STATUS
    dash.advance(3100)
    wait_js(page, "return document.querySelector('#system-panel').dataset.statusOk === 'true'")
    assert page.is_hidden("#status-error")


@browser_test
def test_the_token_is_passed_on_to_status_and_the_websocket(page: Any) -> None:
    dash = MockedDashboard(page)
    dash.open("?token=s3cret%26x")
    dash.wait_sockets(1)
    assert dash.urls == ["ws://dash.test:9101/?token=s3cret%26x"]
    assert dash.status_requests[0] == "http://dash.test/status?token=s3cret%26x"
