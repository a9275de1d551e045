"""CLOB shards, events and the catalog against the fakes."""

from __future__ import annotations

import trio

from actors.clob import ClobIngest, ClobShards, ClobSinks, clob_shard_actor
from actors.feed_health import FeedHealth
from supervision import ChildSpec, SupervisorSpec, run_supervisor
from tests.fakes import (
    fake_condition_id,
    fake_token_id,
    last_trade_price_event,
    make_gamma_event,
    make_gamma_market,
    make_trade,
    market_resolved_event,
    new_market_event,
    open_fake_polymarket,
    price_change_event,
    price_change_item,
    rtds_payload_from_trade,
)

from ._service import fake_env, running_service


def _markets(n: int, prefix: str = "m") -> list[dict]:  # type: ignore[type-arg]
    return [make_gamma_market(fake_condition_id(f"{prefix}{i}"), f"Will {prefix} {i} happen?", f"{prefix}-{i}",
                              [fake_token_id(f"{prefix}{i}y"), fake_token_id(f"{prefix}{i}n")],
                              volume_24h=float(1000 - i))
            for i in range(n)]


async def test_catalog_pages_decodes_and_shards_tokens_at_most_500_per_connection() -> None:
    markets = _markets(650)   # 1,300 tokens: three connections
    events = [make_gamma_event(f"e{i}", f"Event {i}", markets[i * 5:(i + 1) * 5], tags=["Politics"])
              for i in range(130)]
    sports = _markets(1, "nba")
    events.append(make_gamma_event("nba-lal-bos", "Lakers vs. Celtics", sports, tags=["Sports", "NBA"]))
    async with open_fake_polymarket() as fake:
        fake.gamma.set_events(events)
        fake.gamma.fail_next(1, status=429, retry_after=1)
        env = fake_env(fake, CLOB_MAX_CONNECTIONS="4")
        async with running_service(env) as run:
            tokens = {t for m in run.service.directory.markets.values() for t in m.token_ids}
            with trio.fail_after(20):
                while len(run.service.directory) < 651:
                    await trio.sleep(0.05)
                tokens = {t for m in run.service.directory.markets.values() for t in m.token_ids
                          if m.condition_id != sports[0]["conditionId"]}
                await fake.clob.wait_subscribed(tokens)
            assert not set(run.service.directory.get(sports[0]["conditionId"]).token_ids) & fake.clob.subscribed_assets, \
                "an excluded (sports) market's tokens are not watched"
            directory = run.service.directory
            market = directory.get(markets[0]["conditionId"])
            assert market is not None and market.outcomes == ("Yes", "No") and len(market.token_ids) == 2
            assert "politics" in market.tags
            assert directory.for_token(market.token_ids[1]) is market
            assert len(tokens) == 1300
            assert fake.clob.max_assets_per_connection <= 500 and not fake.clob.cap_exceeded
            assert len([c for c in fake.clob.open_connections if c.assets]) == 3
        gamma_pages = fake.gamma.requests_to("/events")
        assert gamma_pages[0].param("active") == "true" and gamma_pages[0].param("closed") == "false"
        # 130 events, 100 a page: the 429, its retry, the second page, then the empty page that ends it
        assert [r.param("offset") for r in gamma_pages] == ["0", "0", "100", "200"]  # 131 events


async def test_shards_add_and_drop_tokens_on_the_live_connection() -> None:
    shards = ClobShards(2, per_shard=3)
    health = FeedHealth("clob-0")
    ticks_send, ticks_recv = trio.open_memory_channel(100)
    ingest = ClobIngest(ClobSinks(ticks=ticks_send), health)
    async with open_fake_polymarket() as fake:
        children = [ChildSpec(id=f"clob-{i}", run=clob_shard_actor(i, fake.clob_url, shards, ingest))
                    for i in range(2)]
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            await nursery.start(lambda task_status: run_supervisor(
                SupervisorSpec(), children, stop=stop, task_status=task_status))
            shards.update({"a", "b"})
            with trio.fail_after(10):
                await fake.clob.wait_subscribed({"a", "b"})
            shards.update({"a", "b", "c", "d", "e"})     # d, e overflow to the second connection
            with trio.fail_after(10):
                await fake.clob.wait_subscribed({"a", "b", "c", "d", "e"})
            first = [c for c in fake.clob.open_connections if "a" in c.assets][0]
            shards.update({"b", "c", "d", "e"})          # drop a: unsubscribe on the same connection
            with trio.fail_after(10):
                await fake.clob.wait_until(lambda: "a" not in fake.clob.subscribed_assets)
            assert first.is_open
            assert fake.clob.connections_accepted == 2
            # a dropped connection reconnects and resubscribes to its whole shard
            await fake.clob.drop_connections([first])
            with trio.fail_after(10):
                await fake.clob.wait_until(lambda: fake.clob.connections_accepted == 3)
                await fake.clob.wait_subscribed({"b", "c", "d", "e"})
            assert "a" not in fake.clob.subscribed_assets
            ops = [m for c in fake.clob.connections[:2] for m in c.received if '"operation"' in m]
            assert any('"unsubscribe"' in m for m in ops) and any('"subscribe"' in m for m in ops)
            # the initial dump (a book per asset) became ticks
            with trio.fail_after(10):
                tick = await ticks_recv.receive()
                tick = tick[0] if isinstance(tick, list) else tick   # a multi-asset frame comes as one list
            assert tick.asset_id in {"a", "b", "c", "d", "e"} and tick.best_bid is not None
            stop.set()
    assert health.malformed_total == 0


async def test_clob_events_reach_market_state_catalog_and_merger() -> None:
    markets = _markets(2, "x")
    cid, token = markets[0]["conditionId"], fake_token_id("x0y")
    async with open_fake_polymarket() as fake:
        fake.gamma.set_events([make_gamma_event("x", "X", markets, tags=["Politics"])])
        async with running_service(fake_env(fake)) as run:
            await fake.clob.wait_subscribed({token})
            await fake.rtds.wait_subscribed()
            # RTDS is up and talking: a CLOB trade must not be emitted (RTDS reports the same fill)
            await fake.rtds.send_trade(rtds_payload_from_trade(make_trade(size=1.0)), ("orders_matched",))
            await run.collect_until(lambda got: len(got) >= 1)
            await fake.clob.send_event([
                price_change_event(cid, [price_change_item(token, "0.61", "100", best_bid="0.6", best_ask="0.62")]),
                last_trade_price_event(token, cid, "0.61", "5000", transaction_hash="0x" + "cd" * 32),
            ])
            with trio.fail_after(10):
                while True:
                    got = await run.ticks.receive()
                    ticks = got if isinstance(got, list) else [got]
                    tick = next((t for t in ticks if t.best_bid == 0.6), None)
                    if tick is not None:
                        break
            assert tick.best_ask == 0.62 and tick.condition_id == cid
            # a new market and a resolution go to the catalog
            new_cid, new_tokens = fake_condition_id("new"), [fake_token_id("new-y"), fake_token_id("new-n")]
            await fake.clob.send_event(new_market_event(new_cid, "Brand new?", "brand-new", new_tokens), to_all=True)
            await fake.clob.send_event(market_resolved_event(cid, markets[0]["question"], markets[0]["slug"],
                                                             [token, fake_token_id("x0n")], token, "Yes"), to_all=True)
            with trio.fail_after(10):
                while new_cid not in run.service.directory.markets or cid not in run.service.directory.resolutions:
                    await trio.sleep(0.02)
            assert run.service.directory.resolutions[cid].winning_asset_id == token
            assert run.service.directory.get(new_cid).question == "Brand new?"  # type: ignore[union-attr]
            await run.settle(0.5)
            assert [t.source for t in run.received] == ["rtds.orders_matched"]
            assert run.service.merge_stats.clob_suppressed_total == 1

            # RTDS goes quiet beyond its staleness limit: CLOB trades now stand in
            await fake.rtds.drop_connections()
            fake.rtds.go_silent()
            run.service.rtds_health.last_frame_at = 0.0
            run.service.rtds_health.connected = False
            # (the resolved market's tokens were dropped from the subscription: use the other one)
            other_cid, other_token = markets[1]["conditionId"], fake_token_id("x1y")
            assert other_token in fake.clob.subscribed_assets and token not in fake.clob.subscribed_assets
            await fake.clob.send_event(last_trade_price_event(other_token, other_cid, "0.7", "3000",
                                                              transaction_hash="0x" + "ef" * 32))
            got = await run.collect_until(lambda got: len(got) >= 2)
            assert got[-1].source == "clob" and got[-1].price == 0.7 and got[-1].wallet == ""


async def test_trade_for_unknown_market_is_looked_up() -> None:
    known = _markets(1, "k")
    unknown = make_gamma_market(fake_condition_id("late"), "Late market?", "late", ["71", "72"], tags=["Politics"])
    async with open_fake_polymarket() as fake:
        fake.gamma.set_events([make_gamma_event("k", "K", known)])
        fake.gamma.set_markets([unknown])
        async with running_service(fake_env(fake)) as run:
            await fake.rtds.wait_subscribed()
            trade = make_trade(conditionId=unknown["conditionId"], asset="71", size=3000.0, price=0.5)
            await fake.rtds.send_trade(rtds_payload_from_trade(trade), ("orders_matched",))
            await run.collect_until(lambda got: len(got) >= 1)
            with trio.fail_after(10):
                while unknown["conditionId"] not in run.service.directory.markets:
                    await trio.sleep(0.02)
        lookups = fake.gamma.requests_to("/markets")
        assert lookups and lookups[0].params["condition_ids"] == [unknown["conditionId"]]
