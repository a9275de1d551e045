"""Outlet rules and the alerts file, on hand-checked cases."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from actors.alerts._config import load_alerts_file, outlets_from_env
from actors.alerts._rules import AlertRules, QuietHours
from config import ConfigError
from protocols.polymarket import MarketInfo


def whale(**changes: Any) -> dict[str, Any]:
    data = {"market": "Will María Corina Machado win the Nobel Peace Prize in 2025?", "side": "YES", "action": "BUY",
            "amount": 24_150.5, "price": 0.71, "tier": "big_whale", "condition_id": "0xabc", "slug": "machado-nobel",
            "event_slug": "nobel-peace-prize-winner-2025", "wallet": "0xW1"}
    data.update(changes)
    return data


def market(**changes: Any) -> MarketInfo:
    fields: dict[str, Any] = dict(condition_id="0xabc", question="Will María Corina Machado win the Nobel?",
                                  slug="machado-nobel", event_slug="nobel-peace-prize-winner-2025", event_title="Nobel",
                                  description="", category="Politics", tags=("politics", "nobel"), end_date=None,
                                  outcomes=("Yes", "No"), token_ids=("1", "2"), volume_24h=0.0, active=True,
                                  closed=False, outcome_prices=(0.7, 0.3))
    fields.update(changes)
    return MarketInfo(**fields)


NOON = datetime(2026, 11, 24, 12, 0, tzinfo=UTC).timestamp()
NIGHT = datetime(2026, 11, 24, 23, 30, tzinfo=UTC).timestamp()


@pytest.mark.parametrize("rules,data,reason", [
    (AlertRules(), whale(), None),
    (AlertRules(), whale(), None),
    (AlertRules(types=("prediction",)), whale(), "type"),
    (AlertRules(min_amount=50_000), whale(), "min_amount"),
    (AlertRules(min_amount=24_150.5), whale(), None),                        # inclusive
    (AlertRules(tiers=("mega_whale",)), whale(), "tier"),
    (AlertRules(tiers=("BIG_WHALE",)), whale(), None),
    (AlertRules(sides=("no",)), whale(), "side"),
    (AlertRules(sides=("buy",)), whale(), None),                              # action matches too
    (AlertRules(markets=("0xother",)), whale(), "market"),
    (AlertRules(markets=("nobel-peace-prize-winner-2025",)), whale(), None),  # event slug
    (AlertRules(exclude_markets=("MACHADO-NOBEL",)), whale(), "excluded_market"),
    (AlertRules(categories=("sports",)), whale(), "category"),
    (AlertRules(categories=("nobel",)), whale(), None),                       # a tag
    (AlertRules(exclude_categories=("politics",)), whale(), "excluded_category"),
    (AlertRules(title_words=("nobel peace",)), whale(), None),
    (AlertRules(title_words=("peace prize 2025",)), whale(), "title"),
    (AlertRules(title_words=("Nob",)), whale(), "title"),                     # whole words only
    (AlertRules(exclude_title_words=("maría",)), whale(), "excluded_title"),
    (AlertRules(exclude_title_words=("corin",)), whale(), None),
    (AlertRules(min_amount=1e9, wallets=("0xw1",)), whale(), None),           # watch-list beats the rules
])
def test_decisions(rules: AlertRules, data: dict[str, Any], reason: str | None) -> None:
    assert rules.decide("whale_trade", data, market(), NOON) == reason


def test_quiet_hours_wrap_midnight_in_their_time_zone_and_spare_the_watch_list() -> None:
    from datetime import time
    from zoneinfo import ZoneInfo

    quiet = QuietHours(time(22, 0), time(7, 0), ZoneInfo("Europe/Paris"))    # UTC+1 in November
    rules = AlertRules(quiet_hours=quiet, wallets=("0xvip",))
    assert rules.decide("whale_trade", whale(), market(), NIGHT) == "quiet_hours"      # 00:30 in Paris
    assert rules.decide("whale_trade", whale(), market(), NOON) is None                # 13:00 in Paris
    assert rules.decide("whale_trade", whale(wallet="0xVIP"), market(), NIGHT) is None
    assert quiet.contains(datetime(2026, 11, 24, 20, 59, tzinfo=UTC).timestamp()) is False   # 21:59 Paris
    assert quiet.contains(datetime(2026, 11, 24, 21, 0, tzinfo=UTC).timestamp()) is True     # 22:00 Paris
    assert quiet.contains(datetime(2026, 11, 25, 6, 0, tzinfo=UTC).timestamp()) is False     # 07:00 Paris


def test_predictions_have_no_tier_or_side() -> None:
    rules = AlertRules(types=("prediction",), tiers=("mega_whale",), sides=("NO",))
    prediction = {"condition_id": "0xabc", "title": "Will María Corina Machado win the Nobel?", "outcome": "YES"}
    assert rules.decide("prediction", prediction, market(), NOON) is None


EXAMPLE = '''
[[outlets]]
name = "desk"
kind = "discord"
url = "${DESK_HOOK}"
types = ["whale_trade", "prediction"]
min_amount = 50000
tiers = ["big_whale", "mega_whale"]
exclude_categories = ["crypto", "sports"]
title_words = ["election", "nobel"]
wallets = ["0xabc"]
quiet_hours = { start = "22:00", end = "07:00", timezone = "Europe/Paris" }
max_per_minute = 10

[[outlets]]
kind = "telegram"
token = "123:abc"
chat_id = "@whales"

[[outlets]]
name = "ops-hook"
kind = "webhook"
url = "https://hooks.example.com/pmi"
secret = "s3cret"
'''


def test_the_example_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "alerts.toml"
    path.write_text(EXAMPLE)
    desk, telegram, hook = load_alerts_file(path, env={"DESK_HOOK": "https://discord.com/api/webhooks/1/tok"})
    assert desk.name == "desk" and desk.kind == "discord" and desk.url == "https://discord.com/api/webhooks/1/tok"
    assert desk.rules.types == ("whale_trade", "prediction") and desk.rules.min_amount == 50_000
    assert desk.rules.quiet_hours is not None and desk.max_per_minute == 10
    assert telegram.name == "telegram" and telegram.url == "https://api.telegram.org" and telegram.chat_id == "@whales"
    assert hook.secret == "s3cret" and hook.rules.types == ("whale_trade",)
    assert "tok" not in repr(desk) and "s3cret" not in repr(hook) and "123:abc" not in repr(telegram)
    assert desk.describe() == "discord via discord.com"
    assert "https://discord.com/api/webhooks/1/tok" in desk.secrets()


@pytest.mark.parametrize("body,expected", [
    ("[[outlets]]\nkind = 'pigeon'\nurl = 'https://x.example'", "outlets[1].kind: expected one of webhook"),
    ("[[outlets]]\nkind = 'discord'", "outlets[1]: url is required"),
    ("[[outlets]]\nkind = 'slack'\nurl = 'https://x.example'\nmin_amount = 'lots'",
     "outlets[1].min_amount: expected a number, got 'lots'"),
    ("[[outlets]]\nkind = 'slack'\nurl = 'https://x.example'\nmax_per_minute = 0",
     "outlets[1].max_per_minute: expected at least 1"),
    ("[[outlets]]\nkind = 'slack'\nurl = 'https://x.example'\ntypes = ['whale_trade', 'gossip']",
     "outlets[1].types: 'gossip' is not one of whale_trade, prediction"),
    ("[[outlets]]\nkind = 'slack'\nurl = 'https://x.example'\nquiet_hours = { start = '25:00', end = '07:00' }",
     "outlets[1].quiet_hours.start: expected HH:MM, got '25:00'"),
    ("[[outlets]]\nkind = 'slack'\nurl = 'https://x.example'\nquiet_hours = { start = '22:00', end = '07:00', "
     "timezone = 'Mars/Olympus' }", "outlets[1].quiet_hours.timezone: unknown time zone 'Mars/Olympus'"),
    ("[[outlets]]\nkind = 'slack'\nurl = '${NOPE}'", "outlets[1].url: environment variable NOPE is not set"),
    ("[[outlets]]\nkind = 'slack'\nurl = 'ftp://x.example'", "outlets[1].url: expected an http(s) URL"),
    ("[[outlets]]\nkind = 'slack'\nurl = 'https://x.example'\ncolour = 'red'", "outlets[1]: unknown key 'colour'"),
    ("[[outlets]]\nkind = 'slack'\nurl = 'https://x.example'\nsecret = 'x'",
     "outlets[1].secret: only webhook outlets sign"),
    ("[[outlets]]\nkind = 'telegram'\ntoken = 't'", "outlets[1]: chat_id is required"),
    ("[[outlets]]\nkind = 'slack'\nurl = 'https://a.example'\n[[outlets]]\nkind = 'slack'\nurl = 'https://b.example'",
     "two outlets are named 'slack'"),
    ("[[outlet]]\nkind = 'slack'", "outlet: unknown table"),
    ("[[outlets]\nkind =", "not valid TOML"),
    ("", "expected at least one [[outlets]] table"),
])
def test_invalid_files_stop_with_one_line_naming_the_place(tmp_path: Path, body: str, expected: str) -> None:
    path = tmp_path / "alerts.toml"
    path.write_text(body)
    with pytest.raises(ConfigError) as info:
        load_alerts_file(path, env={})
    message = str(info.value)
    assert message.startswith(f"invalid ALERTS_FILE: {path}") and expected in message, message
    assert "\n" not in message


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_alerts_file(tmp_path / "nope.toml", env={})


def test_quick_start_outlets_from_the_environment() -> None:
    outlets = outlets_from_env(webhook_url="https://h.example/x", webhook_secret="k", discord_url=None,
                               slack_url="https://hooks.slack.com/services/T/B/X", telegram_token="1:t",
                               telegram_chat_id="42")
    assert [(o.name, o.kind) for o in outlets] == [("webhook", "webhook"), ("slack", "slack"), ("telegram", "telegram")]
    assert all(o.rules.types == ("whale_trade",) for o in outlets)
    with pytest.raises(ConfigError, match="TELEGRAM_CHAT_ID"):
        outlets_from_env(webhook_url=None, webhook_secret=None, discord_url=None, slack_url=None,
                         telegram_token="1:t", telegram_chat_id=None)
