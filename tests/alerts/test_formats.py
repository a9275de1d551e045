"""protocols/alerts.py: MarkdownV2 escaping, the four outlets' payloads and limits, signatures,
retry hints and the classification of each API's real answers."""

from __future__ import annotations

import copy
import hashlib
import hmac
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.alerts import (
    MARKDOWN_V2_RESERVED,
    AlertMessage,
    DiscordTarget,
    SlackTarget,
    TelegramTarget,
    WebhookTarget,
    classify_response,
    describe_response,
    digest_key,
    discord_digest_request,
    discord_execute_url,
    discord_request,
    escape_markdown_v2,
    escape_markdown_v2_url,
    escape_slack,
    format_cents,
    format_usd,
    interpret_response,
    parse_retry_after,
    retry_hint,
    short_wallet,
    sign,
    slack_digest_request,
    slack_request,
    telegram_digest_request,
    telegram_request,
    verify_signature,
    webhook_digest_request,
    webhook_request,
)
from tests.fakes.alert_outlets import MarkdownV2Error, discord_problems, parse_markdown_v2, slack_problems

WALLET = "0x1234567890abcdef1234567890abcdef1234abcd"
TX = "0x" + "ab" * 32
MARKET_URL = "https://polymarket.com/event/nobel-peace-prize-winner-2025"
TITLE = "Will María Corina Machado win the Nobel Peace Prize in 2025?"
#: Every MarkdownV2-reserved character, a backslash, Slack's control characters and emoji.
NASTY_TITLE = "Fed *cuts* [25] (bps) ~ `x` > #1 + a-b = c | {d} e.f! \\ AT&T <b> 🐋 _under_ __score__?"

DISCORD_URL = "https://discord.com/api/webhooks/1234567890123456789/secret-token_ABC"
SLACK_URL = "https://hooks.slack.com/services/T00000001/B00000001/SlackSecret0123"
TG_BASE, TG_TOKEN, TG_CHAT = "https://api.telegram.org", "7123456789:AAsecretTelegramToken", -1001234567890


def whale_data(**changes: Any) -> dict[str, Any]:
    data = {"market": TITLE, "side": "YES", "amount": 24150.5, "price": 0.71, "timestamp": "2025-10-10T08:41:12Z",
            "action": "BUY", "outcome": "Yes", "size": 34014.8, "condition_id": "0x" + "cd" * 32, "asset_id": "123",
            "slug": "will-mara-corina-machado-win-the-nobel-peace-prize-in-2025",
            "event_slug": "nobel-peace-prize-winner-2025", "url": MARKET_URL, "wallet": WALLET, "trader": "",
            "transaction_hash": TX, "trade_id": "t-1", "tier": "big_whale"}
    data.update(changes)
    return data


def prediction_data(**changes: Any) -> dict[str, Any]:
    data = {"forecast_id": "fc-1", "condition_id": "0x" + "cd" * 32, "title": TITLE, "outcome": "Yes",
            "probability": 0.7, "probability_mean": 0.6, "confidence": 0.4,
            "votes": {"Yes": 2, "No": 1},
            "models": [{"model": "openai/gpt-4o-mini", "outcome": "Yes", "probability": 0.8, "confidence": 0.6,
                        "reasoning": "r"},
                       {"model": "anthropic/claude-3.5-haiku", "outcome": "Yes", "probability": 0.7, "confidence": 0.7},
                       {"model": "google/gemini-2.0-flash-exp", "outcome": "No", "probability": 0.3,
                        "confidence": 0.8}],
            "models_failed": [], "market_price": 0.75, "market_price_shown": False, "outcomes": ["Yes", "No"],
            "trigger": "whale", "timestamp": "2025-10-10T08:45:02Z", "slug": "s", "url": MARKET_URL}
    data.update(changes)
    return data


def alert(type_: str, data: dict[str, Any], seq: int = 1043, key: str | None = None) -> AlertMessage:
    frame = orjson.dumps({"type": type_, "seq": seq, "data": data})
    return AlertMessage.from_frame(key or f"{type_}:{seq}", frame)


def whale(**changes: Any) -> AlertMessage:
    return alert("whale_trade", whale_data(**changes))


def prediction(**changes: Any) -> AlertMessage:
    return alert("prediction", prediction_data(**changes), seq=2051)


def telegram_text_of(body: bytes) -> tuple[str, str]:
    """``(raw MarkdownV2, parsed plain text)`` of a sendMessage body, checked like Telegram does."""
    params = orjson.loads(body)
    assert params["parse_mode"] == "MarkdownV2"
    assert params["link_preview_options"] == {"is_disabled": True}
    assert "disable_web_page_preview" not in params
    raw = params["text"]
    parsed = parse_markdown_v2(raw)
    assert 0 < len(parsed.text) <= 4096 and len(raw) <= 4096
    return raw, parsed.text


# -- MarkdownV2 escaping, checked by a port of TDLib's parser ----------------------------------------------------


def test_a_title_with_every_reserved_character_round_trips() -> None:
    title = "Will _*[]()~`>#+-=|{}.!\\ all be escaped? " + MARKDOWN_V2_RESERVED
    escaped = escape_markdown_v2(title)
    for char in MARKDOWN_V2_RESERVED + "\\":
        assert escaped.count("\\" + char) >= title.count(char)
    parsed = parse_markdown_v2(escaped)
    assert parsed.text == title
    assert parsed.entities == ()


@pytest.mark.parametrize("char", list("]()#+-=|{}.!>"))
def test_an_unescaped_reserved_character_is_refused_with_telegrams_message(char: str) -> None:
    with pytest.raises(MarkdownV2Error) as caught:
        parse_markdown_v2(f"a{char}")
    assert str(caught.value) == f"Character '{char}' is reserved and must be escaped with the preceding '\\'"
    assert parse_markdown_v2(f"a\\{char}").text == f"a{char}"


@pytest.mark.parametrize("text,message", [
    # vectors from TDLib's own tests (test/message_entities.cpp)
    ("🏟 🏟_abacaba", "Can't find end of Italic entity at byte offset 9"),
    ("🏟 🏟_abac * asd ", "Can't find end of Bold entity at byte offset 15"),
    ("🏟 🏟`", "Can't find end of Code entity at byte offset 9"),
    ("🏟 🏟```", "Can't find end of Pre entity at byte offset 9"),
    ("🏟 🏟```a ", "Can't find end of PreCode entity at byte offset 9"),
    ("🏟 🏟__🏟 🏟_", "Can't find end of Italic entity at byte offset 20"),
    ("🏟 🏟_🏟 🏟__", "Can't find end of Underline entity at byte offset 19"),
    # and from the same algorithm: an unclosed link URL
    ("[a](b", "Can't find end of a URL at byte offset 4"),
])
def test_unclosed_entities_are_refused_like_tdlib(text: str, message: str) -> None:
    with pytest.raises(MarkdownV2Error) as caught:
        parse_markdown_v2(text)
    assert str(caught.value) == message


@pytest.mark.parametrize("text,message", [
    # more of TDLib's own error vectors
    ("[telegram\\.org](asd\\)", "Can't find end of a URL at byte offset 16"),
    ("🏟 🏟||test\\|", "Can't find end of Spoiler entity at byte offset 9"),
    ("🏟 🏟!", "Character '!' is reserved and must be escaped with the preceding '\\'"),
    ("🏟 🏟>", "Character '>' is reserved and must be escaped with the preceding '\\'"),
    ("🏟 🏟![👍", "Can't find end of CustomEmoji entity at byte offset 9"),
    ("🏟 🏟![👍]", "Custom emoji entity must contain a tg://emoji URL"),
    ("🏟 🏟![👍](tg://emoji?id=1234", "Can't find end of a custom emoji URL at byte offset 17"),
    ("🏟 🏟![👍](t://emoji?id=1234)", "Custom emoji URL must have scheme tg"),
    ("🏟 🏟![👍](tg:emojis?id=1234)", 'Custom emoji URL must have host "emoji"'),
    ("🏟 🏟![👍](tg://emoji?test=1#&id=25)", "Custom emoji URL must have an emoji identifier"),
    ("🏟 🏟![👍](tg://emoji?test=1231&id=025)", "Invalid custom emoji identifier specified"),
    (">*b\n>ld \n>bo\nld*\nasd\ndef", "Can't find end of Bold entity at byte offset 1"),
    (">\n*a*>2", "Character '>' is reserved and must be escaped with the preceding '\\'"),
    (">asd\n>q||ew\n||asdad", "Can't find end of Spoiler entity at byte offset 7"),
    (">asd\n>q||e||w__\n||asdad", "Can't find end of Underline entity at byte offset 13"),
])
def test_more_tdlib_error_vectors(text: str, message: str) -> None:
    with pytest.raises(MarkdownV2Error) as caught:
        parse_markdown_v2(text)
    assert str(caught.value) == message


@pytest.mark.parametrize("text,plain,entities", [
    # TDLib's own success vectors: (type, UTF-16 offset, length[, url / language / emoji id])
    ("", "", []),
    ("\\\\", "\\", []),
    ("\\\\\\", "\\\\", []),
    ("\\\\\\\\\\_\\*\\`", "\\\\_*`", []),
    ("🏟 🏟``", "🏟 🏟", []),
    ("🏟 🏟_abac \\* asd _", "🏟 🏟abac * asd ", [("italic", 5, 11)]),
    ("🏟 \\.🏟_🏟\\. 🏟_", "🏟 .🏟🏟. 🏟", [("italic", 6, 6)]),
    ("\\\\\\a\\b\\c\\d\\e\\f\\1\\2\\3\\4\\➡️\\", "\\abcdef1234\\➡️\\", []),
    ("🏟 🏟_🏟 *🏟*_", "🏟 🏟🏟 🏟", [("italic", 5, 5), ("bold", 8, 2)]),
    ("🏟 🏟__🏟 _🏟_ __", "🏟 🏟🏟 🏟 ", [("underline", 5, 6), ("italic", 8, 2)]),
    ("🏟 🏟```🏟 🏟```", "🏟 🏟 🏟", [("pre", 5, 3, "🏟")]),
    ("🏟 🏟```🏟\r\n🏟```", "🏟 🏟🏟", [("pre", 5, 2, "🏟")]),
    ("🏟 🏟```🏟\n\n🏟```", "🏟 🏟\n🏟", [("pre", 5, 3, "🏟")]),
    ("🏟 🏟```🏟 \\\\\\`🏟```", "🏟 🏟 \\`🏟", [("pre", 5, 5, "🏟")]),
    ("||test||", "test", [("spoiler", 0, 4)]),
    ("`_* *_`__*` `*__", "_* *_ ", [("code", 0, 5), ("code", 5, 1), ("bold", 5, 1), ("underline", 5, 1)]),
    ("_* * ` `_", "   ", [("italic", 0, 3), ("bold", 0, 1), ("code", 2, 1)]),
    ("[ ](telegram.org)", " ", [("text_link", 0, 1, "http://telegram.org/")]),
    ("[ ](as)", " ", []),
    ("[telegram\\.org]", "telegram.org", [("text_link", 0, 12, "http://telegram.org/")]),
    ("[telegram\\.org](https://telegram.dog?)", "telegram.org", [("text_link", 0, 12, "https://telegram.dog/?")]),
    ("[telegram\\.org](https://telegram.dog?\\\\\\()", "telegram.org",
     [("text_link", 0, 12, "https://telegram.dog/?\\(")]),
    ("[telegram\\.org](asdasd)", "telegram.org", []),
    ("🏟 🏟![👍](TG://EMoJI/?test=1231&id=25#id=32)a", "🏟 🏟👍a", [("custom_emoji", 5, 2, "25")]),
    ("> \n> \n>", " \n \n", [("blockquote", 0, 4)]),
    ("abc\n> \n> \n>\ndef", "abc\n \n \n\ndef", [("blockquote", 4, 5)]),
    (">a", "a", [("blockquote", 0, 1)]),
    ("\r>a", "\ra", [("blockquote", 1, 1)]),
    (">*b\n>ld \n>bo\n>ld*\nasd\ndef", "b\nld \nbo\nld\nasd\ndef", [("blockquote", 0, 12), ("bold", 0, 11)]),
    (">asd\n>q||e||w||\nasdad", "asd\nqew\nasdad", [("expandable_blockquote", 0, 8), ("spoiler", 5, 1)]),
    (">asd\n>q||ew||\nasdad", "asd\nqew\nasdad", [("blockquote", 0, 8), ("spoiler", 5, 2)]),
    (">||", "", []),
])
def test_tdlib_success_vectors(text: str, plain: str, entities: list[tuple[Any, ...]]) -> None:
    parsed = parse_markdown_v2(text)
    assert parsed.text == plain
    got = [(e.type, e.offset, e.length, *[v for v in (e.url, e.language, e.custom_emoji_id) if v is not None])
           for e in parsed.entities]
    assert sorted(got) == sorted(entities)


def test_the_parser_reports_entities_in_utf16_units() -> None:
    parsed = parse_markdown_v2("🐋 *Big* [link](https://x.example/a\\)b) ~s~ __u__ ||sp|| `c\\`d`")
    assert parsed.text == "🐋 Big link s u sp c`d"
    kinds = {e.type: (e.offset, e.length) for e in parsed.entities}
    assert kinds["bold"] == (3, 3)  # the whale is two UTF-16 units
    assert kinds["text_link"] == (7, 4)
    assert kinds["strikethrough"] == (12, 1) and kinds["underline"] == (14, 1) and kinds["spoiler"] == (16, 2)
    assert kinds["code"] == (19, 3)
    assert [e.url for e in parsed.entities if e.type == "text_link"] == ["https://x.example/a)b"]


@given(st.text(max_size=300))
def test_any_text_escaped_then_parsed_is_the_original(text: str) -> None:
    parsed = parse_markdown_v2(escape_markdown_v2(text))
    assert parsed.text == text
    assert parsed.entities == ()


@given(st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=80),
       st.text(min_size=1, max_size=40).filter(lambda s: s.strip() == s and s != ""))
def test_any_url_escaped_inside_a_link_is_the_original(path: str, label: str) -> None:
    url = "https://example.com/" + path
    parsed = parse_markdown_v2(f"[{escape_markdown_v2(label)}]({escape_markdown_v2_url(url)})")
    assert parsed.text == label
    assert [(e.type, e.url) for e in parsed.entities] == [("text_link", url)]


# -- formatting -----------------------------------------------------------------------------------------------


def test_amounts_prices_and_wallets() -> None:
    assert format_usd(24150.5) == "$24,150"
    assert format_usd(1_234_567.89) == "$1,234,568"
    assert format_cents(0.71) == "71¢" and format_cents(0.705) == "70.5¢" and format_cents(0.05) == "5¢"
    assert short_wallet(WALLET) == "0x1234…abcd"
    assert short_wallet("0xabc") == "0xabc"


# -- Telegram ---------------------------------------------------------------------------------------------------


def test_telegram_whale_message() -> None:
    request = telegram_request(TG_BASE, TG_TOKEN, str(TG_CHAT), whale())
    assert request.method == "POST"
    assert request.url == f"https://api.telegram.org/bot{TG_TOKEN}/sendMessage"
    assert request.headers["Content-Type"] == "application/json"
    assert orjson.loads(request.body)["chat_id"] == TG_CHAT  # a numeric chat id is sent as a number
    raw, text = telegram_text_of(request.body)
    for expected in ("Big whale", "BUY YES", "$24,150", "71¢", "34,015 shares", TITLE, "0x1234…abcd",
                     "2025-10-10 08:41:12 UTC"):
        assert expected in text
    links = [e.url for e in parse_markdown_v2(raw).entities if e.type == "text_link"]
    assert links == [MARKET_URL, f"https://polymarket.com/profile/{WALLET}"]
    assert TG_TOKEN not in repr(request)


def test_telegram_names_the_trader_when_known() -> None:
    _, text = telegram_text_of(telegram_request(TG_BASE, TG_TOKEN, TG_CHAT, whale(trader="Théo_4 (FR)")).body)
    assert "Théo_4 (FR) (0x1234…abcd)" in text


def test_telegram_prediction_message() -> None:
    _, text = telegram_text_of(telegram_request(TG_BASE, TG_TOKEN, "@whales", prediction()).body)
    assert orjson.loads(telegram_request(TG_BASE, TG_TOKEN, "@whales", prediction()).body)["chat_id"] == "@whales"
    for expected in (TITLE, "Swarm: Yes", "confidence 40%", "votes Yes 2, No 1", "P(Yes) 70% vs market 75% (−5 pt)",
                     "openai/gpt-4o-mini: Yes · P(Yes) 80% · confidence 60%",
                     "google/gemini-2.0-flash-exp: No · P(Yes) 30% · confidence 80%"):
        assert expected in text


def test_telegram_escapes_titles_full_of_reserved_characters() -> None:
    raw, text = telegram_text_of(telegram_request(TG_BASE, TG_TOKEN, TG_CHAT, whale(market=NASTY_TITLE)).body)
    assert NASTY_TITLE in text
    _, text = telegram_text_of(telegram_request(TG_BASE, TG_TOKEN, TG_CHAT, prediction(title=NASTY_TITLE)).body)
    assert NASTY_TITLE in text


def test_telegram_messages_stay_within_4096_characters() -> None:
    long_title = (NASTY_TITLE * 200)[:10_000]
    models = [{"model": f"lab/model-{i}.{'x' * 90}", "outcome": "Yes", "probability": 0.5, "confidence": 0.5}
              for i in range(60)]
    for message in (whale(market=long_title, trader="_" * 500, url=MARKET_URL + "/" + ")" * 3000),
                    prediction(title=long_title, models=models, votes={f"o{i}.": i for i in range(100)})):
        raw, text = telegram_text_of(telegram_request(TG_BASE, TG_TOKEN, TG_CHAT, message).body)
        assert "…" in text
    many = [whale(market=f"{long_title} #{i}", amount=10_000 + i) for i in range(300)]
    raw, text = telegram_text_of(telegram_digest_request(TG_BASE, TG_TOKEN, TG_CHAT, many, window_seconds=60).body)
    assert text.startswith("🐋 300 whale trades in 60 s: total $3,044,850")
    assert "$10,299" in text and "more" in text


def test_telegram_digest_lists_the_five_largest_first() -> None:
    amounts = [12_000, 55_000, 31_000, 10_500, 99_000, 20_000, 41_000, 15_000, 11_000, 18_000, 13_000, 70_000]
    alerts = [whale(amount=a, market=f"Market {a}") for a in amounts] + [prediction()]
    _, text = telegram_text_of(telegram_digest_request(TG_BASE, TG_TOKEN, TG_CHAT, alerts, window_seconds=60).body)
    assert text.splitlines()[0] == f"🐋 12 whale trades and 1 AI forecast in 60 s: total {format_usd(sum(amounts))}"
    assert "The 5 largest:" in text
    positions = [text.index(format_usd(a)) for a in (99_000, 70_000, 55_000, 41_000, 31_000)]
    assert positions == sorted(positions)
    assert "$20,000" not in text and "…and 7 more" in text
    assert "AI forecasts:" in text and "P(Yes) 70% vs market 75%" in text


# -- Discord ----------------------------------------------------------------------------------------------------


def discord_payload(request_body: bytes) -> dict[str, Any]:
    payload = orjson.loads(request_body)
    problems, notes = discord_problems(payload)
    assert problems == [] and notes == []
    assert payload["allowed_mentions"] == {"parse": []}
    assert 1 <= len(payload["embeds"]) <= 10
    return payload


def test_discord_whale_embed() -> None:
    request = discord_request(DISCORD_URL, whale())
    assert request.method == "POST" and request.url == DISCORD_URL + "?wait=true"
    assert request.headers["Content-Type"] == "application/json"
    (embed,) = discord_payload(request.body)["embeds"]
    assert embed["title"] == TITLE and embed["url"] == MARKET_URL
    assert embed["author"]["name"] == "🐋 Big whale: $24,150 BUY YES at 71¢"
    assert "**$24,150** at 71¢" in embed["description"]
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields["Trader"] == f"[0x1234…abcd](https://polymarket.com/profile/{WALLET})"
    assert fields["Tier"] == "Big whale"
    assert fields["Transaction"] == f"[0xabab…abab](https://polygonscan.com/tx/{TX})"
    assert embed["timestamp"] == "2025-10-10T08:41:12Z"
    assert embed["footer"]["text"] == "Polymarket Insights · whale_trade #1043"
    assert "secret-token" not in repr(request)


def test_discord_keeps_other_query_parameters() -> None:
    assert discord_execute_url(DISCORD_URL + "?thread_id=42&wait=false") == DISCORD_URL + "?thread_id=42&wait=true"


def test_discord_prediction_embed() -> None:
    (embed,) = discord_payload(discord_request(DISCORD_URL, prediction()).body)["embeds"]
    assert embed["title"] == TITLE
    assert "Swarm: **Yes**" in embed["description"] and "vs market 75%" in embed["description"]
    assert [f["name"] for f in embed["fields"]] == ["openai/gpt-4o-mini", "anthropic/claude-3.5-haiku",
                                                    "google/gemini-2.0-flash-exp"]
    assert embed["fields"][0]["value"] == "Yes · P\\(Yes\\) 80% · confidence 60%"


def test_discord_limits_hold_with_very_long_titles_and_many_models() -> None:
    long_title = (NASTY_TITLE * 200)[:10_000]
    models = [{"model": "m" * 300 + str(i), "outcome": "y" * 2000, "probability": 0.5, "confidence": 0.5}
              for i in range(40)]
    for message in (whale(market=long_title, trader="@everyone " * 100), prediction(title=long_title, models=models)):
        (embed,) = discord_payload(discord_request(DISCORD_URL, message).body)["embeds"]
        assert len(embed["title"]) == 256 and embed["title"].endswith("…")
    (embed,) = discord_payload(discord_digest_request(
        DISCORD_URL, [whale(market=long_title, amount=10_000 + i) for i in range(300)] + [prediction()] * 20,
        window_seconds=60).body)["embeds"]
    assert embed["title"].startswith("🐋 300 whale trades and 20 AI forecasts in 60 s: total $")
    assert "The 5 largest:" in embed["description"] and "**$10,299**" in embed["description"]
    assert "…and 295 more" in embed["description"] and "…and 15 more" in embed["description"]


def test_discord_escapes_markdown_in_titles() -> None:
    request = discord_digest_request(DISCORD_URL, [whale(market="**bold** [x](y) _i_")])
    (embed,) = discord_payload(request.body)["embeds"]
    assert "\\*\\*bold\\*\\* \\[x\\]\\(y\\) \\_i\\_" in embed["description"]


# -- Slack ------------------------------------------------------------------------------------------------------


def slack_payload(request_body: bytes) -> dict[str, Any]:
    payload = orjson.loads(request_body)
    assert slack_problems(payload) == (None, [], [])
    assert payload["text"] and payload["unfurl_links"] is False
    return payload


def test_slack_whale_message() -> None:
    request = slack_request(SLACK_URL, whale())
    assert request.url == SLACK_URL and request.headers["Content-Type"] == "application/json"
    payload = slack_payload(request.body)
    assert payload["text"] == f"🐋 Big whale: $24,150 BUY YES at 71¢ — {TITLE}"
    header, section, fields, context = payload["blocks"]
    assert header == {"type": "header", "text": {"type": "plain_text", "text": "🐋 Big whale: $24,150 BUY YES at 71¢",
                                                 "emoji": True}}
    assert section["text"]["text"] == f"<{MARKET_URL}|{TITLE}>\nBUY YES · *$24,150* at 71¢ · 34,015 shares"
    assert f"<https://polymarket.com/profile/{WALLET}|0x1234…abcd>" in fields["fields"][0]["text"]
    assert context["elements"][0]["text"].startswith("2025-10-10 08:41:12 UTC · Polymarket Insights")
    assert "SlackSecret" not in repr(request)


def test_slack_escapes_control_characters() -> None:
    payload = slack_payload(slack_request(SLACK_URL, whale(market=NASTY_TITLE)).body)
    assert escape_slack(NASTY_TITLE) in payload["text"]
    assert "AT&amp;T &lt;b&gt;" in payload["blocks"][1]["text"]["text"]
    slack_payload(slack_request(SLACK_URL, prediction(title=NASTY_TITLE)).body)


def test_slack_limits_hold_with_very_long_titles() -> None:
    long_title = (NASTY_TITLE * 200)[:10_000]
    models = [{"model": "m" * 300 + str(i), "outcome": "Yes", "probability": 0.5} for i in range(60)]
    slack_payload(slack_request(SLACK_URL, whale(market=long_title, url=MARKET_URL + "/" + "x" * 2040)).body)
    slack_payload(slack_request(SLACK_URL, prediction(title=long_title, models=models)).body)
    payload = slack_payload(slack_digest_request(
        SLACK_URL, [whale(market=long_title, amount=10_000 + i) for i in range(300)] + [prediction()] * 7,
        window_seconds=300).body)
    assert payload["blocks"][0]["text"]["text"].startswith("🐋 300 whale trades and 7 AI forecasts in 5 min: total")
    assert "…and 295 more" in payload["blocks"][1]["text"]["text"]
    assert "…and 2 more" in payload["blocks"][2]["text"]["text"]


# -- the generic webhook ----------------------------------------------------------------------------------------


def test_webhook_posts_the_exact_client_frame() -> None:
    message = whale()
    request = webhook_request("https://hooks.example.org/pm?x=1", message, version="0.1.0")
    assert request.method == "POST" and request.url == "https://hooks.example.org/pm?x=1"
    assert request.body == message.frame
    assert request.headers == {"Content-Type": "application/json", "User-Agent": "polymarket-insights/0.1.0",
                               "Idempotency-Key": message.key}


def test_webhook_signs_the_raw_body_when_a_secret_is_set() -> None:
    message = whale()
    request = webhook_request("https://hooks.example.org/pm", message, secret="s3cret")
    expected = "sha256=" + hmac.new(b"s3cret", message.frame, hashlib.sha256).hexdigest()
    assert request.headers["X-Signature"] == expected
    assert verify_signature(request.body, "s3cret", request.headers["X-Signature"])
    assert not verify_signature(request.body + b" ", "s3cret", request.headers["X-Signature"])
    assert not verify_signature(request.body, "other", request.headers["X-Signature"])


def test_signature_known_vectors() -> None:
    # Wikipedia's HMAC-SHA256 example and RFC 4231 test case 2
    assert sign(b"The quick brown fox jumps over the lazy dog", "key") == \
        "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    assert sign(b"what do ya want for nothing?", "Jefe") == \
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"


def test_webhook_digest_is_a_batch_of_frames_with_a_stable_key() -> None:
    a, b = whale(), alert("prediction", prediction_data(), seq=2051, key="prediction:fc-1")
    request = webhook_digest_request("https://hooks.example.org/pm", [a, b], secret="k")
    assert request.json() == {"type": "batch", "data": [orjson.loads(a.frame), orjson.loads(b.frame)]}
    assert request.headers["Idempotency-Key"] == digest_key([b.key, a.key]) != digest_key([a.key])
    assert request.headers["X-Signature"] == sign(request.body, "k")


def test_an_idempotency_key_that_is_not_a_header_value_is_hashed() -> None:
    message = alert("whale_trade", whale_data(), key="whale:ü\n1")
    key = webhook_request("https://h.example", message).headers["Idempotency-Key"]
    assert key.startswith("key-") and key.isascii() and key == webhook_request("https://h.example", message).headers[
        "Idempotency-Key"]


def test_alerts_without_a_key_get_distinct_stable_keys() -> None:
    first, second = (AlertMessage.from_frame("", orjson.dumps({"type": "whale_trade", "seq": seq, "data": {}}))
                     for seq in (1, 2))
    keys = [webhook_request("https://h.example", m).headers["Idempotency-Key"] for m in (first, second, first)]
    assert keys[0] != keys[1] and keys[0] == keys[2] and all(k.startswith("frame-") for k in keys)
    assert webhook_digest_request("https://h.example", [first]).headers["Idempotency-Key"] != \
        webhook_digest_request("https://h.example", [second]).headers["Idempotency-Key"]


# -- odd data never breaks a message ------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [{}, {"amount": "lots", "price": None, "tier": 3, "url": "javascript:alert(1)",
                                       "timestamp": "yesterday", "wallet": ["x"]},
                                  {"amount": float("inf"), "price": True, "market": "   "}])
def test_odd_whale_data_still_makes_valid_messages(data: dict[str, Any]) -> None:
    message = alert("whale_trade", data)
    telegram_text_of(telegram_request(TG_BASE, TG_TOKEN, TG_CHAT, message).body)
    discord_payload(discord_request(DISCORD_URL, message).body)
    slack_payload(slack_request(SLACK_URL, message).body)
    assert "javascript" not in discord_request(DISCORD_URL, message).body.decode()


def test_other_alert_types_make_valid_messages() -> None:
    message = alert("market_update", {"condition_id": "0x", "title": NASTY_TITLE, "price": 0.5}, seq=7)
    telegram_text_of(telegram_request(TG_BASE, TG_TOKEN, TG_CHAT, message).body)
    discord_payload(discord_request(DISCORD_URL, message).body)
    slack_payload(slack_request(SLACK_URL, message).body)


# -- retry hints and classification ---------------------------------------------------------------------------------

DISCORD_429 = b'{"message": "You are being rate limited.", "retry_after": 1.337, "global": false}'
TELEGRAM_429 = (b'{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 5",'
                b'"parameters":{"retry_after":5}}')


def test_retry_hints_of_each_api() -> None:
    assert retry_hint("discord", 429, {"Retry-After": "2"}, DISCORD_429) == pytest.approx(1.337)
    assert retry_hint("discord", 429, {"retry-after": "2"}, b"<html>cloudflare</html>") == 2.0
    assert retry_hint("discord", 429, {"X-RateLimit-Reset-After": "0.25"}, b"") == 0.25
    assert retry_hint("telegram", 429, {}, TELEGRAM_429) == 5.0
    assert retry_hint("telegram", 429, {"Retry-After": "7"}, b'{"ok":false,"error_code":429}') == 7.0
    assert retry_hint("slack", 429, {"Retry-After": "30"}, b"rate_limited") == 30.0
    assert retry_hint("webhook", 503, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, b"",
                      now=1445412470.0) == pytest.approx(10.0)
    assert retry_hint("webhook", 503, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, b"", now=1445413000.0) == 0.0
    assert retry_hint("webhook", 429, {}, b"") is None
    assert parse_retry_after("soon") is None and parse_retry_after("-3") is None and parse_retry_after("nan") is None


@pytest.mark.parametrize("kind,status,body,verdict", [
    ("discord", 204, b"", "ok"),
    ("discord", 200, b'{"id":"1","type":0}', "ok"),
    ("discord", 429, DISCORD_429, "rate_limited"),
    ("discord", 401, b'{"message": "Invalid Webhook Token", "code": 50027}', "auth"),
    ("discord", 404, b'{"message": "Unknown Webhook", "code": 10015}', "auth"),
    ("discord", 400, b'{"code": 50035, "errors": {"embeds": {"0": {"title": {"_errors": [{"code": '
                     b'"BASE_TYPE_MAX_LENGTH", "message": "Must be 256 or fewer in length."}]}}}}, '
                     b'"message": "Invalid Form Body"}', "rejected"),
    ("discord", 502, b"<html>502 Bad Gateway</html>", "retry"),
    ("slack", 200, b"ok", "ok"),
    ("slack", 400, b"invalid_payload", "rejected"),
    ("slack", 400, b"invalid_blocks", "rejected"),
    ("slack", 400, b"no_text", "rejected"),
    ("slack", 404, b"no_service", "auth"),
    ("slack", 410, b"no_service", "auth"),
    ("slack", 403, b"invalid_token", "auth"),
    ("slack", 400, b"invalid_token", "auth"),
    ("slack", 410, b"channel_is_archived", "auth"),
    ("slack", 403, b"action_prohibited", "auth"),
    ("slack", 500, b"rollup_error", "retry"),
    ("slack", 429, b"rate_limited", "rate_limited"),
    ("telegram", 200, b'{"ok":true,"result":{"message_id":1}}', "ok"),
    ("telegram", 400, b'{"ok":false,"error_code":400,"description":"Bad Request: can\'t parse entities: '
                      b'Character \'.\' is reserved and must be escaped with the preceding \'\\\\\'"}', "rejected"),
    ("telegram", 400, b'{"ok":false,"error_code":400,"description":"Bad Request: message is too long"}', "rejected"),
    ("telegram", 400, b'{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}', "auth"),
    ("telegram", 401, b'{"ok":false,"error_code":401,"description":"Unauthorized"}', "auth"),
    ("telegram", 403, b'{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}', "auth"),
    ("telegram", 429, TELEGRAM_429, "rate_limited"),
    ("telegram", 502, b"<html><body>502 Bad Gateway</body></html>", "retry"),
    ("webhook", 202, b"", "ok"),
    ("webhook", 409, b'{"error":"duplicate"}', "ok"),
    ("webhook", 301, b"", "auth"),
    ("webhook", 408, b"", "retry"),
    ("webhook", 422, b'{"error":"bad frame"}', "rejected"),
    ("webhook", 410, b"", "auth"),
    ("webhook", 503, b"", "retry"),
])
def test_classification_of_real_answers(kind: str, status: int, body: bytes, verdict: str) -> None:
    assert classify_response(kind, status, body) == verdict


def test_interpretation_gives_a_hint_and_a_safe_reason() -> None:
    verdict = interpret_response("discord", 429, {"Retry-After": "2"}, DISCORD_429)
    assert (verdict.verdict, verdict.retry_after) == ("rate_limited", pytest.approx(1.337))
    verdict = interpret_response("telegram", 401, {}, b'{"ok":false,"error_code":401,"description":"Unauthorized"}')
    assert (verdict.verdict, verdict.retry_after, verdict.detail) == ("auth", None, "Telegram HTTP 401: Unauthorized")
    assert describe_response("discord", 400, b'{"code": 50035, "errors": {"embeds": {"0": {"title": {"_errors": '
                             b'[{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 256 or fewer in length."}]}}}}, '
                             b'"message": "Invalid Form Body"}') == \
        "Discord HTTP 400: Invalid Form Body (50035): embeds.0.title: Must be 256 or fewer in length."
    assert describe_response("slack", 404, b"no_service") == "Slack HTTP 404: no_service"
    assert describe_response("webhook", 502, b"<html>oops</html>") == "webhook HTTP 502"


# -- targets ------------------------------------------------------------------------------------------------------


def test_targets_build_requests_and_never_show_their_secrets() -> None:
    message = whale()
    targets = [WebhookTarget("https://hooks.example.org/pm/secret-path?token=sekrit", secret="sig-secret"),
               DiscordTarget(DISCORD_URL), SlackTarget(SLACK_URL),
               TelegramTarget(TG_TOKEN, TG_CHAT, base_url="http://127.0.0.1:9")]
    for target in targets:
        for text in (repr(target), target.describe()):
            for secret in ("sekrit", "secret-path", "sig-secret", "secret-token", "SlackSecret", "AAsecret"):
                assert secret not in text
        assert target.single(message).method == "POST"
        assert target.digest([message, copy.copy(message)], window_seconds=60).method == "POST"
        assert target.interpret(200 if target.kind != "discord" else 204, {}, b"ok" if target.kind == "slack" else
                                b'{"ok":true}' if target.kind == "telegram" else b"").verdict == "ok"
    assert targets[1].describe() == "discord webhook 1234567890123456789"
    assert targets[2].describe() == "slack T00000001/B00000001"
    assert targets[3].describe() == f"telegram bot 7123456789 → chat {TG_CHAT}"
    assert targets[3].single(message).url == f"http://127.0.0.1:9/bot{TG_TOKEN}/sendMessage"
