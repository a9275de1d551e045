"""Settings: defaults, parsing, validation messages, .env precedence, masking, log redaction."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from loguru import logger

from config import ConfigError, configure_logging, keywords, load_settings


def test_defaults_match_the_design_contract() -> None:
    s = load_settings({}, env_file=None)
    assert s.database_url is None
    assert s.openrouter_api_key is None
    assert (s.trade_notional_threshold, s.whale_trade_threshold, s.ignore_price_threshold) == (1000, 10000, 0.05)
    assert (s.ws_server_host, s.ws_server_port) == ("localhost", 8765)
    assert (s.http_host, s.http_port) == ("localhost", 8766)
    assert s.use_swarm_mode is True
    assert s.swarm_models == ("openai/gpt-4o-mini", "anthropic/claude-3.5-haiku", "google/gemini-2.0-flash-exp")
    assert (s.reanalysis_hours, s.ai_max_tokens) == (8, 500)
    assert s.polymarket_ws_url == "wss://ws-subscriptions-clob.polymarket.com/ws/market"
    assert s.polymarket_rtds_url == "wss://ws-live-data.polymarket.com"
    assert s.gamma_api_url == "https://gamma-api.polymarket.com"
    assert s.data_api_url == "https://data-api.polymarket.com"
    assert s.openrouter_base_url == "https://openrouter.ai/api/v1"
    assert s.ignore_crypto_keywords == keywords.IGNORE_CRYPTO_KEYWORDS
    assert "premier league" in s.ignore_sports_keywords


def test_values_are_parsed() -> None:
    s = load_settings({
        "TRADE_NOTIONAL_THRESHOLD": "2_500", "WHALE_TRADE_THRESHOLD": "25000.5", "IGNORE_PRICE_THRESHOLD": "0.02",
        "WS_SERVER_PORT": "9000", "USE_SWARM_MODE": "off", "SWARM_MODELS": " a/b , c/d ,",
        "IGNORE_CRYPTO_KEYWORDS": "BTC, Solana", "GAMMA_API_URL": "http://127.0.0.1:9/",
        "DATABASE_URL": "mysql://bob:p%40ss@db.example:4000/insights?ssl=true&ssl_ca=/etc/ca.pem",
    }, env_file=None)
    assert s.trade_notional_threshold == 2500 and s.whale_trade_threshold == 25000.5
    assert s.ignore_price_threshold == 0.02 and s.ws_server_port == 9000 and s.use_swarm_mode is False
    assert s.swarm_models == ("a/b", "c/d")
    assert s.ignore_crypto_keywords == ("btc", "solana")
    assert s.gamma_api_url == "http://127.0.0.1:9"
    db = s.database_url
    assert db is not None and db.kind == "mysql"
    assert (db.user, db.password, db.host, db.port, db.database) == ("bob", "p@ss", "db.example", 4000, "insights")
    assert dict(db.options) == {"ssl": "true", "ssl_ca": "/etc/ca.pem"}


@pytest.mark.parametrize("url,path", [("sqlite:///data/x.db", "data/x.db"), ("sqlite:////abs/x.db", "/abs/x.db")])
def test_sqlite_urls(url: str, path: str) -> None:
    db = load_settings({"DATABASE_URL": url}, env_file=None).database_url
    assert db is not None and db.kind == "sqlite" and db.path == path


@pytest.mark.parametrize("env,value,fragment", [
    ("WHALE_TRADE_THRESHOLD", "abc", "expected a number >= 0"),
    ("TRADE_NOTIONAL_THRESHOLD", "-5", "expected a number >= 0"),
    ("IGNORE_PRICE_THRESHOLD", "0.5", "< 0.5"),
    ("IGNORE_PRICE_THRESHOLD", "nan", "expected a number"),
    ("WS_SERVER_PORT", "70000", "<= 65535"),
    ("WS_SERVER_PORT", "-1", ">= 0"),
    ("HTTP_PORT", "eighty", "whole number"),
    ("DATABASE_URL", "postgres://u@h/db", "expected sqlite:///"),
    ("DATABASE_URL", "mysql://u:p@h:notaport/db", "port"),
    ("DATABASE_URL", "mysql://u:p@h:3306/", "expected sqlite:///"),
    ("DATABASE_URL", "mysql://u:p@h/db?sslmode=x", "unknown option"),
    ("USE_SWARM_MODE", "maybe", "expected true or false"),
    ("SWARM_MODELS", " , ", "at least one"),
    ("AI_MAX_TOKENS", "0", ">= 1"),
    ("REANALYSIS_HOURS", "0", "> 0"),
    ("POLYMARKET_RTDS_URL", "http://x", "ws:// or wss://"),
    ("GAMMA_API_URL", "gamma", "http:// or https://"),
    ("LOG_LEVEL", "loud", "one of"),
    ("LOG_FORMAT", "xml", "one of"),
    ("WS_SERVER_HOST", "a b", "host"),
])
def test_bad_values_name_the_variable_and_what_is_allowed(env: str, value: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({env: value}, env_file=None)
    assert info.value.variable == env
    message = str(info.value)
    assert message.startswith(f"invalid {env}: ")
    assert fragment in message
    assert "\n" not in message


def test_secrets_never_appear_in_errors() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({"DATABASE_URL": "postgres://user:hunter22@h/db"}, env_file=None)
    assert "hunter22" not in str(info.value)


def test_cross_checks() -> None:
    with pytest.raises(ConfigError, match="WHALE_TRADE_THRESHOLD"):
        load_settings({"WHALE_TRADE_THRESHOLD": "500"}, env_file=None)
    with pytest.raises(ConfigError, match="HTTP_PORT"):
        load_settings({"HTTP_PORT": "8765"}, env_file=None)


def test_dotenv_is_read_and_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("WHALE_TRADE_THRESHOLD=20000\nWS_SERVER_PORT=9100\n# comment\nUSE_SWARM_MODE=false\n")
    s = load_settings({"WS_SERVER_PORT": "9200"}, env_file=env_file)
    assert s.whale_trade_threshold == 20000
    assert s.ws_server_port == 9200
    assert s.use_swarm_mode is False
    # an empty value counts as unset
    assert load_settings({"WS_SERVER_PORT": ""}, env_file=None).ws_server_port == 8765


def test_effective_settings_mask_secrets() -> None:
    s = load_settings({"DATABASE_URL": "mysql://u:topsecret@h:3306/db", "OPENROUTER_API_KEY": "sk-or-v1-abcdef",
                       "WS_AUTH_TOKEN": "tok-123"}, env_file=None)
    shown = dict((name, value) for name, value, _ in s.effective())
    assert shown["DATABASE_URL"] == "mysql://u:***@h:3306/db"
    assert shown["OPENROUTER_API_KEY"] == "*** (set)"
    text = repr(s.effective())
    for secret in ("topsecret", "sk-or-v1-abcdef", "tok-123"):
        assert secret not in text
    assert set(s.secrets()) == {"topsecret", "sk-or-v1-abcdef", "tok-123"}


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_logs_redact_secrets(fmt: str) -> None:
    out = io.StringIO()
    configure_logging("info", fmt, ["sk-or-v1-abcdef"], stream=out)
    try:
        logger.bind(actor="t", url="https://x?key=sk-or-v1-abcdef").info("calling with sk-or-v1-abcdef")
        try:
            raise RuntimeError("bad key sk-or-v1-abcdef")
        except RuntimeError:
            logger.exception("failed")
    finally:
        logger.remove()
    text = out.getvalue()
    assert "sk-or-v1-abcdef" not in text
    assert text.count("***") >= 3
    assert "calling with ***" in text
    if fmt == "json":
        import orjson
        lines = [orjson.loads(line) for line in text.splitlines()]
        assert lines[0]["actor"] == "t" and lines[0]["level"] == "INFO"
        assert "RuntimeError" in lines[1]["exception"]


def test_ai_settings_defaults_parsing_and_checks() -> None:
    s = load_settings({}, env_file=None)
    assert (s.ai_daily_budget_usd, s.ai_analyses_per_hour, s.ai_include_market_price) == (1.0, 12, False)
    assert (s.ai_model_timeout, s.ai_swarm_quorum, s.ai_swarm_deadline) == (60, 2, 180)
    assert (s.ai_model_pause_minutes, s.ai_temperature, s.ai_assumed_usd_per_million_tokens) == (30, 0.2, 5)
    assert (s.ai_system_prompt_file, s.ai_user_prompt_file, s.openrouter_app_url) == (None, None, "http://localhost")
    s = load_settings({"AI_DAILY_BUDGET_USD": "2.5", "AI_ANALYSES_PER_HOUR": "60", "AI_INCLUDE_MARKET_PRICE": "yes",
                       "AI_MODEL_TIMEOUT_SECONDS": "30", "AI_SWARM_QUORUM": "3", "AI_SWARM_DEADLINE_SECONDS": "30",
                       "AI_TEMPERATURE": "0", "OPENROUTER_APP_URL": "https://insights.example/"}, env_file=None)
    assert (s.ai_daily_budget_usd, s.ai_analyses_per_hour, s.ai_include_market_price) == (2.5, 60, True)
    assert (s.ai_model_timeout, s.ai_swarm_quorum, s.ai_swarm_deadline, s.ai_temperature) == (30, 3, 30, 0)
    assert s.openrouter_app_url == "https://insights.example"
    for env, value, fragment in [("AI_DAILY_BUDGET_USD", "0", "> 0"), ("AI_ANALYSES_PER_HOUR", "0", ">= 1"),
                                 ("AI_TEMPERATURE", "3", "<= 2"), ("AI_SWARM_QUORUM", "x", "whole number"),
                                 ("AI_INCLUDE_MARKET_PRICE", "sometimes", "true or false"),
                                 ("AI_USER_PROMPT_FILE", "/nonexistent/prompt.txt", "readable"),
                                 ("OPENROUTER_APP_URL", "localhost", "http://")]:
        with pytest.raises(ConfigError) as info:
            load_settings({env: value}, env_file=None)
        assert info.value.variable == env and fragment in str(info.value), (env, str(info.value))
    with pytest.raises(ConfigError, match="AI_SWARM_DEADLINE_SECONDS"):
        load_settings({"AI_SWARM_DEADLINE_SECONDS": "30"}, env_file=None)   # shorter than one call (60 s)
