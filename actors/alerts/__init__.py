"""Alert outlets: webhook, Discord, Slack and Telegram, one supervised actor each.

Each configured outlet gets an :class:`AlertFeed` hung off the hub (a bounded queue the hub
fills without awaiting) and an actor (:func:`outlet_actor`) that applies the outlet's rules,
folds bursts into digests, retries, pauses on bad credentials and records every outcome in the
``alert_deliveries`` table.  :func:`outlets_from_settings` reads the quick-start variables and
``ALERTS_FILE``; :func:`build_alerts` makes the ``alerts`` subtree.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import httpx
import trio

from storage import ALERTS_SCHEMA_VERSION, open_store
from supervision import Backoff, ChildSpec, Strategy, SupervisorSpec, supervisor_child

from ._config import OutletConfig, all_outlets, load_alerts_file, outlets_from_env
from ._outlet import LoadDelivered, OutletState, OutletStats, outlet_actor
from ._rules import AlertRules, QuietHours

if TYPE_CHECKING:
    from config import DatabaseUrl, Settings

    from ..db_writer import DbStats

    from ..directory import MarketDirectory
    from ..hub import HubState


def outlets_from_settings(settings: Settings, environ: Mapping[str, str] | None = None) -> list[OutletConfig]:
    """Every configured outlet: the quick-start variables', then ``ALERTS_FILE``'s.

    Raises:
        config.ConfigError: an invalid file or a half-configured outlet (one line, names the place).
    """
    env_outlets = outlets_from_env(
        webhook_url=settings.alert_webhook_url, webhook_secret=settings.alert_webhook_secret,
        discord_url=settings.discord_webhook_url, slack_url=settings.slack_webhook_url,
        telegram_token=settings.telegram_bot_token, telegram_chat_id=settings.telegram_chat_id,
        telegram_api_url=settings.telegram_api_url)
    file_outlets = (load_alerts_file(Path(settings.alerts_file).expanduser(), os.environ if environ is None else environ)
                    if settings.alerts_file else [])
    return all_outlets(env_outlets, file_outlets)


def delivered_loader(url: DatabaseUrl | None, db_stats: DbStats, *, days: float = 7.0,
                     wall_clock: Callable[[], float] = time.time) -> LoadDelivered:
    """Reads the alert keys an outlet delivered in the last ``days`` (its delivery record).

    Waits (up to a minute) for the DB writer to have the schema in place, then opens its own
    short-lived connection.  Raises what :func:`storage.open_store` raises when the database
    cannot be read (the outlet then carries on without the record, and says so).
    """

    async def load(outlet: str) -> set[str]:
        await db_stats.wait_for_schema(ALERTS_SCHEMA_VERSION)
        async with open_store(url) as store:
            return await store.delivered_alert_keys(outlet, since=wall_clock() - days * 86_400)

    return load


def default_alert_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(follow_redirects=False)


@attrs.define
class AlertsPart:
    """The alerts subtree and the per-outlet state that outlives its actors."""

    child: ChildSpec
    states: list[OutletState]


def build_alerts(
    outlets: list[OutletConfig],
    hub: HubState,
    *,
    directory: MarketDirectory,
    store: trio.MemorySendChannel[Any] | None,
    load_delivered: LoadDelivered | None,
    http_client: Callable[[], httpx.AsyncClient] = default_alert_client,
    wall_clock: Callable[[], float] = time.time,
    rng: random.Random | None = None,
    version: str = "0",
) -> AlertsPart:
    """One actor per outlet under an ``alerts`` supervisor; each outlet's feed is registered
    with the hub here (so nothing broadcast after start-up is missed while actors start)."""
    rng = rng or random.Random()
    states: list[OutletState] = []
    children: list[ChildSpec] = []
    for config in outlets:
        state = OutletState.create(config)
        hub.feeds.append(state.feed)
        states.append(state)
        children.append(ChildSpec(
            id=f"outlet-{config.name}", backoff=Backoff(min=0.5, max=30), shutdown=2,
            run=outlet_actor(state, directory=directory, store=store, load_delivered=load_delivered,
                             http_client=http_client, wall_clock=wall_clock, rng=random.Random(rng.random()),
                             version=version)))
    # an outlet failing over and over (a bug) must not take the rest of the service with it
    spec = SupervisorSpec(Strategy.ONE_FOR_ONE, intensity=30, period=60)
    return AlertsPart(child=supervisor_child("alerts", spec, children), states=states)


__all__ = ["AlertRules", "AlertsPart", "OutletConfig", "OutletState", "OutletStats", "QuietHours", "build_alerts",
           "delivered_loader", "load_alerts_file", "outlets_from_settings"]
