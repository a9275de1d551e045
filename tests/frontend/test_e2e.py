"""End to end over real sockets: the Nobel replay through the whole service to real clients."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
import pytest
import trio

from actors import Service, ServiceOptions, build_service
from config import load_settings
from supervision import run_supervisor

from ._client import OFFLINE_ENV, SAMPLE, Client, expected_whales


@asynccontextmanager
async def service(options: ServiceOptions, **env: str) -> AsyncIterator[Service]:
    svc = build_service(load_settings({**OFFLINE_ENV, **env}, env_file=None), options)
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(functools.partial(run_supervisor, svc.spec, svc.children, registry=svc.registry,
                                              rng=svc.rng, stop=stop))
        try:
            yield svc
        finally:
            stop.set()


async def replayed_and_quiet(svc: Service, quiet: float = 1.5) -> None:
    """Until the replay is read, every inbox is empty and the hub has been still for ``quiet`` s
    (longer than the market-update throttle)."""
    with trio.fail_after(60):
        await svc.replay_state.done.wait()  # type: ignore[union-attr]
        seen, since = -1, trio.current_time()
        while True:
            busy = any(inbox.pending() for inbox in svc.inboxes.values())
            if busy or svc.hub.seq != seen:
                seen, since = svc.hub.seq, trio.current_time()
            elif trio.current_time() - since >= quiet:
                return
            await trio.sleep(0.05)


def url(svc: Service) -> str:
    return f"ws://127.0.0.1:{svc.frontend_stats.bound_port}"


def whale_ids(client: Client) -> list[str]:
    return [m["data"]["trade_id"] for m in client.whales()]


async def test_client_receives_exactly_the_whales_of_the_csv_in_order() -> None:
    expected = expected_whales()
    assert len(expected) == 29
    async with service(ServiceOptions(seed=1, replay=SAMPLE, speed=0)) as svc:
        await replayed_and_quiet(svc)
        client = Client()
        # connected after the fact: resume from 0 replays the ring, in order, then live
        await client.session(url(svc), requests=[{"type": "resume", "data": {"since": 0}}],
                             until=lambda c: c.last_seq >= svc.hub.seq)
    hello = client.messages[0]
    assert hello["type"] == "hello" and 0 < hello["data"]["seq"] <= svc.hub.seq
    assert whale_ids(client) == expected
    first = client.whales()[0]
    for field in ("market", "side", "amount", "price", "timestamp", "action", "outcome", "condition_id", "slug",
                  "url", "wallet", "trader", "transaction_hash", "tier"):
        assert field in first["data"], field
    assert first["data"]["side"] in ("YES", "NO") and first["data"]["timestamp"].endswith("Z")
    assert first["data"]["url"] == "https://polymarket.com/event/nobel-peace-prize-winner-2025"
    updates = [m for m in client.messages if m["type"] == "market_update"]
    assert updates and {"condition_id", "title", "price", "volume_24h", "timestamp"} <= set(updates[0]["data"])
    seqs = [m["seq"] for m in client.messages if "seq" in m]
    assert seqs == list(range(1, client.last_seq + 1)), "every broadcast once, no gap"


async def test_plain_client_gets_everything_live_and_resumes_after_a_forced_disconnect() -> None:
    expected = expected_whales()
    async with service(ServiceOptions(seed=2, replay=SAMPLE, speed=3000)) as svc:
        client = Client()
        # the seed's snippet: connect and listen, no requests
        await client.session(url(svc), until=lambda c: len(c.whales()) >= 3)
        cut_at = client.last_seq
        # forced disconnect happened (we left); more broadcasts arrive meanwhile
        await replayed_and_quiet(svc)
        await client.session(url(svc), requests=[{"type": "resume", "data": {"since": cut_at}}],
                             until=lambda c: c.last_seq >= svc.hub.seq)
    assert whale_ids(client) == expected
    assert client.connections == 2


async def test_subscribe_narrows_and_bad_input_gets_errors() -> None:
    async with service(ServiceOptions(seed=3, replay=SAMPLE, speed=0)) as svc:
        await replayed_and_quiet(svc)
        client = Client()
        requests: list[Any] = [
            {"type": "subscribe", "data": {"types": ["whale_trade"], "min_amount": 5_000}},
            {"type": "resume", "data": {"since": 0}},
            {"type": "ping"},
            {"type": "nope"},
            {"type": "subscribe", "data": {"types": ["bogus"]}},
            {"type": "resume", "data": {"since": "x"}},
        ]
        await client.session(url(svc), requests=requests,  # (min_amount 5,000 of whales from 1,000)
                             until=lambda c: sum(1 for m in c.messages if m["type"] == "error") >= 3
                             and any(m["type"] == "pong" for m in c.messages) and c.whales())
        async with _raw(url(svc)) as ws:
            await ws.send_message("{not json")
            assert '"bad_json"' in await _next_non_hello(ws)
            await ws.send_message("x" * 70_000)
            assert '"too_large"' in await _next_non_hello(ws)
            await ws.send_message('{"type":"ping"}')
            assert '"pong"' in await _next_non_hello(ws), "still connected after errors"
    whales = client.whales()
    assert whales and all(w["data"]["amount"] >= 5_000 for w in whales)
    assert all(m["type"] in ("hello", "subscribed", "whale_trade", "pong", "error") for m in client.messages)
    codes = {m["data"]["code"] for m in client.messages if m["type"] == "error"}
    assert codes == {"unknown_type", "bad_request"}


@asynccontextmanager
async def _raw(u: str) -> AsyncIterator[Any]:
    from tests.fakes import open_ws_client

    async with open_ws_client(u) as ws:
        yield ws


async def _next_non_hello(ws: Any) -> str:
    with trio.fail_after(10):
        while True:
            text = await ws.get_message()
            message = orjson.loads(text)
            if message["type"] != "hello" and "seq" not in message:
                return text


async def test_resume_too_old_says_so() -> None:
    async with service(ServiceOptions(seed=4, replay=SAMPLE, speed=0), WS_RING_SIZE="50", WS_QUEUE_SIZE="20") as svc:
        await replayed_and_quiet(svc)
        client = Client()
        await client.session(url(svc), requests=[{"type": "resume", "data": {"since": 1}}],
                             until=lambda c: c.last_seq >= svc.hub.seq)
    errors = [m for m in client.messages if m["type"] == "error"]
    assert errors, [m["type"] for m in client.messages][:10]
    assert errors[0]["data"]["code"] == "resume_gap"
    assert errors[0]["data"]["oldest_seq"] == svc.hub.seq - 49
    assert [m["seq"] for m in client.messages if "seq" in m] == list(range(svc.hub.seq - 49, svc.hub.seq + 1))


@pytest.mark.parametrize("token", ["s3cret-token"])
async def test_auth_token_and_origin(token: str) -> None:
    from trio_websocket import ConnectionRejected

    from tests.fakes import open_ws_client

    async with service(ServiceOptions(seed=5, replay=SAMPLE, speed=0), WS_AUTH_TOKEN=token,
                       WS_ALLOWED_ORIGINS="https://ok.example") as svc:
        with pytest.raises(ConnectionRejected) as info:
            async with open_ws_client(url(svc)):
                pass
        assert info.value.status_code == 401
        with pytest.raises(ConnectionRejected):
            async with open_ws_client(url(svc) + "/?token=wrong"):
                pass
        client = Client()
        await client.session(url(svc) + f"/?token={token}", until=lambda c: c.messages)
        assert client.messages[0]["type"] == "hello"
        with pytest.raises(ConnectionRejected) as info:
            async with open_ws_client(url(svc), extra_headers=[(b"authorization", f"Bearer {token}".encode()),
                                                               (b"origin", b"https://evil.example")]):
                pass
        assert info.value.status_code == 403
        async with open_ws_client(url(svc), extra_headers=[(b"x-auth-token", token.encode()),
                                                           (b"origin", b"https://ok.example")]) as ws:
            assert '"hello"' in await ws.get_message()
    assert svc.frontend_stats.rejected_total == {"auth": 2, "origin": 1}


async def test_a_crashing_session_never_takes_the_server_down() -> None:
    async with service(ServiceOptions(seed=6, replay=SAMPLE, speed=0)) as svc:
        await replayed_and_quiet(svc)
        server = svc.registry.find("ws_server")
        assert server is not None
        incarnation = server.incarnation
        victim, survivor = Client(), Client()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(functools.partial(victim.session, url(svc)))
            nursery.start_soon(functools.partial(survivor.session, url(svc),
                                                 until=lambda c: any(m["type"] == "pong" for m in c.messages)))
            with trio.fail_after(10):
                while len(svc.hub.clients) < 2:
                    await trio.sleep(0.01)
            sessions = [i.path for i in svc.registry if "/sessions/client-" in i.path]
            assert len(sessions) == 2
            assert svc.registry.kill(sessions[0], "simulated bug")   # fails as if it raised
            with trio.fail_after(10):
                while svc.sessions.crashed_total < 1:
                    await trio.sleep(0.01)
            # the server and the other client carry on; a new client can connect
            async with _raw(url(svc)) as ws:
                await ws.send_message('{"type":"ping"}')
                assert '"pong"' in await _next_non_hello(ws)
            for client_path in sessions[1:]:
                assert svc.registry.get(client_path) is not None
            nursery.cancel_scope.cancel()
        assert server.incarnation == incarnation and server.crashes == 0
