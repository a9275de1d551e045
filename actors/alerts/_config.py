"""Alert outlets from the environment (quick start) or a TOML file (full control).

Every problem is a :class:`config.ConfigError` naming the place: ``invalid ALERTS_FILE:
alerts.toml: outlets[2].min_amount: expected a number, got 'lots'`` — one line, exit 2, like
every other setting.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from datetime import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

from config import ConfigError
from protocols.alerts import OUTLET_KINDS, TELEGRAM_DEFAULT_BASE_URL

from ._rules import ALERT_TYPES, AlertRules, QuietHours

TELEGRAM_API_URL = TELEGRAM_DEFAULT_BASE_URL


@attrs.frozen
class OutletConfig:
    """One alert outlet.

    Attributes:
        name: Unique; keys the outlet's delivery record (renaming an outlet starts a new record).
        kind: ``webhook``, ``discord``, ``slack`` or ``telegram``.
        url: The webhook URL (webhook/Discord/Slack: it embeds a secret), or Telegram's API base.
        token: Telegram bot token.
        chat_id: Telegram chat id (or ``@channel``).
        secret: Webhook HMAC secret (``X-Signature``).
        max_per_minute: Alerts sent one by one per minute; beyond, they are folded into digests.
        max_attempts: Tries per alert (5xx, timeouts, 429) before it is recorded undeliverable.
        cool_down: Seconds an outlet pauses after 401/403/404 (bad token, deleted webhook).
        timeout: Seconds per HTTP request.
        queue_size: Alerts waiting for this outlet at most; beyond, they are recorded
            undeliverable (``overflow``) rather than held without bound.
    """

    name: str
    kind: str
    url: str = attrs.field(repr=False)
    rules: AlertRules = attrs.field(factory=AlertRules)
    token: str | None = attrs.field(default=None, repr=False)
    chat_id: str | None = None
    secret: str | None = attrs.field(default=None, repr=False)
    max_per_minute: int = 20
    max_attempts: int = 5
    cool_down: float = 600.0
    timeout: float = 10.0
    queue_size: int = 1000

    def describe(self) -> str:
        """For logs and ``/status``: the kind and the host only (webhook URLs embed secrets)."""
        return f"{self.kind} via {urlsplit(self.url).hostname or '?'}"

    def secrets(self) -> list[str]:
        """Values to redact from logs: webhook URLs (their path is a credential), tokens, secrets."""
        values = [v for v in (self.token, self.secret) if v]
        if self.kind != "telegram":
            values.append(self.url)
            path = urlsplit(self.url).path
            if len(path) > 8:
                values.append(path)
        return values


def outlets_from_env(*, webhook_url: str | None, webhook_secret: str | None, discord_url: str | None,
                     slack_url: str | None, telegram_token: str | None, telegram_chat_id: str | None,
                     telegram_api_url: str = TELEGRAM_API_URL) -> list[OutletConfig]:
    """The quick-start outlets: each configured one sends every broadcast whale trade."""
    outlets = []
    if webhook_url:
        outlets.append(OutletConfig("webhook", "webhook", webhook_url, secret=webhook_secret))
    if discord_url:
        outlets.append(OutletConfig("discord", "discord", discord_url))
    if slack_url:
        outlets.append(OutletConfig("slack", "slack", slack_url))
    if telegram_token or telegram_chat_id:
        if not (telegram_token and telegram_chat_id):
            missing = "TELEGRAM_CHAT_ID" if telegram_token else "TELEGRAM_BOT_TOKEN"
            raise ConfigError(missing, "Telegram alerts need both TELEGRAM_BOT_TOKEN and TELEGRAM_CHAT_ID")
        outlets.append(OutletConfig("telegram", "telegram", telegram_api_url, token=telegram_token,
                                    chat_id=telegram_chat_id))
    return outlets


# -- the TOML file ---------------------------------------------------------------------------------

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class _Place:
    """Where in the file a value is, for error messages."""

    def __init__(self, file: str, env: Mapping[str, str]) -> None:
        self.file = file
        self.env = env

    def fail(self, where: str, problem: str) -> ConfigError:
        return ConfigError("ALERTS_FILE", f"{self.file}: {where}: {problem}")

    def text(self, table: dict[str, Any], key: str, where: str, *, required: bool = False) -> str | None:
        value = table.get(key)
        if value is None:
            if required:
                raise self.fail(where, f"{key} is required")
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"{where}.{key}", f"expected a non-empty string, got {value!r}")

        def expand(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in self.env:
                raise self.fail(f"{where}.{key}", f"environment variable {name} is not set")
            return self.env[name]

        return _ENV_REF.sub(expand, value.strip())

    def strings(self, table: dict[str, Any], key: str, where: str, *, allowed: tuple[str, ...] = ()) -> tuple[str, ...]:
        value = table.get(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise self.fail(f"{where}.{key}", f"expected a list of strings, got {value!r}")
        if allowed:
            for v in value:
                if v not in allowed:
                    raise self.fail(f"{where}.{key}", f"{v!r} is not one of {', '.join(allowed)}")
        return tuple(v.strip() for v in value)

    def number(self, table: dict[str, Any], key: str, where: str, default: float, *, minimum: float = 0.0,
               integer: bool = False) -> Any:
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or (integer and not isinstance(value, int)):
            kind = "an integer" if integer else "a number"
            raise self.fail(f"{where}.{key}", f"expected {kind}, got {value!r}")
        if value < minimum or value != value:
            raise self.fail(f"{where}.{key}", f"expected at least {minimum:g}, got {value!r}")
        return value

    def clock(self, value: Any, where: str) -> time:
        if not isinstance(value, str) or not re.fullmatch(r"\d{1,2}:\d{2}", value):
            raise self.fail(where, f"expected HH:MM, got {value!r}")
        hours, minutes = (int(x) for x in value.split(":"))
        if hours > 23 or minutes > 59:
            raise self.fail(where, f"expected HH:MM, got {value!r}")
        return time(hours, minutes)


_OUTLET_KEYS = frozenset({
    "name", "kind", "url", "token", "chat_id", "secret", "types", "min_amount", "tiers", "sides", "markets",
    "exclude_markets", "categories", "exclude_categories", "title_words", "exclude_title_words", "wallets",
    "quiet_hours", "max_per_minute", "max_attempts", "cool_down_seconds", "timeout_seconds", "queue_size"})


def _outlet(raw: Any, index: int, place: _Place) -> OutletConfig:
    where = f"outlets[{index}]"
    if not isinstance(raw, dict):
        raise place.fail(where, "expected a table ([[outlets]])")
    unknown = sorted(set(raw) - _OUTLET_KEYS)
    if unknown:
        raise place.fail(where, f"unknown key {unknown[0]!r}; allowed: {', '.join(sorted(_OUTLET_KEYS))}")
    kind = place.text(raw, "kind", where, required=True)
    if kind not in OUTLET_KINDS:
        raise place.fail(f"{where}.kind", f"expected one of {', '.join(OUTLET_KINDS)}, got {kind!r}")
    name = place.text(raw, "name", where) or kind
    if kind == "telegram":
        url = place.text(raw, "url", where) or TELEGRAM_API_URL
        token = place.text(raw, "token", where, required=True)
        chat_id = place.text(raw, "chat_id", where, required=True)
    else:
        url, token, chat_id = place.text(raw, "url", where, required=True), None, None
    assert url is not None
    if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
        raise place.fail(f"{where}.url", "expected an http(s) URL")
    secret = place.text(raw, "secret", where)
    if secret is not None and kind != "webhook":
        raise place.fail(f"{where}.secret", "only webhook outlets sign their requests")
    quiet = None
    if "quiet_hours" in raw:
        q = raw["quiet_hours"]
        if not isinstance(q, dict) or set(q) - {"start", "end", "timezone"}:
            raise place.fail(f"{where}.quiet_hours", 'expected { start = "22:00", end = "07:00", timezone = "UTC" }')
        zone_name = q.get("timezone", "UTC")
        try:
            zone = ZoneInfo(zone_name)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise place.fail(f"{where}.quiet_hours.timezone", f"unknown time zone {zone_name!r}") from None
        quiet = QuietHours(place.clock(q.get("start"), f"{where}.quiet_hours.start"),
                           place.clock(q.get("end"), f"{where}.quiet_hours.end"), zone)
    rules = AlertRules(
        types=place.strings(raw, "types", where, allowed=ALERT_TYPES) or ("whale_trade",),
        min_amount=float(place.number(raw, "min_amount", where, 0.0)),
        tiers=place.strings(raw, "tiers", where, allowed=("whale", "big_whale", "mega_whale")),
        sides=place.strings(raw, "sides", where),
        markets=place.strings(raw, "markets", where),
        exclude_markets=place.strings(raw, "exclude_markets", where),
        categories=place.strings(raw, "categories", where),
        exclude_categories=place.strings(raw, "exclude_categories", where),
        title_words=place.strings(raw, "title_words", where),
        exclude_title_words=place.strings(raw, "exclude_title_words", where),
        wallets=place.strings(raw, "wallets", where),
        quiet_hours=quiet)
    return OutletConfig(
        name=name, kind=kind, url=url, rules=rules, token=token, chat_id=chat_id, secret=secret,
        max_per_minute=place.number(raw, "max_per_minute", where, 20, minimum=1, integer=True),
        max_attempts=place.number(raw, "max_attempts", where, 5, minimum=1, integer=True),
        cool_down=float(place.number(raw, "cool_down_seconds", where, 600.0, minimum=1)),
        timeout=float(place.number(raw, "timeout_seconds", where, 10.0, minimum=0.1)),
        queue_size=place.number(raw, "queue_size", where, 1000, minimum=1, integer=True))


def load_alerts_file(path: Path, env: Mapping[str, str] | None = None) -> list[OutletConfig]:
    """The outlets of a TOML file (``[[outlets]]`` tables; ``${VAR}`` is read from ``env``).

    Raises:
        ConfigError: the file is missing, not TOML, or an outlet is invalid (the message names
            the place and the problem).
    """
    place = _Place(str(path), os.environ if env is None else env)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("ALERTS_FILE", f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("ALERTS_FILE", f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("ALERTS_FILE", f"{path}: not valid TOML: {exc}") from None
    unknown = sorted(set(data) - {"outlets"})
    if unknown:
        raise place.fail(unknown[0], "unknown table; the file holds [[outlets]] tables")
    raw = data.get("outlets", [])
    if not isinstance(raw, list) or not raw:
        raise place.fail("outlets", "expected at least one [[outlets]] table")
    outlets = [_outlet(item, index, place) for index, item in enumerate(raw, start=1)]
    return _unique(outlets, place)


def _unique(outlets: list[OutletConfig], place: _Place | None = None) -> list[OutletConfig]:
    seen: set[str] = set()
    for outlet in outlets:
        if outlet.name in seen:
            problem = f"two outlets are named {outlet.name!r}; give each a unique name"
            raise place.fail("outlets", problem) if place else ConfigError("ALERTS_FILE", problem)
        seen.add(outlet.name)
    return outlets


def all_outlets(env_outlets: list[OutletConfig], file_outlets: list[OutletConfig]) -> list[OutletConfig]:
    """The environment's quick-start outlets and the file's, names unique across both."""
    return _unique([*env_outlets, *file_outlets])
