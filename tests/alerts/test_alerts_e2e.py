"""The whole service with alert outlets: the Nobel replay delivers each broadcast whale once,
also across a restart of the service."""

from __future__ import annotations

from pathlib import Path

import httpx
import trio

from actors import ServiceOptions
from config import parse_database_url
from storage import open_store
from tests.fakes.alert_outlets import open_fake_discord, open_fake_telegram
from tests.frontend._client import SAMPLE, expected_whales
from tests.frontend.test_e2e import replayed_and_quiet, service


async def test_the_replay_delivers_each_broadcast_whale_once_even_across_a_restart(tmp_path: Path) -> None:
    # 17 whales at $2,000: under the quick-start outlets' cap of 20 a minute, so every one goes
    # out alone at once (digests wait for the minute; tests/alerts/test_outlets.py covers them)
    expected = expected_whales(whale=2_000)
    assert len(expected) == 17
    workdir = tmp_path
    db = f"sqlite:///{workdir / 'insights.db'}"
    async with open_fake_discord() as discord, open_fake_telegram() as telegram:
        env = {"WHALE_TRADE_THRESHOLD": "2000", "DATABASE_URL": db, "DB_JOURNAL_PATH": str(workdir / "journal.jsonl"),
               "DISCORD_WEBHOOK_URL": discord.webhook_url, "TELEGRAM_BOT_TOKEN": telegram.token,
               "TELEGRAM_CHAT_ID": str(telegram.chat_id), "TELEGRAM_API_URL": telegram.base_url}
        for run in (1, 2):      # the second run is a restarted service replaying the same whales
            async with service(ServiceOptions(seed=run, replay=SAMPLE, speed=0), **env) as svc:
                await replayed_and_quiet(svc)
                with trio.fail_after(60):
                    while any(state.feed.items or state.current or state.folded for state in svc.alerts.states):
                        await trio.sleep(0.05)
                async with httpx.AsyncClient() as http:
                    status = (await http.get(f"http://127.0.0.1:{svc.http_stats.bound_port}/status")).json()
                    metrics = (await http.get(f"http://127.0.0.1:{svc.http_stats.bound_port}/metrics")).text
            outlets = {o["name"]: o for o in status["alerts"]}
            if run == 1:
                for name, fake in (("discord", discord), ("telegram", telegram)):
                    assert outlets[name]["sent"] == len(expected) == len(fake.accepted)
                    assert outlets[name]["folded"] == outlets[name]["undeliverable"] == 0
            else:
                assert outlets["discord"]["already_delivered"] == len(expected)
                assert outlets["discord"]["sent"] == outlets["discord"]["folded"] == 0
            assert 'polymarket_insights_alerts_sent_total{outlet="telegram"}' in metrics
            assert discord.webhook_url not in str(status) and telegram.token not in str(status)
    # every broadcast whale reached each outlet once: alone, or in a digest (20 a minute at most)
    delivered: dict[str, set[str]] = {}
    async with open_store(parse_database_url(db)) as store:
        for outlet in ("discord", "telegram"):
            delivered[outlet] = await store.delivered_alert_keys(outlet)
        assert await store.count("alert_deliveries") == 2 * len(expected)
    assert delivered["discord"] == delivered["telegram"] == {f"whale:{t}" for t in expected}
    assert discord.format_errors == [] and telegram.format_errors == []
    assert len(discord.accepted) == len(telegram.accepted) == len(expected), "nothing sent twice"
    titles = {e.get("title", "") for m in discord.accepted for e in m.embeds}
    assert any("Nobel Peace Prize" in t for t in titles)
