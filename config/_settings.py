"""The service's settings: one typed attrs class, loaded from the environment and ``.env``.

Each field declares its environment variable, parser, default and whether it is a secret;
:func:`load_settings` validates everything at start-up and raises one :class:`ConfigError`
naming the variable and what is allowed.  To add a setting, add one field here (and a line
in the README's configuration table).
"""

from __future__ import annotations

import os
import string
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

import attrs
from dotenv import dotenv_values

from . import keywords
from ._errors import ConfigError
from ._parse import (
    DatabaseUrl,
    choice,
    integer,
    name_list,
    number,
    optional_text,
    parse_bool,
    parse_database_url,
    parse_host,
    parse_port,
    text,
    url,
    word_list,
    origin_list,
)


def setting(env: str, parse: Callable[[str], Any], default: Any, *, secret: bool = False, doc: str = "") -> Any:
    """Declare one setting: the field's value comes from ``env`` parsed by ``parse``."""
    return attrs.field(default=default, metadata={"env": env, "parse": parse, "secret": secret, "doc": doc})


DEFAULT_SWARM_MODELS = ("openai/gpt-4o-mini", "anthropic/claude-3.5-haiku", "google/gemini-2.0-flash-exp")

#: Placeholders a user prompt template (``AI_USER_PROMPT_FILE``) may use, as ``$name`` or ``${name}``.
AI_PROMPT_FIELDS = ("today", "question", "description", "end_date", "outcomes", "first_outcome", "event_title",
                    "category", "whale_flow", "market_price", "market_price_line")


def prompt_file(fields: Collection[str] | None = None) -> Callable[[str], str]:
    """A readable, non-empty UTF-8 text file; with ``fields``, a ``string.Template`` whose
    placeholders are all among them.  The value is the path (the file is read when the AI starts)."""

    def parse(raw: str) -> str:
        path = Path(raw.strip()).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"expected a readable UTF-8 text file ({type(exc).__name__})") from None
        if not text.strip():
            raise ValueError("the prompt file is empty")
        if fields is not None:
            template = string.Template(text)
            if not template.is_valid():
                raise ValueError("the template has a stray $ (write $$ for a literal dollar sign)")
            unknown = sorted(set(template.get_identifiers()) - set(fields))
            if unknown:
                raise ValueError(f"unknown placeholder ${unknown[0]}; known: {', '.join('$' + f for f in fields)}")
        return str(path)

    return parse


@attrs.frozen
class Settings:
    """Effective configuration of one service run (immutable)."""

    # storage
    database_url: DatabaseUrl | None = setting(
        "DATABASE_URL", parse_database_url, None, secret=True,
        doc="mysql://user:pass@host:port/db (MySQL/MariaDB/TiDB) or sqlite:///path; unset: SQLite file in the working directory")
    # 20,000 rather than 2,000: under sustained load SQLite takes trade rows ~1.7x faster (each
    # commit rewrites every index page it dirtied, and random trade ids dirty most of the index
    # whatever the batch size) and MariaDB as fast; at ordinary rates DB_BATCH_SECONDS closes a
    # batch long before it is full (bench/README.md, "Storage")
    db_batch_rows: int = setting(
        "DB_BATCH_ROWS", integer(minimum=1, maximum=100_000), 20_000, doc="most rows per database transaction")
    db_batch_seconds: float = setting(
        "DB_BATCH_SECONDS", number(minimum=0), 0.5, doc="longest a row waits for its batch to fill")
    db_memory_limit_rows: int = setting(
        "DB_MEMORY_LIMIT_ROWS", integer(minimum=1, maximum=10_000_000), 50_000,
        doc="rows held in memory; beyond, producers wait while the database takes rows, "
            "and rows go to the journal file while it is away")
    db_journal_path: str = setting(
        "DB_JOURNAL_PATH", text, "polymarket_insights.journal.jsonl",
        doc="append-only journal for rows the database could not take yet (replayed, then removed)")
    # thresholds
    trade_notional_threshold: float = setting(
        "TRADE_NOTIONAL_THRESHOLD", number(minimum=0), 1000.0, doc="keep trades with size x price >= this (USDC)")
    whale_trade_threshold: float = setting(
        "WHALE_TRADE_THRESHOLD", number(minimum=0), 10000.0, doc="a kept trade >= this (USDC) is a whale")
    ignore_price_threshold: float = setting(
        "IGNORE_PRICE_THRESHOLD", number(minimum=0, maximum=0.5, max_exclusive=True), 0.05,
        doc="whales priced within this of 0 or 1 are not broadcast")
    ignore_crypto_keywords: tuple[str, ...] = setting(
        "IGNORE_CRYPTO_KEYWORDS", word_list, keywords.IGNORE_CRYPTO_KEYWORDS,
        doc="comma list; whole-word title fallback for crypto markets")
    ignore_sports_keywords: tuple[str, ...] = setting(
        "IGNORE_SPORTS_KEYWORDS", word_list, keywords.IGNORE_SPORTS_KEYWORDS,
        doc="comma list; whole-word title fallback for sports markets")
    # frontend WebSocket server
    ws_server_host: str = setting("WS_SERVER_HOST", parse_host, "localhost", doc="WebSocket feed address")
    ws_server_port: int = setting("WS_SERVER_PORT", parse_port, 8765, doc="WebSocket feed port")
    ws_auth_token: str | None = setting(
        "WS_AUTH_TOKEN", optional_text, None, secret=True, doc="if set, clients must present it")
    ws_max_connections: int = setting(
        "WS_MAX_CONNECTIONS", integer(minimum=1, maximum=100_000), 2000, doc="clients at most")
    ws_allowed_origins: tuple[str, ...] = setting(
        "WS_ALLOWED_ORIGINS", origin_list, (), doc="comma list of browser origins allowed (empty: any)")
    ws_max_message_bytes: int = setting(
        "WS_MAX_MESSAGE_BYTES", integer(minimum=256, maximum=1 << 24), 65536, doc="largest client message")
    ws_queue_size: int = setting(
        "WS_QUEUE_SIZE", integer(minimum=10, maximum=1_000_000), 1000,
        doc="messages queued per client before it is lagged")
    ws_ring_size: int = setting(
        "WS_RING_SIZE", integer(minimum=10, maximum=10_000_000), 10000, doc="broadcasts kept for resume")
    ws_lag_limit: float = setting(
        "WS_LAG_LIMIT_SECONDS", number(minimum=0, min_exclusive=True), 10.0,
        doc="disconnect a client that stays lagged this long")
    ws_heartbeat_interval: float = setting(
        "WS_HEARTBEAT_INTERVAL", number(minimum=1), 20.0, doc="seconds between WebSocket pings to clients")
    ws_idle_timeout: float = setting(
        "WS_IDLE_TIMEOUT", number(minimum=1), 60.0, doc="close a client that does not answer a ping this long")
    market_update_interval: float = setting(
        "MARKET_UPDATE_INTERVAL", number(minimum=0), 1.0, doc="at most one market_update per market this often")
    market_filter_hook: str | None = setting(
        "MARKET_FILTER_HOOK", optional_text, None,
        doc="module:function(market) -> bool, your own exclusion rule (the seed's should_ignore_market)")
    # HTTP side
    http_host: str = setting("HTTP_HOST", parse_host, "localhost", doc="health, metrics and dashboard address")
    http_port: int = setting("HTTP_PORT", parse_port, 8766, doc="health, metrics and dashboard port")
    # alerts (quick start: each one set sends every broadcast whale trade there; ALERTS_FILE for rules)
    alert_webhook_url: str | None = setting(
        "ALERT_WEBHOOK_URL", url("http", "https"), None, secret=True,
        doc="POST each whale trade's client JSON here")
    alert_webhook_secret: str | None = setting(
        "ALERT_WEBHOOK_SECRET", optional_text, None, secret=True,
        doc="sign webhook bodies: X-Signature: sha256=<HMAC>")
    discord_webhook_url: str | None = setting(
        "DISCORD_WEBHOOK_URL", url("http", "https"), None, secret=True, doc="Discord webhook for whale trades")
    slack_webhook_url: str | None = setting(
        "SLACK_WEBHOOK_URL", url("http", "https"), None, secret=True, doc="Slack incoming webhook for whale trades")
    telegram_bot_token: str | None = setting(
        "TELEGRAM_BOT_TOKEN", optional_text, None, secret=True, doc="Telegram bot (with TELEGRAM_CHAT_ID)")
    telegram_chat_id: str | None = setting(
        "TELEGRAM_CHAT_ID", optional_text, None, doc="Telegram chat id or @channel for whale trades")
    telegram_api_url: str = setting(
        "TELEGRAM_API_URL", url("http", "https"), "https://api.telegram.org", doc="Telegram Bot API base URL")
    alerts_file: str | None = setting(
        "ALERTS_FILE", optional_text, None, doc="TOML file of alert outlets with rules (see the README)")
    # AI
    openrouter_api_key: str | None = setting(
        "OPENROUTER_API_KEY", optional_text, None, secret=True, doc="unset: AI analysis off")
    use_swarm_mode: bool = setting("USE_SWARM_MODE", parse_bool, True, doc="ask every model in SWARM_MODELS")
    swarm_models: tuple[str, ...] = setting(
        "SWARM_MODELS", name_list, DEFAULT_SWARM_MODELS, doc="comma list of OpenRouter model ids")
    reanalysis_hours: float = setting(
        "REANALYSIS_HOURS", number(minimum=0, min_exclusive=True), 8.0, doc="never re-analyse a market sooner")
    ai_max_tokens: int = setting("AI_MAX_TOKENS", integer(minimum=1, maximum=100_000), 500, doc="max_tokens per call")
    ai_daily_budget_usd: float = setting(
        "AI_DAILY_BUDGET_USD", number(minimum=0, min_exclusive=True), 1.0,
        doc="stop starting analyses once the day's (UTC) LLM spend reaches this many USD")
    ai_analyses_per_hour: int = setting(
        "AI_ANALYSES_PER_HOUR", integer(minimum=1, maximum=100_000), 12,
        doc="market analyses started per hour at most (each asks every model once)")
    ai_include_market_price: bool = setting(
        "AI_INCLUDE_MARKET_PRICE", parse_bool, False,
        doc="show the models the market's current price (false: blind forecasts, independent of the market)")
    ai_system_prompt_file: str | None = setting(
        "AI_SYSTEM_PROMPT_FILE", prompt_file(), None, doc="text file replacing the built-in system prompt")
    ai_user_prompt_file: str | None = setting(
        "AI_USER_PROMPT_FILE", prompt_file(AI_PROMPT_FIELDS), None,
        doc="text file replacing the built-in user prompt template ($question, $description, ... placeholders)")
    ai_model_timeout: float = setting(
        "AI_MODEL_TIMEOUT_SECONDS", number(minimum=1), 60.0, doc="longest one model call may take")
    ai_swarm_quorum: int = setting(
        "AI_SWARM_QUORUM", integer(minimum=1, maximum=100), 2,
        doc="answers needed for a swarm forecast (at most the number of models asked)")
    ai_swarm_deadline: float = setting(
        "AI_SWARM_DEADLINE_SECONDS", number(minimum=1), 180.0,
        doc="an analysis publishes what it has this long after it started (if the quorum answered)")
    ai_model_pause_minutes: float = setting(
        "AI_MODEL_PAUSE_MINUTES", number(minimum=0), 30.0,
        doc="cool-down after HTTP 401/402 (every model) or 404 (that model)")
    ai_temperature: float = setting(
        "AI_TEMPERATURE", number(minimum=0, maximum=2), 0.2, doc="sampling temperature of every call")
    ai_assumed_usd_per_million_tokens: float = setting(
        "AI_ASSUMED_USD_PER_MILLION_TOKENS", number(minimum=0), 5.0,
        doc="price assumed for calls whose answer reports no cost (servers other than OpenRouter)")
    openrouter_app_url: str = setting(
        "OPENROUTER_APP_URL", url("http", "https"), "http://localhost",
        doc="HTTP-Referer sent for OpenRouter's app attribution")
    # endpoints
    polymarket_ws_url: str = setting(
        "POLYMARKET_WS_URL", url("ws", "wss"), "wss://ws-subscriptions-clob.polymarket.com/ws/market",
        doc="CLOB market channel")
    polymarket_rtds_url: str = setting(
        "POLYMARKET_RTDS_URL", url("ws", "wss"), "wss://ws-live-data.polymarket.com", doc="RTDS trade firehose")
    gamma_api_url: str = setting(
        "GAMMA_API_URL", url("http", "https"), "https://gamma-api.polymarket.com", doc="market catalog")
    data_api_url: str = setting(
        "DATA_API_URL", url("http", "https"), "https://data-api.polymarket.com", doc="trade backfill")
    openrouter_base_url: str = setting(
        "OPENROUTER_BASE_URL", url("http", "https"), "https://openrouter.ai/api/v1",
        doc="any OpenAI-compatible server")
    # feeds
    catalog_refresh_seconds: float = setting(
        "CATALOG_REFRESH_SECONDS", number(minimum=10), 300.0, doc="seconds between Gamma catalog refreshes")
    rtds_silence_timeout: float = setting(
        "RTDS_SILENCE_TIMEOUT", number(minimum=1), 30.0, doc="reconnect RTDS after this many silent seconds")
    clob_silence_timeout: float = setting(
        "CLOB_SILENCE_TIMEOUT", number(minimum=1), 60.0, doc="reconnect a CLOB shard after this many silent seconds")
    clob_max_connections: int = setting(
        "CLOB_MAX_CONNECTIONS", integer(minimum=0, maximum=1000), 20,
        doc="CLOB market-channel connections at most (0: CLOB feed off)")
    clob_tokens_per_connection: int = setting(
        "CLOB_TOKENS_PER_CONNECTION", integer(minimum=1, maximum=500), 500, doc="tokens per CLOB connection (<= 500)")
    backfill_lookback_minutes: float = setting(
        "BACKFILL_LOOKBACK_MINUTES", number(minimum=0), 60.0, doc="start-up backfill window (0: none)")
    backfill_settle_seconds: float = setting(
        "BACKFILL_SETTLE_SECONDS", number(minimum=0), 15.0,
        doc="wait this long after an outage before backfilling (the Data API lags real time)")
    # logging
    log_level: str = setting(
        "LOG_LEVEL", choice("trace", "debug", "info", "success", "warning", "error", "critical"), "info",
        doc="minimum level logged")
    log_format: str = setting("LOG_FORMAT", choice("text", "json"), "text", doc="text for people, json for machines")
    status_log_interval: float = setting(
        "STATUS_LOG_INTERVAL", number(minimum=0), 60.0, doc="seconds between status log lines; 0: off")
    memory_trim_interval: float = setting(
        "MEMORY_TRIM_INTERVAL", number(minimum=0), 30.0,
        doc="seconds between handing freed heap memory back to the OS (glibc malloc_trim); 0: off, "
            "and glibc's mmap threshold is not pinned either")

    def secrets(self) -> list[str]:
        """Secret values in effect (for log redaction)."""
        values: list[str] = []
        for field in attrs.fields(type(self)):
            if field.metadata.get("secret"):
                value = getattr(self, field.name)
                if isinstance(value, DatabaseUrl):
                    value = value.password
                if value:
                    values.append(str(value))
        return values

    def effective(self) -> list[tuple[str, str, str]]:
        """(variable, shown value, description) for every setting, secrets masked."""
        rows = []
        for field in attrs.fields(type(self)):
            meta = field.metadata
            value = getattr(self, field.name)
            if isinstance(value, DatabaseUrl):
                shown = value.redacted()
            elif value is None:
                shown = "(unset)"
            elif meta.get("secret"):
                shown = "*** (set)"
            elif isinstance(value, tuple):
                shown = ",".join(value)
            elif isinstance(value, bool):
                shown = "true" if value else "false"
            elif isinstance(value, float) and value.is_integer():
                shown = str(int(value))
            else:
                shown = str(value)
            rows.append((meta["env"], shown, meta.get("doc", "")))
        return rows


def _check_together(settings: Settings) -> None:
    if settings.ws_ring_size < settings.ws_queue_size:
        raise ConfigError("WS_RING_SIZE", f"{settings.ws_ring_size} is below WS_QUEUE_SIZE "
                          f"({settings.ws_queue_size}); a lagged client must be able to resume what it missed")
    if settings.whale_trade_threshold < settings.trade_notional_threshold:
        raise ConfigError(
            "WHALE_TRADE_THRESHOLD",
            f"{settings.whale_trade_threshold:g} is below TRADE_NOTIONAL_THRESHOLD "
            f"({settings.trade_notional_threshold:g}); a whale must be a kept trade")
    if settings.ai_swarm_deadline < settings.ai_model_timeout:
        raise ConfigError("AI_SWARM_DEADLINE_SECONDS", f"{settings.ai_swarm_deadline:g} is below "
                          f"AI_MODEL_TIMEOUT_SECONDS ({settings.ai_model_timeout:g}); an analysis must outlast one call")
    if settings.ws_server_port and settings.ws_server_host == settings.http_host and \
            settings.ws_server_port == settings.http_port:
        raise ConfigError("HTTP_PORT", f"{settings.http_port} is also WS_SERVER_PORT; use two different ports")


def load_settings(environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env") -> Settings:
    """Read every setting from ``environ`` (default ``os.environ``) over ``env_file``.

    Variables set in the environment win over the ``.env`` file; empty values count as
    unset.  Raises :class:`ConfigError` on the first invalid value.
    """
    values: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    values.update(os.environ if environ is None else environ)
    kwargs: dict[str, Any] = {}
    for field in attrs.fields(Settings):
        env = field.metadata["env"]
        raw = values.get(env)
        if raw is None or raw.strip() == "":
            continue
        try:
            kwargs[field.name] = field.metadata["parse"](raw)
        except ValueError as exc:
            shown = "***" if field.metadata.get("secret") else repr(raw.strip())[:60]
            raise ConfigError(env, f"{shown}: {exc}") from None
    settings = Settings(**kwargs)
    _check_together(settings)
    return settings
