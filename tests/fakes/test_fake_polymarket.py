"""Tests of the fake Polymarket servers, driven by plain trio-websocket and httpx clients."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, ConnectionRejected

from tests.fakes import (
    BAD_FRAMES,
    RTDS_PAYLOAD_FIELDS,
    ScriptAction,
    best_bid_ask_event,
    last_trade_price_event,
    legacy_price_change_event,
    load_nobel_trades,
    make_gamma_event,
    make_gamma_market,
    make_trade,
    market_resolved_event,
    new_market_event,
    open_fake_polymarket,
    open_ws_client,
    price_change_event,
    price_change_item,
    rtds_envelope,
    rtds_payload_from_trade,
    tick_size_change_event,
)

ACTIVITY_BOTH = {
    "action": "subscribe",
    "subscriptions": [{"topic": "activity", "type": "trades"}, {"topic": "activity", "type": "orders_matched"}],
}

REAL_PAYLOAD: dict[str, Any] = {
    "asset": "72551024098258542594534683942523606143014690620243023298497729957846870197074",
    "bio": "",
    "conditionId": "0x1d8720896546460a48d4f7fd5b3f0705a8d427921222de498d1cd334d4890c52",
    "eventSlug": "highest-temperature-in-wellington-on-august-19-2026",
    "icon": "https://x.jpg",
    "name": "PPMT",
    "outcome": "No",
    "outcomeIndex": 1,
    "price": 0.26,
    "profileImage": "",
    "proxyWallet": "0x510F4963b66B1B18505faaB74b0bB943D1dDa43C",
    "pseudonym": "Rowdy-Tenement",
    "side": "BUY",
    "size": 2.7027,
    "slug": "highest-temperature-in-wellington-on-august-19-2026-10c",
    "timestamp": 1787102287,
    "title": "Will the highest temperature in Wellington be 10C on August 19?",
    "transactionHash": "0xb6acf6859bc84216f4b3e2567fb392a2eae19d275340ad96ea17218ccfec27b7",
}

A1, A2, A3 = "1111111111", "2222222222", "3333333333"
MKT = "0x" + "ab" * 32


async def recv(ws: Any, timeout: float = 2.0) -> str:
    with trio.fail_after(timeout):
        msg = await ws.get_message()
    assert isinstance(msg, str)
    return msg


async def recv_json(ws: Any, timeout: float = 2.0) -> Any:
    return json.loads(await recv(ws, timeout))


async def nothing_within(ws: Any, seconds: float = 0.2) -> bool:
    with trio.move_on_after(seconds):
        await ws.get_message()
        return False
    return True


# ====================================================================== RTDS


async def test_rtds_subscribe_and_envelope_round_trip() -> None:
    async with open_fake_polymarket() as fake:
        assert fake.rtds_url.startswith("ws://127.0.0.1:")
        async with open_ws_client(fake.rtds_url) as ws:
            await ws.send_message(json.dumps(ACTIVITY_BOTH))
            with trio.fail_after(2):
                await fake.rtds.wait_subscribed()
            assert await recv(ws) == ""  # first frame after a subscribe
            n = await fake.rtds.send_trade(REAL_PAYLOAD)
            assert n == 2
            first, second = await recv(ws), await recv(ws)
            for raw, type_ in ((first, "trades"), (second, "orders_matched")):
                env = json.loads(raw)
                assert list(env) == ["connection_id", "payload", "timestamp", "topic", "type"]
                assert env["payload"] == REAL_PAYLOAD
                assert env["topic"] == "activity" and env["type"] == type_
                assert isinstance(env["timestamp"], int) and env["timestamp"] > 1_600_000_000_000
                assert env["connection_id"] == fake.rtds.open_connections[0].connection_id
            assert '"price":0.26' in first and '"size":2.7027' in first  # compact, numbers
        assert fake.rtds.subscribe_messages == [ACTIVITY_BOTH]
        assert fake.rtds.connections_accepted == 1
        assert fake.errors == []


async def test_rtds_routing_wildcard_filters_unsubscribe_and_unknown_topic() -> None:
    async with open_fake_polymarket() as fake:
        async with open_ws_client(fake.rtds_url) as star, open_ws_client(fake.rtds_url) as filtered:
            await star.send_message(json.dumps({"action": "subscribe", "subscriptions": [{"topic": "activity", "type": "*"}]}))
            await filtered.send_message(
                json.dumps(
                    {
                        "action": "subscribe",
                        "subscriptions": [
                            {"topic": "activity", "type": "orders_matched", "filters": json.dumps({"event_slug": "other"})}
                        ],
                    }
                )
            )
            with trio.fail_after(2):
                await fake.rtds.wait_subscribed(2)
            assert await recv(star) == "" and await recv(filtered) == ""
            await fake.rtds.send_trade(REAL_PAYLOAD, types=("orders_matched",))
            assert (await recv_json(star))["type"] == "orders_matched"
            assert await nothing_within(filtered)
            await fake.rtds.send_trade({**REAL_PAYLOAD, "eventSlug": "other"}, types=("orders_matched",))
            assert (await recv_json(filtered))["payload"]["eventSlug"] == "other"
            assert (await recv_json(star))["payload"]["eventSlug"] == "other"
            # a topic nobody subscribed to, pushed to everybody
            await fake.rtds.send_message("crypto_prices", "update", {"symbol": "btcusdt", "value": 1.0}, to_all=True)
            assert (await recv_json(star))["topic"] == "crypto_prices"
            # unsubscribe
            await star.send_message(json.dumps({"action": "unsubscribe", "subscriptions": [{"topic": "activity", "type": "*"}]}))
            with trio.fail_after(2):
                await fake.rtds.wait_until(lambda: len(fake.rtds.subscribed_connections()) == 1)
            assert await fake.rtds.send_trade(REAL_PAYLOAD, types=("trades",)) == 0
            assert await nothing_within(star)


async def test_rtds_ping_pong_and_silent_mode() -> None:
    async with open_fake_polymarket() as fake:
        async with open_ws_client(fake.rtds_url) as ws:
            await ws.send_message("PING")
            assert await recv(ws) == "PONG"
            await ws.send_message("ping")  # the TS client's spelling
            assert await recv(ws) == "PONG"
            assert fake.rtds.pings_received == 2
            await ws.send_message(json.dumps(ACTIVITY_BOTH))
            assert await recv(ws) == ""
            fake.rtds.go_silent()
            await ws.send_message("PING")
            with trio.fail_after(2):
                await fake.rtds.wait_pings(3)
            assert await fake.rtds.send_trade(REAL_PAYLOAD) == 0
            assert await nothing_within(ws, 0.3)  # no PONG, no trade, socket still open
            assert len(fake.rtds.open_connections) == 1
            fake.rtds.resume()
            await ws.send_message("PING")
            assert await recv(ws) == "PONG"


async def test_rtds_drop_is_abrupt_and_client_can_reconnect() -> None:
    async with open_fake_polymarket() as fake:
        async with open_ws_client(fake.rtds_url) as ws:
            await ws.send_message(json.dumps(ACTIVITY_BOTH))
            assert await recv(ws) == ""
            assert await fake.rtds.drop_connections() == 1
            with pytest.raises(ConnectionClosed) as info:
                await recv(ws)
            assert info.value.reason.code == 1006  # no close frame was sent
        assert fake.rtds.open_connections == []
        async with open_ws_client(fake.rtds_url) as ws:
            await ws.send_message(json.dumps(ACTIVITY_BOTH))
            with trio.fail_after(2):
                await fake.rtds.wait_subscribed()
            assert await recv(ws) == ""
            await fake.rtds.send_trade(REAL_PAYLOAD, types=("trades",))
            assert (await recv_json(ws))["type"] == "trades"
        assert fake.rtds.connections_accepted == 2
        assert fake.rtds.connections[0].close_reason == "dropped"


async def test_rtds_bad_frames_close_codes_and_handshake_rejection() -> None:
    async with open_fake_polymarket() as fake:
        async with open_ws_client(fake.rtds_url) as ws:
            with trio.fail_after(2):
                await fake.rtds.wait_open()
            for frame in BAD_FRAMES:
                await fake.rtds.send_raw(frame)
            assert [await recv(ws) for _ in BAD_FRAMES] == list(BAD_FRAMES)
            # client garbage does not kill the server
            await ws.send_message("not json{")
            await ws.send_message(json.dumps({"type": "ping"}))  # moon-dev's non-standard ping
            await ws.send_message(b"\x00binary")
            await ws.send_message("PING")
            assert await recv(ws) == "PONG"
            assert fake.rtds.invalid_messages == ["not json{"]
            assert fake.rtds.other_messages == [{"type": "ping"}]
            await fake.rtds.close_connections(1013, "slow consumer: send buffer full")
            with pytest.raises(ConnectionClosed) as info:
                await recv(ws)
            assert info.value.reason.code == 1013
        fake.rtds.reject_next_handshakes(1, 503)
        with pytest.raises(ConnectionRejected) as rejected:
            async with open_ws_client(fake.rtds_url):
                pass
        assert rejected.value.status_code == 503
        assert fake.errors == []


async def test_rtds_silent_after_n_frames_and_script() -> None:
    async with open_fake_polymarket() as fake:
        async with open_ws_client(fake.rtds_url) as ws:
            await ws.send_message(json.dumps(ACTIVITY_BOTH))
            assert await recv(ws) == ""
            fake.rtds.go_silent_after(2)
            for i in range(4):
                await fake.rtds.send_trade({**REAL_PAYLOAD, "size": i}, types=("trades",))
            assert [(await recv_json(ws))["payload"]["size"] for _ in range(2)] == [0, 1]
            await ws.send_message("PING")
            assert await nothing_within(ws, 0.3)
        fake.rtds.resume()
        fake.rtds.set_script(
            [
                (0, {"type": "orders_matched", "payload": REAL_PAYLOAD}),
                (0.01, "garbage{"),
                (0, ScriptAction.DROP),
            ]
        )
        async with open_ws_client(fake.rtds_url) as ws:
            await ws.send_message(json.dumps(ACTIVITY_BOTH))
            assert await recv(ws) == ""
            env = await recv_json(ws)
            assert env["type"] == "orders_matched" and env["payload"] == REAL_PAYLOAD
            assert await recv(ws) == "garbage{"
            with pytest.raises(ConnectionClosed):
                await recv(ws)


async def test_rtds_ping_timeout_goes_silent(autojump_clock: trio.testing.MockClock) -> None:
    async with open_fake_polymarket() as fake:
        fake.rtds.ping_timeout = 30
        async with open_ws_client(fake.rtds_url) as ws:
            await ws.send_message(json.dumps(ACTIVITY_BOTH))
            assert await recv(ws) == ""
            await trio.sleep(31)
            assert fake.rtds.open_connections[0].silent
            assert await fake.rtds.send_trade(REAL_PAYLOAD) == 0


def test_rtds_payload_from_csv_row() -> None:
    trades = load_nobel_trades()
    assert len(trades) == 5000
    t = trades[0]
    assert isinstance(t["size"], float) and isinstance(t["price"], float)
    assert isinstance(t["timestamp"], int) and isinstance(t["outcomeIndex"], int)
    p = rtds_payload_from_trade(t)
    assert tuple(p) == RTDS_PAYLOAD_FIELDS
    assert "profileImageOptimized" not in p
    raw_row = {k: str(v) for k, v in t.items()}  # as csv.DictReader gives it
    assert rtds_payload_from_trade(raw_row) == p
    env = rtds_envelope(p, type="orders_matched", connection_id="abc", timestamp_ms=1)
    assert env == {"connection_id": "abc", "payload": p, "timestamp": 1, "topic": "activity", "type": "orders_matched"}


# ====================================================================== CLOB


async def test_clob_subscribe_dump_operations_and_routing() -> None:
    async with open_fake_polymarket() as fake:
        fake.clob.set_book(A1, bids=[("0.30", "100")], asks=[(0.7, 5)], market=MKT)
        async with open_ws_client(fake.clob_url) as ws:
            await ws.send_message(json.dumps({"assets_ids": [A1, A2], "type": "market", "custom_feature_enabled": True}))
            dump = await recv_json(ws)
            assert isinstance(dump, list) and [b["asset_id"] for b in dump] == [A1, A2]
            b1 = dump[0]
            assert b1["event_type"] == "book" and b1["market"] == MKT
            assert b1["bids"] == [{"price": "0.30", "size": "100"}] and b1["asks"] == [{"price": "0.7", "size": "5"}]
            assert isinstance(b1["timestamp"], str) and len(b1["timestamp"]) == 13
            assert fake.clob.subscriptions == {1: {A1, A2}}

            await ws.send_message(json.dumps({"assets_ids": [A2, A3], "operation": "subscribe"}))
            dump = await recv_json(ws)
            assert [b["asset_id"] for b in dump] == [A3]  # only the new one, still an array
            await ws.send_message(json.dumps({"assets_ids": [A1], "operation": "unsubscribe"}))
            with trio.fail_after(2):
                await fake.clob.wait_until(lambda: fake.clob.subscriptions == {1: {A2, A3}})

            # routing
            assert await fake.clob.send_event(last_trade_price_event(A1, MKT, "0.5", "10")) == 0
            ltp = last_trade_price_event(A2, MKT, 0.456, "219.217767", "BUY")
            assert await fake.clob.send_event(ltp) == 1
            got = await recv_json(ws)
            assert got["price"] == "0.456" and got["transaction_hash"].startswith("0x")
            pc = price_change_event(MKT, [price_change_item(A1, "0.5", "200"), price_change_item(A3, "0.5", "0", "SELL")])
            assert await fake.clob.send_event(pc) == 1  # A3 is subscribed
            assert (await recv_json(ws))["price_changes"][1]["size"] == "0"
            batch = [
                tick_size_change_event(A2, MKT),
                legacy_price_change_event(A1, MKT, [("0.4", "SELL", "3300")]),  # not subscribed: filtered out
                best_bid_ask_event(A3, MKT, "0.73", "0.77"),
            ]
            await fake.clob.send_event(batch)
            got = await recv_json(ws)
            assert [e["event_type"] for e in got] == ["tick_size_change", "best_bid_ask"]
            assert got[1]["spread"] == "0.04"
            nm = new_market_event(MKT, "Q?", "q", ["9", "8"])
            assert await fake.clob.send_event(nm) == 1  # all custom-feature connections
            assert (await recv_json(ws))["event_type"] == "new_market"
            mr = market_resolved_event(MKT, "Q?", "q", [A2, "8"], A2, "Yes")
            await fake.clob.send_event(mr)
            assert (await recv_json(ws))["winning_asset_id"] == A2

            await ws.send_message("PING")
            assert await recv(ws) == "PONG"
            events = await fake.clob.burst_price_changes(A2, 50, as_array_every=10)
            frames = [await recv_json(ws) for _ in range(50)]
            assert sum(isinstance(f, list) for f in frames) == 5
            assert len(events) == 50
        assert fake.errors == []


async def test_clob_rust_shape_no_custom_features_and_no_dump() -> None:
    async with open_fake_polymarket() as fake:
        async with open_ws_client(fake.clob_url) as ws:
            await ws.send_message(
                json.dumps({"type": "market", "operation": "subscribe", "markets": [], "assets_ids": [A1], "initial_dump": True})
            )
            assert [b["asset_id"] for b in await recv_json(ws)] == [A1]
            await ws.send_message(json.dumps({"assets_ids": [A2], "type": "MARKET", "initial_dump": False}))
            with trio.fail_after(2):
                await fake.clob.wait_subscribed([A1, A2])
            assert await nothing_within(ws)  # no dump for A2
            assert await fake.clob.send_event(new_market_event(MKT, "Q?", "q", ["9", "8"])) == 0
            assert await fake.clob.send_event(best_bid_ask_event(A1, MKT, "0.1", "0.2")) == 0
        fake.clob.reject_next_handshakes(0)
        with pytest.raises(ConnectionRejected) as info:
            async with open_ws_client(fake.clob_url.replace("/ws/market", "/ws/user")):
                pass
        assert info.value.status_code == 404


async def test_clob_asset_cap_fails_silently_but_is_recorded() -> None:
    async with open_fake_polymarket(clob_asset_cap=500) as fake:
        assets = [str(10**20 + i) for i in range(502)]
        async with open_ws_client(fake.clob_url) as ws:
            await ws.send_message(json.dumps({"assets_ids": assets, "type": "market"}))
            dump = await recv_json(ws)
            assert len(dump) == 500
            assert len(fake.clob.subscriptions[1]) == 500
            assert fake.clob.cap_exceeded and fake.clob.cap_violations[0].ignored_assets == tuple(assets[500:])
            assert fake.clob.max_assets_per_connection == 502
            assert await fake.clob.send_event(last_trade_price_event(assets[501], MKT, "0.5", "1")) == 0
            assert await fake.clob.send_event(last_trade_price_event(assets[0], MKT, "0.5", "1")) == 1
            assert (await recv_json(ws))["asset_id"] == assets[0]


async def test_clob_silent_drop_and_garbage() -> None:
    async with open_fake_polymarket() as fake:
        async with open_ws_client(fake.clob_url) as ws:
            await ws.send_message(json.dumps({"assets_ids": [A1], "type": "market"}))
            await recv(ws)
            fake.clob.go_silent()
            await ws.send_message("PING")
            assert await nothing_within(ws, 0.3)
            fake.clob.resume()
            await fake.clob.send_raw('[{"event_type":"book","asset_id":')
            assert await recv(ws) == '[{"event_type":"book","asset_id":'
            await fake.clob.drop_connections()
            with pytest.raises(ConnectionClosed):
                await recv(ws)
        assert fake.clob.subscriptions == {}


# ====================================================================== Gamma


def _events(n: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        m = make_gamma_market(
            "0x" + f"{i:064x}", f"Question {i}?", f"market-{i}", [f"{i}01", f"{i}02"], volume_24h=float(i * 10)
        )
        out.append(make_gamma_event(f"event-{i}", f"Event {i}", [m], tags=["Politics"], closed=(i == 0)))
    return out


async def test_gamma_paging_order_and_encoded_fields() -> None:
    async with open_fake_polymarket() as fake, httpx.AsyncClient(base_url=fake.gamma_url) as client:
        fake.gamma.set_events(_events(7))
        seen: list[str] = []
        offset = 0
        while True:
            for order in ("volume24hr", "volume_24hr"):
                r = await client.get(
                    "/events",
                    params={"active": "true", "closed": "false", "order": order, "ascending": "false", "limit": 4, "offset": offset},
                )
                assert r.status_code == 200
                page = r.json()
            if not page:
                break
            seen += [e["slug"] for e in page]
            offset += 4
        assert seen == [f"event-{i}" for i in range(6, 0, -1)]  # event-0 is closed
        market = (await client.get("/events", params={"slug": "event-3"})).json()[0]["markets"][0]
        assert isinstance(market["outcomes"], str) and json.loads(market["outcomes"]) == ["Yes", "No"]
        assert json.loads(market["clobTokenIds"]) == ["301", "302"]
        assert isinstance(json.loads(market["outcomePrices"])[0], str)
        assert isinstance(market["volume"], str) and isinstance(market["volumeNum"], float)
        assert market["volume24hr"] == 30.0 and market["category"] is None
        ev = (await client.get("/events", params={"slug": "event-3"})).json()[0]
        assert ev["tags"][0]["label"] == "Politics" and set(ev["tags"][0]) == {"id", "label", "slug"}

        cid3, cid4 = "0x" + f"{3:064x}", "0x" + f"{4:064x}"
        r = await client.get("/markets", params=[("condition_ids", cid3), ("condition_ids", cid4)])
        assert {m["slug"] for m in r.json()} == {"market-3", "market-4"}
        r = await client.get("/markets", params={"condition_ids": f"{cid3},{cid4}"})
        assert len(r.json()) == 2
        r = await client.get("/markets", params=[("clob_token_ids", "301"), ("clob_token_ids", "402")])
        assert {m["slug"] for m in r.json()} == {"market-3", "market-4"}
        assert r.json()[0]["events"][0]["slug"] in ("event-3", "event-4")
        assert (await client.get("/markets", params={"clob_token_ids": "301,402"})).json() == []
        mid = market["id"]
        assert (await client.get(f"/markets/{mid}")).json()["slug"] == "market-3"
        assert (await client.get("/markets/999999999")).status_code == 404
        assert fake.gamma.requests[0].path == "/events"
        assert fake.gamma.requests[0].params["order"] == ["volume24hr"]


async def test_gamma_faults_429_503_garbage_disconnect() -> None:
    async with open_fake_polymarket() as fake, httpx.AsyncClient(base_url=fake.gamma_url) as client:
        fake.gamma.set_events(_events(2))
        fake.gamma.fail_next(1, status=429, retry_after=1)
        fake.gamma.fail_next(1, status=503)
        r = await client.get("/events")
        assert r.status_code == 429 and r.headers["retry-after"] == "1" and "error" in r.json()
        r = await client.get("/events")
        assert r.status_code == 503 and "retry-after" not in r.headers
        r = await client.get("/events")
        assert r.status_code == 200 and len(r.json()) == 2
        fake.gamma.garbage_next(1)
        r = await client.get("/events")
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        with pytest.raises(json.JSONDecodeError):
            r.json()
        fake.gamma.disconnect_next(1)
        with pytest.raises(httpx.TransportError):
            await client.get("/events")
        r = await client.get("/events")
        assert r.status_code == 200
        fake.gamma.delay_next(1, 0.3)
        with pytest.raises(httpx.ReadTimeout):
            await client.get("/events", timeout=0.05)  # client gives up; server keeps going
        assert (await client.get("/events")).status_code == 200
        assert len(fake.gamma.requests) == 8
        assert fake.errors == []


async def test_gamma_delay_is_driven_by_trio_clock(autojump_clock: trio.testing.MockClock) -> None:
    async with open_fake_polymarket() as fake, httpx.AsyncClient(base_url=fake.gamma_url, timeout=None) as client:
        fake.gamma.delay = 120.0
        start = trio.current_time()
        r = await client.get("/events")
        assert r.status_code == 200 and r.json() == []
        assert trio.current_time() - start >= 120.0


# ====================================================================== Data API


async def test_data_api_v1_filters_clamp_and_errors() -> None:
    async with open_fake_polymarket() as fake, httpx.AsyncClient(base_url=fake.data_api_url) as client:
        trades = load_nobel_trades()
        fake.data_api.set_trades(trades)
        r = await client.get("/trades")
        page = r.json()
        assert r.status_code == 200 and isinstance(page, list) and len(page) == 100
        ts = [t["timestamp"] for t in page]
        assert ts == sorted(ts, reverse=True)
        assert (await client.get("/trades", params={"limit": 1000})).json().__len__() == 500
        r = await client.get("/trades", params={"offset": 1001})
        assert r.status_code == 400 and "error" in r.json()
        assert (await client.get("/trades", params={"offset": 1000, "limit": 10})).status_code == 200
        r = await client.get("/trades", params={"filterType": "CASH"})
        assert r.status_code == 400
        r = await client.get("/trades", params={"filterType": "CASH", "filterAmount": 10000, "limit": 500})
        whales = r.json()
        expected = [t for t in trades if t["size"] * t["price"] >= 10000]
        assert len(whales) == len(expected) == 20
        r = await client.get("/trades", params={"filterType": "TOKENS", "filterAmount": 50000, "limit": 500})
        assert all(t["size"] >= 50000 for t in r.json())
        cid = trades[0]["conditionId"]
        r = await client.get("/trades", params={"market": f"{cid},0xdead", "side": "SELL", "limit": 500})
        assert r.json() and all(t["conditionId"] == cid and t["side"] == "SELL" for t in r.json())
        assert (await client.get("/trades", params={"market": cid, "eventId": "1"})).status_code == 400
        # maker rows only with takerOnly=false
        maker = make_trade(timestamp=2_000_000_000)
        fake.data_api.add_trades([maker], taker=False)
        assert (await client.get("/trades", params={"limit": 1})).json()[0] != maker
        assert (await client.get("/trades", params={"limit": 1, "takerOnly": "false"})).json()[0] == maker
        fake.data_api.fail_next(1, status=429, retry_after=2)
        r = await client.get("/trades")
        assert r.status_code == 429 and r.headers["retry-after"] == "2"
        assert fake.data_api.requests[-1].param("limit") is None


async def test_data_api_v2_cursor_paging() -> None:
    async with open_fake_polymarket() as fake, httpx.AsyncClient(base_url=fake.data_api_url) as client:
        trades = load_nobel_trades(250)
        fake.data_api.set_trades(trades)
        got: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": 100}
        while True:
            body = (await client.get("/v2/trades", params=params)).json()
            assert set(body) == {"data", "pagination"}
            got += body["data"]
            if not body["pagination"]["has_more"]:
                assert body["pagination"]["next_cursor"] is None
                break
            params = {"limit": 100, "cursor": body["pagination"]["next_cursor"]}
        assert len(got) == 250
        assert {"proxy_wallet", "token_id", "condition_id", "transaction_hash", "outcome_index"} <= set(got[0])
        r = await client.get("/v2/trades", params={"offset": 10})
        assert r.status_code == 400
        err = r.json()
        assert set(err) >= {"error", "code", "retryable", "trace_id"} and err["parameter"] == "offset"
        r = await client.get("/v2/trades", params={"cursor": "!!bad"})
        assert r.status_code == 400
        fake.data_api.fail_next(1, status=503, retry_after=5, path="/v2/")
        r = await client.get("/trades")
        assert r.status_code == 200  # the fault only matches /v2/ paths
        r = await client.get("/v2/trades")
        assert r.status_code == 503 and r.json()["retryable"] is True and r.headers["retry-after"] == "5"


async def test_fake_shuts_down_cleanly_with_open_clients() -> None:
    ready, stop = trio.Event(), trio.Event()
    holder: list[Any] = []

    async def run_fake() -> None:
        async with open_fake_polymarket() as fake:
            holder.append(fake)
            ready.set()
            await stop.wait()

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_fake)
            await ready.wait()
            fake = holder[0]
            async with open_ws_client(fake.rtds_url) as ws, httpx.AsyncClient(base_url=fake.gamma_url) as client:
                assert (await client.get("/events")).status_code == 200
                stop.set()
                with pytest.raises(ConnectionClosed):
                    await recv(ws)
                with pytest.raises(httpx.TransportError):
                    await client.get("/events")
