"""The whole ingestion side against the fake Polymarket: a scripted session with faults.

Done-when of the ingestion issue: the output trade stream equals the scripted trades,
exactly once each, despite drops, stalls, garbage, maker rows and duplicated types.
"""

from __future__ import annotations

from collections import Counter

import trio

from protocols.polymarket import trade_from_activity
from tests.fakes import (
    BAD_FRAMES,
    make_gamma_event,
    make_gamma_market,
    make_trade,
    open_fake_polymarket,
    rtds_payload_from_trade,
)

from ._service import fake_env, now_s, running_service


def _ids(trades: list[dict]) -> set[str]:  # type: ignore[type-arg]
    return {trade_from_activity(rtds_payload_from_trade(t), "data_api").trade_id for t in trades}


async def test_scripted_session_with_faults_yields_each_trade_once() -> None:
    now = now_s()
    market = make_gamma_market("0x" + "ab" * 32, "Will the scripted test pass?", "scripted-test", ["111", "222"])
    big = dict(size=4000.0, price=0.5, conditionId=market["conditionId"], asset="111")
    startup = [make_trade(**big, timestamp=now - 300 + i) for i in range(3)]   # before the service started
    live1 = [make_trade(**big, timestamp=now + i) for i in range(5)]
    during_outage = [make_trade(**big, timestamp=now + 10 + i) for i in range(3)]
    live2 = [make_trade(**big, timestamp=now + 20 + i) for i in range(3)]
    after_stall = [make_trade(**big, timestamp=now + 30 + i) for i in range(2)]
    expected = startup + live1 + during_outage + live2 + after_stall

    async with open_fake_polymarket() as fake:
        fake.gamma.set_events([make_gamma_event("scripted", "Scripted", [market], tags=["Politics"])])
        fake.data_api.set_trades(startup)
        async with running_service(fake_env(fake)) as run:
            await fake.rtds.wait_subscribed()
            # live trades on both types (the taker row twice), plus maker rows of the first one
            for trade in live1:
                await fake.rtds.send_trade(rtds_payload_from_trade(trade), ("orders_matched", "trades"))
            maker = rtds_payload_from_trade(make_trade(**{**live1[0], "proxyWallet": "0x" + "99" * 20,
                                                           "side": "SELL"}))
            await fake.rtds.send_trade(maker, ("trades",))
            for bad in BAD_FRAMES:
                await fake.rtds.send_raw(bad)
            await run.collect_until(lambda got: len(got) >= len(startup) + len(live1))

            # outage: the connection drops; trades happen that only the Data API will know
            fake.data_api.add_trades(live1 + during_outage)
            await fake.rtds.drop_connections()
            await fake.rtds.wait_subscribed()          # reconnected with backoff and resubscribed
            for trade in live2:
                await fake.rtds.send_trade(rtds_payload_from_trade(trade), ("orders_matched", "trades"))
            await run.collect_until(lambda got: len(got) >= len(startup) + len(live1) + len(during_outage) + 3)

            # stall: the socket stays open but goes silent (no PONG either); the watchdog reconnects
            connections_before = fake.rtds.connections_accepted
            fake.rtds.go_silent()
            await fake.rtds.wait_until(lambda: fake.rtds.connections_accepted > connections_before)
            fake.rtds.resume()
            await fake.rtds.wait_subscribed()
            for trade in after_stall:
                await fake.rtds.send_trade(rtds_payload_from_trade(trade), ("orders_matched", "trades"))
            got = await run.collect_until(lambda got: len(got) >= len(expected))
            got = await run.settle(1.0)

            health = run.service.rtds_health
            assert health.malformed_total >= 3, "garbage frames are counted"
            assert health.counters.get("maker_rows", 0) == 1
            assert health.stalls_total == 1 and health.disconnects_total >= 1
            assert health.gaps_total >= 2 and run.service.backfill_state.recovered_total >= len(during_outage)
            assert fake.errors == []

    counts = Counter(t.trade_id for t in got)
    assert set(counts) == _ids(expected), "exactly the scripted trades"
    assert all(n == 1 for n in counts.values()), f"duplicates: {[k for k, n in counts.items() if n > 1]}"
    assert {t.source for t in got} >= {"data_api", "rtds.orders_matched"}


async def test_backfill_honours_429_and_filters_by_notional() -> None:
    now = now_s()
    small = make_trade(size=10.0, price=0.5, timestamp=now - 60)          # $5: below the threshold
    large = make_trade(size=4000.0, price=0.5, timestamp=now - 60)
    async with open_fake_polymarket() as fake:
        fake.data_api.set_trades([small, large])
        fake.data_api.fail_next(1, status=429, retry_after=1)
        async with running_service(fake_env(fake)) as run:
            got = await run.collect_until(lambda got: len(got) >= 1)
            await run.settle(0.5)
        requests = fake.data_api.requests_to("/trades")
        assert len(requests) >= 2, "retried after the 429"
        assert requests[-1].param("filterType") == "CASH"
        assert float(requests[-1].param("filterAmount")) == 1000
    assert [t.trade_id for t in got] == list(_ids([large]))
