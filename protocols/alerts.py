"""The alert outlets' wire formats: a generic webhook, Discord, Slack and Telegram (no I/O).

The one place that knows these four formats.  Everything here is pure: an alert (the exact
client frame of a broadcast, see :class:`AlertMessage`) goes in, an :class:`OutgoingRequest`
(method, URL, headers, body bytes) comes out; an HTTP answer goes in, a :class:`ResponseVerdict`
(``ok`` / ``retry`` / ``rate_limited`` / ``auth`` / ``rejected``, a retry hint, a short reason)
comes out.  The outlet actors do the sending, the retries and the bookkeeping.

**Generic webhook** — ``POST <url>`` of the exact JSON frame a WebSocket client gets
(``{"type","seq","data"}``; a digest is the client protocol's ``{"type":"batch","data":[…frames…]}``),
``Content-Type: application/json``, ``User-Agent: polymarket-insights/<version>``,
``Idempotency-Key: <alert key>`` (a digest's key is derived from its alerts' keys, so a resent
digest carries the same key) and, when a secret is set, ``X-Signature: sha256=<hex>``: the
HMAC-SHA256 of the raw body keyed with the secret (:func:`sign`).  2xx is delivered; a 409 is
taken as "already received" (a receiver enforcing the idempotency key).

**Discord** — execute webhook: ``POST https://discord.com/api/webhooks/{id}/{token}?wait=true``
with ``{"embeds":[…], "allowed_mentions":{"parse":[]}}`` (market titles and trader names never
ping anyone).  With ``wait=true`` Discord answers 200 and the created message once it is saved
(without it, 204 and "a message that is not saved does not return an error").  Limits enforced
here: 10 embeds, title 256, description 4096, 25 fields, field name 256, field value 1024, footer
2048, author name 256, 6000 characters over all embeds.  Errors: ``{"message","code"}``; 400
``50035 Invalid Form Body`` with nested ``errors``; 401 ``50027 Invalid Webhook Token``; 404
``10015 Unknown Webhook`` (deleted); 429 ``{"message","retry_after": seconds (float),"global"}``
plus a ``Retry-After`` header.

**Slack** — incoming webhook: ``POST https://hooks.slack.com/services/T…/B…/…`` with
``{"text", "blocks":[…], "unfurl_links":false, "unfurl_media":false}``; ``text`` is the
notification fallback.  Answers 200 with the text body ``ok``; errors are text bodies:
``invalid_payload``, ``invalid_blocks``, ``no_text``, ``user_not_found`` (400),
``action_prohibited``, ``invalid_token``, ``team_disabled`` (403), ``channel_not_found``,
``no_service``, ``no_team`` (404), ``channel_is_archived`` (410), ``rollup_error`` (500); 429
with ``Retry-After``.  mrkdwn needs ``&``, ``<`` and ``>`` escaped as entities; limits: 50
blocks, section text 3000, 10 section fields of 2000, header 150, 10 context elements.

**Telegram** — Bot API ``POST {base}/bot{token}/sendMessage`` with ``{"chat_id", "text",
"parse_mode":"MarkdownV2", "link_preview_options":{"is_disabled":true}}`` (Bot API 7.0 replaced
``disable_web_page_preview`` by ``link_preview_options``).  Answers ``{"ok":true,"result":{…}}``
or ``{"ok":false,"error_code","description","parameters"?}`` with the same HTTP status: 400
``Bad Request: can't parse entities: …`` (bad escaping), ``Bad Request: chat not found``, 401
``Unauthorized``, 403 ``Forbidden: bot was blocked by the user`` / ``…kicked…``, 429 ``Too Many
Requests: retry after N`` with ``parameters.retry_after`` and a ``Retry-After`` header.  Text:
at most 4096 characters; MarkdownV2 needs every one of ``_ * [ ] ( ) ~ ` > # + - = | { } . !``
and ``\\`` escaped with a ``\\`` outside entities, and ``)`` and ``\\`` inside a link's URL.

Nothing here raises on odd alert data: a missing or ill-typed field is left out of the message.
"""

from __future__ import annotations

import email.utils
import hashlib
import hmac
import math
import re
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

import attrs
import orjson

#: The outlet kinds, as configured.
OUTLET_KINDS = ("webhook", "discord", "slack", "telegram")

#: What :func:`classify_response` says about an answer.
Verdict = Literal["ok", "retry", "rate_limited", "auth", "rejected"]

#: Our product name in ``User-Agent`` and message footers.
PRODUCT = "polymarket-insights"
APP_NAME = "Polymarket Insights"

#: Whales (and forecasts) listed by name in a digest; the rest are counted.
DIGEST_LISTED = 5

# Discord's documented limits (characters).
DISCORD_MAX_EMBEDS = 10
DISCORD_TITLE_MAX = 256
DISCORD_DESCRIPTION_MAX = 4096
DISCORD_FIELDS_MAX = 25
DISCORD_FIELD_NAME_MAX = 256
DISCORD_FIELD_VALUE_MAX = 1024
DISCORD_FOOTER_MAX = 2048
DISCORD_AUTHOR_MAX = 256
DISCORD_CONTENT_MAX = 2000
DISCORD_EMBEDS_TOTAL_MAX = 6000

# Slack Block Kit limits (characters).
SLACK_MAX_BLOCKS = 50
SLACK_SECTION_TEXT_MAX = 3000
SLACK_SECTION_FIELDS_MAX = 10
SLACK_FIELD_TEXT_MAX = 2000
SLACK_HEADER_MAX = 150
SLACK_CONTEXT_ELEMENTS_MAX = 10
#: Slack truncates ``text`` beyond 40,000 characters; we stay far below.
SLACK_TEXT_MAX = 3000

# Telegram.
TELEGRAM_TEXT_MAX = 4096
TELEGRAM_DEFAULT_BASE_URL = "https://api.telegram.org"

#: Characters MarkdownV2 reserves outside entities (plus the backslash itself).
MARKDOWN_V2_RESERVED = "_*[]()~`>#+-=|{}.!"

_TIER_LABELS = {"whale": "Whale", "big_whale": "Big whale", "mega_whale": "Mega whale"}
_TIER_EMOJI = {"whale": "🐋", "big_whale": "🐋", "mega_whale": "🚨"}
_TIER_RANK = {"whale": 1, "big_whale": 2, "mega_whale": 3}
_DISCORD_COLORS = {"whale": 0x3498DB, "big_whale": 0xE67E22, "mega_whale": 0xE74C3C, "prediction": 0x9B59B6}
_DISCORD_DEFAULT_COLOR = 0x95A5A6

#: Longest market title / trader name / outcome / model name shown in one alert (characters).
_TITLE_MAX = 300
_NAME_MAX = 64
_LABEL_MAX = 80
#: Longest title in a digest line.
_DIGEST_TITLE_MAX = 120
#: Models listed in a forecast (the rest are counted).
_MODELS_LISTED = 12
#: Outcomes listed in a forecast's votes.
_VOTES_LISTED = 6


# -- data --------------------------------------------------------------------------------------------


@attrs.frozen
class AlertMessage:
    """One broadcast to deliver to an outlet.

    Attributes:
        key: The alert's identity (stable across restarts; a webhook's ``Idempotency-Key``).
        type: The broadcast type (``whale_trade``, ``prediction``, …).
        seq: The broadcast's ``seq`` in the client protocol, if it has one.
        data: The frame's ``data`` object.
        frame: The exact client frame (JSON bytes), as a WebSocket client gets it.
    """

    key: str
    type: str
    seq: int | None
    data: dict[str, Any] = attrs.field(eq=False)
    frame: bytes

    @classmethod
    def from_frame(cls, key: str, frame: bytes | str) -> AlertMessage:
        """An alert from a client frame ``{"type","seq"?,"data"}``.

        Raises:
            ValueError: the frame is not such an object.
        """
        raw = frame.encode() if isinstance(frame, str) else bytes(frame)
        obj = orjson.loads(raw)
        if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
            raise ValueError('expected a frame {"type", "seq", "data"}')
        data = obj.get("data")
        seq = obj.get("seq")
        return cls(key=key, type=obj["type"], seq=seq if isinstance(seq, int) and not isinstance(seq, bool) else None,
                   data=data if isinstance(data, dict) else {}, frame=raw)


@attrs.frozen
class OutgoingRequest:
    """One HTTP request to make.  ``url`` and the body may hold secrets: they stay out of ``repr``."""

    method: str
    url: str = attrs.field(repr=False)
    headers: dict[str, str] = attrs.field(eq=False)
    body: bytes = attrs.field(repr=False)

    def json(self) -> Any:
        """The body, decoded."""
        return orjson.loads(self.body)


@attrs.frozen
class ResponseVerdict:
    """What an outlet's answer means for the alert.

    Attributes:
        verdict: ``ok`` (delivered), ``retry`` (5xx, 408, …: back off and try again),
            ``rate_limited`` (429: wait ``retry_after`` if given), ``auth`` (bad token, deleted
            webhook, bot removed: pause the outlet; the alert is not at fault), ``rejected``
            (the message itself was refused: do not retry, record it undeliverable).
        retry_after: Seconds the outlet asked us to wait, if it said.
        detail: A short reason for logs and the delivery record (never holds a URL or token).
    """

    verdict: Verdict
    retry_after: float | None
    detail: str


# -- formatting helpers ---------------------------------------------------------------------------------


def format_usd(amount: float) -> str:
    """``24150.5`` → ``"$24,150"`` (whole dollars, thousands separated)."""
    if not math.isfinite(amount):
        return "$?"
    sign = "-" if amount < 0 else ""
    return f"{sign}${abs(amount):,.0f}"


def format_cents(price: float) -> str:
    """A share price as cents: ``0.71`` → ``"71¢"``, ``0.705`` → ``"70.5¢"``."""
    if not math.isfinite(price):
        return "?¢"
    cents = round(price * 100, 1)
    return f"{cents:.0f}¢" if cents == int(cents) else f"{cents:.1f}¢"


def format_percent(fraction: float) -> str:
    """``0.7`` → ``"70%"``."""
    if not math.isfinite(fraction):
        return "?%"
    return f"{fraction * 100:.0f}%"


def format_shares(size: float) -> str:
    """``34014.8`` → ``"34,015"``."""
    return f"{size:,.0f}" if math.isfinite(size) else "?"


def short_wallet(wallet: str) -> str:
    """``0x1234567890abcdef…`` → ``"0x1234…cdef"``; short strings are kept."""
    wallet = wallet.strip()
    if len(wallet) <= 12:
        return wallet
    return f"{wallet[:6]}…{wallet[-4:]}"


def format_timestamp(value: Any) -> str | None:
    """An ISO 8601 time (``2025-10-10T08:41:12Z``) or epoch seconds as ``2025-10-10 08:41:12 UTC``."""
    moment = _parse_time(value)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment is not None else None


def format_duration(seconds: float) -> str:
    """``60`` → ``"60 s"``, ``300`` → ``"5 min"``, ``7200`` → ``"2 h"``."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.0f} h"


def truncate(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, ending in ``…`` when cut."""
    if len(text) <= limit:
        return text
    if limit <= 0:
        return ""
    return text[: limit - 1].rstrip() + "…"


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)) and math.isfinite(value):
        try:
            return datetime.fromtimestamp(float(value), UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _text(data: Mapping[str, Any], *names: str, limit: int = _LABEL_MAX) -> str:
    for name in names:
        value = data.get(name)
        if isinstance(value, str) and value.strip():
            return truncate(" ".join(value.split()), limit)
    return ""


def _number(data: Mapping[str, Any], name: str) -> float | None:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                return None
        else:
            return None
    value = float(value)
    return value if math.isfinite(value) else None


_URL_UNSAFE = re.compile(r"[\s()<>|\"'`\\\[\]{}]")
#: Longer URLs are not linked.
_URL_MAX = 2048


def safe_url(url: Any) -> str | None:
    """``url`` if it is an absolute http(s) URL, with characters that break markup links
    (spaces, brackets, ``|``, quotes, backslashes) percent-encoded; else None."""
    if not isinstance(url, str):
        return None
    url = url.strip()
    if len(url) > _URL_MAX:
        return None
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return _URL_UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), url)


def _profile_url(wallet: str) -> str | None:
    if re.fullmatch(r"0x[0-9a-fA-F]{40}", wallet):
        return f"https://polymarket.com/profile/{wallet}"
    return None


def _tx_url(tx_hash: str) -> str | None:
    if re.fullmatch(r"0x[0-9a-fA-F]{64}", tx_hash):
        return f"https://polygonscan.com/tx/{tx_hash}"
    return None


# -- what a message says, before markup -----------------------------------------------------------------


@attrs.frozen
class Span:
    """A piece of message text: plain, bold and/or a link (rendered per outlet)."""

    text: str
    bold: bool = False
    url: str | None = None


Line = tuple[Span, ...]


def _line(*parts: Span | str | None) -> Line:
    return tuple(p if isinstance(p, Span) else Span(p) for p in parts if p)


@attrs.frozen
class WhaleView:
    """The facts of one whale trade that messages show (from a ``whale_trade`` frame)."""

    title: str
    url: str | None
    amount: float | None
    price: float | None
    action: str
    side: str
    size: float | None
    wallet: str
    trader: str
    tier: str
    moment: datetime | None
    tx_hash: str

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> WhaleView:
        return cls(
            title=_text(data, "market", "title", limit=_TITLE_MAX) or "(unknown market)",
            url=safe_url(data.get("url")),
            amount=_number(data, "amount"),
            price=_number(data, "price"),
            action=_text(data, "action", limit=8).upper(),
            side=_text(data, "side", "outcome").upper(),
            size=_number(data, "size"),
            wallet=_text(data, "wallet", limit=_NAME_MAX),
            trader=_text(data, "trader", limit=_NAME_MAX),
            tier=_text(data, "tier", limit=20).lower(),
            moment=_parse_time(data.get("timestamp")),
            tx_hash=_text(data, "transaction_hash", limit=80),
        )

    @property
    def tier_label(self) -> str:
        return _TIER_LABELS.get(self.tier, self.tier.replace("_", " ").capitalize() or "Whale")

    @property
    def emoji(self) -> str:
        return _TIER_EMOJI.get(self.tier, "🐋")

    @property
    def trade(self) -> str:
        """``"BUY YES"``."""
        return " ".join(p for p in (self.action, self.side) if p) or "TRADE"

    def headline(self) -> str:
        """``"🐋 Big whale: $24,150 BUY YES at 71¢"`` (plain text)."""
        parts = [f"{self.emoji} {self.tier_label}:"]
        if self.amount is not None:
            parts.append(format_usd(self.amount))
        parts.append(self.trade)
        if self.price is not None:
            parts.append(f"at {format_cents(self.price)}")
        return " ".join(parts)

    def who(self) -> Span | None:
        """The trader: their name (with the short wallet) or the short wallet, linked to the profile."""
        if not self.wallet and not self.trader:
            return None
        short = short_wallet(self.wallet) if self.wallet else ""
        label = f"{self.trader} ({short})" if self.trader and short and self.trader != self.wallet else (
            self.trader or short)
        return Span(label, url=_profile_url(self.wallet))

    def deal(self) -> Line:
        """``**$24,150** at 71¢ · 34,015 shares``."""
        parts: list[Span | str | None] = []
        if self.amount is not None:
            parts.append(Span(format_usd(self.amount), bold=True))
        if self.price is not None:
            parts.append(f" at {format_cents(self.price)}")
        if self.size is not None:
            parts.append(f" · {format_shares(self.size)} shares")
        return _line(*parts)

    def digest_line(self) -> Line:
        """``$24,150 BUY YES at 71¢ — <title>`` for digests."""
        head = f"{format_usd(self.amount)}" if self.amount is not None else "?"
        rest = f" {self.trade}" + (f" at {format_cents(self.price)}" if self.price is not None else "") + " — "
        return _line(Span(head, bold=True), rest, Span(truncate(self.title, _DIGEST_TITLE_MAX), url=self.url))


@attrs.frozen
class ModelVote:
    """One model's answer in a forecast."""

    model: str
    outcome: str
    probability: float | None
    confidence: float | None


@attrs.frozen
class PredictionView:
    """The facts of one swarm forecast that messages show (from a ``prediction`` frame)."""

    title: str
    url: str | None
    outcome: str
    first_outcome: str
    probability: float | None
    market_price: float | None
    confidence: float | None
    votes: tuple[tuple[str, int], ...]
    models: tuple[ModelVote, ...]
    failed: int
    moment: datetime | None

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> PredictionView:
        outcomes = data.get("outcomes")
        first = outcomes[0] if isinstance(outcomes, list) and outcomes and isinstance(outcomes[0], str) else "Yes"
        raw_votes = data.get("votes")
        votes: list[tuple[str, int]] = []
        if isinstance(raw_votes, dict):
            for name, count in raw_votes.items():
                if isinstance(name, str) and isinstance(count, int) and not isinstance(count, bool):
                    votes.append((truncate(name, _LABEL_MAX), count))
        votes.sort(key=lambda v: -v[1])
        models: list[ModelVote] = []
        raw_models = data.get("models")
        if isinstance(raw_models, list):
            for m in raw_models:
                if isinstance(m, dict):
                    models.append(ModelVote(_text(m, "model", limit=_LABEL_MAX) or "model",
                                            _text(m, "outcome"), _number(m, "probability"),
                                            _number(m, "confidence")))
        failed = data.get("models_failed")
        return cls(
            title=_text(data, "title", "market", limit=_TITLE_MAX) or "(unknown market)",
            url=safe_url(data.get("url")),
            outcome=_text(data, "outcome") or "?",
            first_outcome=truncate(first, _LABEL_MAX),
            probability=_number(data, "probability"),
            market_price=_number(data, "market_price"),
            confidence=_number(data, "confidence"),
            votes=tuple(votes),
            models=tuple(models),
            failed=len(failed) if isinstance(failed, list) else 0,
            moment=_parse_time(data.get("timestamp")),
        )

    def headline(self) -> str:
        """``"🔮 AI forecast: Yes (P(Yes) 70%, market 71%)"`` (plain text)."""
        odds = []
        if self.probability is not None:
            odds.append(f"P({self.first_outcome}) {format_percent(self.probability)}")
        if self.market_price is not None:
            odds.append(f"market {format_percent(self.market_price)}")
        return f"🔮 AI forecast: {self.outcome}" + (f" ({', '.join(odds)})" if odds else "")

    def odds(self) -> Line:
        """``P(Yes) **70%** vs market 71% (−1 pt)``."""
        parts: list[Span | str | None] = []
        if self.probability is not None:
            parts += [f"P({self.first_outcome}) ", Span(format_percent(self.probability), bold=True)]
        if self.market_price is not None:
            parts.append(f" vs market {format_percent(self.market_price)}")
            if self.probability is not None:
                edge = round((self.probability - self.market_price) * 100)
                parts.append(f" ({'+' if edge > 0 else '−' if edge < 0 else '±'}{abs(edge)} pt)")
        return _line(*parts)

    def consensus(self) -> Line:
        """``Swarm: **Yes** · confidence 27% · votes Yes 2, No 1``."""
        parts: list[Span | str | None] = ["Swarm: ", Span(self.outcome, bold=True)]
        if self.confidence is not None:
            parts.append(f" · confidence {format_percent(self.confidence)}")
        if self.votes:
            shown = ", ".join(f"{name} {count}" for name, count in self.votes[:_VOTES_LISTED])
            more = len(self.votes) - _VOTES_LISTED
            parts.append(" · votes " + shown + (f", …{more} more" if more > 0 else ""))
        return _line(*parts)

    def vote_text(self, vote: ModelVote) -> str:
        """``Yes · P(Yes) 80% · confidence 60%`` (plain text)."""
        bits = [vote.outcome or "?"]
        if vote.probability is not None:
            bits.append(f"P({self.first_outcome}) {format_percent(vote.probability)}")
        if vote.confidence is not None:
            bits.append(f"confidence {format_percent(vote.confidence)}")
        return " · ".join(bits)

    def model_line(self, vote: ModelVote) -> Line:
        """``**openai/gpt-4o-mini**: Yes · P(Yes) 80% · confidence 60%``."""
        return _line(Span(vote.model, bold=True), ": " + self.vote_text(vote))

    def model_lines(self) -> list[Line]:
        lines = [self.model_line(v) for v in self.models[:_MODELS_LISTED]]
        more = len(self.models) - _MODELS_LISTED
        if more > 0:
            lines.append(_line(f"…and {more} more model{'s' if more > 1 else ''}"))
        if self.failed:
            lines.append(_line(f"{self.failed} model{'s' if self.failed > 1 else ''} did not answer"))
        return lines

    def digest_line(self) -> Line:
        """``Yes · P(Yes) 70% vs market 71% — <title>`` for digests."""
        odds = "".join(s.text for s in self.odds())
        return _line(Span(self.outcome, bold=True), f" · {odds} — " if odds else " — ",
                     Span(truncate(self.title, _DIGEST_TITLE_MAX), url=self.url))


def _alert_time(alert: AlertMessage) -> datetime | None:
    return _parse_time(alert.data.get("timestamp"))


@attrs.frozen
class DigestView:
    """Several alerts folded into one message (an outlet's rate cap was exceeded)."""

    whales: tuple[WhaleView, ...]
    predictions: tuple[PredictionView, ...]
    others: int
    total_usd: float
    first: datetime | None
    last: datetime | None
    window_seconds: float | None

    @classmethod
    def from_alerts(cls, alerts: Sequence[AlertMessage], window_seconds: float | None = None) -> DigestView:
        whales = [WhaleView.from_data(a.data) for a in alerts if a.type == "whale_trade"]
        predictions = [PredictionView.from_data(a.data) for a in alerts if a.type == "prediction"]
        moments = [m for m in (_alert_time(a) for a in alerts) if m is not None]
        whales.sort(key=lambda w: -(w.amount or 0.0))
        predictions.sort(key=lambda p: -(p.confidence or 0.0))
        return cls(tuple(whales), tuple(predictions), len(alerts) - len(whales) - len(predictions),
                   sum(w.amount or 0.0 for w in whales), min(moments, default=None), max(moments, default=None),
                   window_seconds)

    @property
    def count(self) -> int:
        return len(self.whales) + len(self.predictions) + self.others

    @property
    def top_tier(self) -> str:
        return max((w.tier for w in self.whales), key=lambda t: _TIER_RANK.get(t, 0), default="")

    def when(self) -> str:
        """``"in 60 s"``, ``"between 08:41 and 08:43 UTC"`` or ``""``."""
        if self.window_seconds is not None and self.window_seconds > 0:
            return f"in {format_duration(self.window_seconds)}"
        if self.first is not None and self.last is not None:
            a, b = self.first.strftime("%H:%M"), self.last.strftime("%H:%M")
            return f"at {a} UTC" if a == b else f"between {a} and {b} UTC"
        return ""

    def headline(self) -> str:
        """``"12 whale trades in 60 s: total $1,234,567"`` (plus forecasts / other alerts)."""
        parts = []
        if self.whales:
            n = len(self.whales)
            parts.append(f"{n} whale trade{'s' if n > 1 else ''}")
        if self.predictions:
            n = len(self.predictions)
            parts.append(f"{n} AI forecast{'s' if n > 1 else ''}")
        if self.others:
            parts.append(f"{self.others} other alert{'s' if self.others > 1 else ''}")
        head = " and ".join(parts) if parts else "No alerts"
        when = self.when()
        head = f"{head} {when}" if when else head
        if self.whales:
            head += f": total {format_usd(self.total_usd)}"
        return head

    def emoji(self) -> str:
        return _TIER_EMOJI.get(self.top_tier, "🐋") if self.whales else "🔮"

    def sections(self) -> list[tuple[str, list[Line], int]]:
        """``(intro, listed lines, how many more)`` per kind of alert."""
        out: list[tuple[str, list[Line], int]] = []
        if self.whales:
            listed = self.whales[:DIGEST_LISTED]
            intro = "The largest:" if len(self.whales) <= DIGEST_LISTED else f"The {len(listed)} largest:"
            out.append((intro, [w.digest_line() for w in listed], len(self.whales) - len(listed)))
        if self.predictions:
            listed_p = self.predictions[:DIGEST_LISTED]
            intro = "AI forecasts:" if len(self.predictions) <= DIGEST_LISTED else \
                f"The {len(listed_p)} most confident AI forecasts:"
            out.append((intro, [p.digest_line() for p in listed_p], len(self.predictions) - len(listed_p)))
        return out


# -- markup ------------------------------------------------------------------------------------------------


def escape_markdown_v2(text: str) -> str:
    """``text`` as literal Telegram MarkdownV2 outside entities: every reserved character
    (``_ * [ ] ( ) ~ ` > # + - = | { } . !``) and the backslash get a preceding ``\\``."""
    return "".join("\\" + c if c in MARKDOWN_V2_RESERVED or c == "\\" else c for c in text)


def escape_markdown_v2_url(url: str) -> str:
    """``url`` for the ``(...)`` part of a MarkdownV2 inline link: ``)`` and ``\\`` escaped."""
    return url.replace("\\", "\\\\").replace(")", "\\)")


def escape_slack(text: str) -> str:
    """``text`` for Slack mrkdwn / ``text``: the three control characters as entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_DISCORD_SPECIAL = re.compile(r"([\\*_~`|>#\-\[\]()<])")


def escape_discord(text: str) -> str:
    """``text`` as literal Discord markdown (backslash before every markdown character)."""
    return _DISCORD_SPECIAL.sub(r"\\\1", text)


def render_plain(line: Line) -> str:
    return "".join(s.text for s in line)


def render_markdown_v2(line: Line) -> str:
    out = []
    for s in line:
        piece = escape_markdown_v2(s.text)
        if s.url and s.text:
            piece = f"[{piece}]({escape_markdown_v2_url(s.url)})"
        if s.bold and s.text:
            piece = f"*{piece}*"
        out.append(piece)
    return "".join(out)


def render_discord(line: Line) -> str:
    out = []
    for s in line:
        piece = escape_discord(s.text)
        if s.url and s.text:
            piece = f"[{piece}]({s.url})"
        if s.bold and s.text:
            piece = f"**{piece}**"
        out.append(piece)
    return "".join(out)


def render_slack(line: Line) -> str:
    out = []
    for s in line:
        # Slack has no escape for * _ ~: bold is kept for our own text only (amounts, labels)
        piece = escape_slack(s.text)
        if s.url and s.text:
            piece = f"<{s.url}|{piece}>"
        if s.bold and s.text and not s.url and "*" not in s.text:
            piece = f"*{piece}*"
        out.append(piece)
    return "".join(out)


def _fit(head: list[str], items: list[str], limit: int, *, more: int = 0,
         more_line: Callable[[int], str] = lambda n: f"…and {n} more", sep: str = "\n") -> str:
    """``head`` then as many ``items`` as fit in ``limit`` characters, then a "…and N more" line
    (counting ``more`` items never listed).  Lines are whole: nothing is cut mid-escape."""
    text = ""
    for line in head:  # whole head lines (callers keep them short; a line is never cut mid-escape)
        candidate = text + sep + line if text else line
        if len(candidate) > limit:
            return text or truncate(line, limit)
        text = candidate
    shown = 0
    for item in items:
        left = len(items) - shown - 1 + more
        candidate = text + sep + item if text else item
        reserve = len(sep + more_line(left)) if left else 0
        if len(candidate) + reserve > limit:
            break
        text = candidate
        shown += 1
    left = len(items) - shown + more
    if left:
        tail = more_line(left)
        if len(text) + len(sep) + len(tail) <= limit:
            text = text + sep + tail if text else tail
    return text


# -- the generic webhook ---------------------------------------------------------------------------------


def sign(body: bytes, secret: str) -> str:
    """``X-Signature`` of ``body``: ``"sha256=" + hex(HMAC-SHA256(secret, body))``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(body: bytes, secret: str, header: str | None) -> bool:
    """Whether ``header`` is :func:`sign` of ``body`` (constant-time)."""
    return header is not None and hmac.compare_digest(sign(body, secret), header.strip())


def user_agent(version: str) -> str:
    return f"{PRODUCT}/{version}"


def digest_key(keys: Iterable[str]) -> str:
    """The identity of a digest of alerts with these ``keys`` (order-independent)."""
    joined = "\n".join(sorted(keys)).encode()
    return "digest-" + hashlib.sha256(joined).hexdigest()[:40]


_HEADER_SAFE = re.compile(r"[!-~]{1,200}")


def _header_value(key: str) -> str:
    """``key`` if it is a valid header value (visible ASCII), else a stable hash of it."""
    return key if _HEADER_SAFE.fullmatch(key) else "key-" + hashlib.sha256(key.encode()).hexdigest()[:40]


def _webhook_request(url: str, body: bytes, key: str, secret: str | None, version: str) -> OutgoingRequest:
    headers = {"Content-Type": "application/json", "User-Agent": user_agent(version),
               "Idempotency-Key": _header_value(key)}
    if secret:
        headers["X-Signature"] = sign(body, secret)
    return OutgoingRequest("POST", url, headers, body)


def alert_identity(alert: AlertMessage) -> str:
    """The alert's key, or (for an alert without one) a hash of its frame."""
    return alert.key or "frame-" + hashlib.sha256(alert.frame).hexdigest()[:40]


def webhook_request(url: str, alert: AlertMessage, *, secret: str | None = None,
                    version: str = "0") -> OutgoingRequest:
    """The alert's exact client frame, POSTed to ``url``."""
    return _webhook_request(url, alert.frame, alert_identity(alert), secret, version)


def webhook_digest_request(url: str, alerts: Sequence[AlertMessage], *, secret: str | None = None,
                           version: str = "0") -> OutgoingRequest:
    """Several alerts as one ``{"type":"batch","data":[…frames…]}`` (the client protocol's batch)."""
    body = b'{"type":"batch","data":[' + b",".join(a.frame for a in alerts) + b"]}"
    return _webhook_request(url, body, digest_key(alert_identity(a) for a in alerts), secret, version)


# -- Discord ------------------------------------------------------------------------------------------------


def discord_execute_url(webhook_url: str) -> str:
    """The webhook URL with ``wait=true`` (Discord then answers 200 once the message is saved)."""
    parts = urllib.parse.urlsplit(webhook_url)
    query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True) if k != "wait"]
    query.append(("wait", "true"))
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def discord_embed_size(embed: Mapping[str, Any]) -> int:
    """Characters Discord counts against its 6000 limit: title, description, field names and
    values, footer text, author name."""
    total = len(embed.get("title", "")) + len(embed.get("description", ""))
    total += len((embed.get("footer") or {}).get("text", "")) + len((embed.get("author") or {}).get("name", ""))
    for field in embed.get("fields", ()):
        total += len(field.get("name", "")) + len(field.get("value", ""))
    return total


def _field(name: str, value: str, inline: bool = True) -> dict[str, Any]:
    return {"name": truncate(name, DISCORD_FIELD_NAME_MAX) or "\u200b",
            "value": truncate(value, DISCORD_FIELD_VALUE_MAX) or "\u200b", "inline": inline}


def _footer(alert_type: str, seq: int | None) -> dict[str, str]:
    text = f"{APP_NAME} · {alert_type}" + (f" #{seq}" if seq is not None else "")
    return {"text": truncate(text, DISCORD_FOOTER_MAX)}


def _discord_payload(embeds: list[dict[str, Any]]) -> bytes:
    for embed in embeds:
        while discord_embed_size(embed) > DISCORD_EMBEDS_TOTAL_MAX and embed.get("fields"):
            embed["fields"].pop()
        if discord_embed_size(embed) > DISCORD_EMBEDS_TOTAL_MAX:
            embed["description"] = truncate(embed.get("description", ""), DISCORD_DESCRIPTION_MAX // 2)
    return orjson.dumps({"embeds": embeds[:DISCORD_MAX_EMBEDS], "allowed_mentions": {"parse": []}})


def _discord_whale_embed(alert: AlertMessage, w: WhaleView) -> dict[str, Any]:
    embed: dict[str, Any] = {
        "author": {"name": truncate(w.headline(), DISCORD_AUTHOR_MAX)},
        "title": truncate(w.title, DISCORD_TITLE_MAX),
        "description": truncate(render_discord(_line(f"{w.trade} · ", *w.deal())), DISCORD_DESCRIPTION_MAX),
        "color": _DISCORD_COLORS.get(w.tier, _DISCORD_DEFAULT_COLOR),
        "footer": _footer(alert.type, alert.seq),
    }
    if w.url:
        embed["url"] = w.url
    fields = []
    who = w.who()
    if who is not None:
        fields.append(_field("Trader", render_discord((who,))))
    fields.append(_field("Tier", w.tier_label))
    tx = _tx_url(w.tx_hash)
    if tx:
        fields.append(_field("Transaction", render_discord((Span(short_wallet(w.tx_hash), url=tx),))))
    embed["fields"] = fields
    if w.moment is not None:
        embed["timestamp"] = _iso(w.moment)
    return embed


def _discord_prediction_embed(alert: AlertMessage, p: PredictionView) -> dict[str, Any]:
    description = "\n".join(render_discord(line) for line in (p.consensus(), p.odds()) if line)
    embed: dict[str, Any] = {
        "author": {"name": truncate(p.headline(), DISCORD_AUTHOR_MAX)},
        "title": truncate(p.title, DISCORD_TITLE_MAX),
        "description": truncate(description, DISCORD_DESCRIPTION_MAX),
        "color": _DISCORD_COLORS["prediction"],
        "footer": _footer(alert.type, alert.seq),
    }
    if p.url:
        embed["url"] = p.url
    fields = []
    for vote in p.models[: DISCORD_FIELDS_MAX - 1]:
        fields.append(_field(vote.model, escape_discord(p.vote_text(vote))))
    extra = len(p.models) - len(fields) + p.failed
    if extra > 0:
        fields.append(_field("Not shown / no answer", str(extra), inline=False))
    embed["fields"] = fields
    if p.moment is not None:
        embed["timestamp"] = _iso(p.moment)
    return embed


def _discord_generic_embed(alert: AlertMessage) -> dict[str, Any]:
    title = _text(alert.data, "title", "market", limit=DISCORD_TITLE_MAX) or alert.type
    return {"title": truncate(title, DISCORD_TITLE_MAX), "description": escape_discord(alert.type),
            "color": _DISCORD_DEFAULT_COLOR, "footer": _footer(alert.type, alert.seq)}


def discord_request(webhook_url: str, alert: AlertMessage, *, version: str = "0") -> OutgoingRequest:
    """One alert as one Discord embed."""
    if alert.type == "whale_trade":
        embed = _discord_whale_embed(alert, WhaleView.from_data(alert.data))
    elif alert.type == "prediction":
        embed = _discord_prediction_embed(alert, PredictionView.from_data(alert.data))
    else:
        embed = _discord_generic_embed(alert)
    return OutgoingRequest("POST", discord_execute_url(webhook_url),
                           {"Content-Type": "application/json", "User-Agent": user_agent(version)},
                           _discord_payload([embed]))


def discord_digest_request(webhook_url: str, alerts: Sequence[AlertMessage], *, window_seconds: float | None = None,
                           version: str = "0") -> OutgoingRequest:
    """Several alerts as one embed: the count and total, then the largest ones."""
    d = DigestView.from_alerts(alerts, window_seconds)
    sections = d.sections()
    budget = (DISCORD_DESCRIPTION_MAX - 2 * len(sections)) // max(1, len(sections))
    blocks = [_fit([f"**{escape_discord(intro)}**"], ["• " + render_discord(line) for line in lines], budget,
                   more=more) for intro, lines, more in sections]
    embed: dict[str, Any] = {
        "title": truncate(f"{d.emoji()} {d.headline()}", DISCORD_TITLE_MAX),
        "description": truncate("\n\n".join(blocks), DISCORD_DESCRIPTION_MAX) or "\u200b",
        "color": _DISCORD_COLORS.get(d.top_tier, _DISCORD_COLORS["prediction"] if d.predictions
                                     else _DISCORD_DEFAULT_COLOR),
        "footer": {"text": f"{APP_NAME} · digest of {d.count} alert{'s' if d.count != 1 else ''}"},
    }
    if d.last is not None:
        embed["timestamp"] = _iso(d.last)
    return OutgoingRequest("POST", discord_execute_url(webhook_url),
                           {"Content-Type": "application/json", "User-Agent": user_agent(version)},
                           _discord_payload([embed]))


# -- Slack ----------------------------------------------------------------------------------------------------


def _mrkdwn(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text}


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


def _slack_payload(plain_text: str, blocks: list[dict[str, Any]]) -> bytes:
    """``plain_text`` (unescaped) becomes the notification ``text``."""
    return orjson.dumps({"text": escape_slack(truncate(plain_text, SLACK_TEXT_MAX)),
                         "blocks": blocks[:SLACK_MAX_BLOCKS], "unfurl_links": False, "unfurl_media": False})


def _slack_context(*parts: str) -> dict[str, Any]:
    return {"type": "context", "elements": [_mrkdwn(truncate(" · ".join(p for p in parts if p),
                                                              SLACK_SECTION_TEXT_MAX))]}


def _slack_title(title: str, url: str | None) -> str:
    """The title linked to ``url`` (a very long URL is left out rather than cut)."""
    linked = render_slack((Span(title, url=url),))
    return linked if url and len(linked) <= SLACK_FIELD_TEXT_MAX else f"*{escape_slack(title)}*"


def _slack_whale(alert: AlertMessage, w: WhaleView) -> tuple[str, list[dict[str, Any]]]:
    title = _slack_title(w.title, w.url)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": _plain(truncate(w.headline(), SLACK_HEADER_MAX))},
        {"type": "section", "text": _mrkdwn(truncate(f"{title}\n{render_slack(_line(w.trade + ' · ', *w.deal()))}",
                                                     SLACK_SECTION_TEXT_MAX))},
    ]
    fields = []
    who = w.who()
    if who is not None:
        fields.append(_mrkdwn(truncate(f"*Trader*\n{render_slack((who,))}", SLACK_FIELD_TEXT_MAX)))
    fields.append(_mrkdwn(f"*Tier*\n{escape_slack(w.tier_label)}"))
    tx = _tx_url(w.tx_hash)
    if tx:
        fields.append(_mrkdwn(f"*Transaction*\n{render_slack((Span(short_wallet(w.tx_hash), url=tx),))}"))
    blocks.append({"type": "section", "fields": fields[:SLACK_SECTION_FIELDS_MAX]})
    blocks.append(_slack_context(escape_slack(format_timestamp(alert.data.get("timestamp")) or ""),
                                 escape_slack(_footer(alert.type, alert.seq)["text"])))
    return f"{w.headline()} — {w.title}", blocks


def _slack_prediction(alert: AlertMessage, p: PredictionView) -> tuple[str, list[dict[str, Any]]]:
    title = _slack_title(p.title, p.url)
    body = _fit([title, render_slack(p.consensus()), render_slack(p.odds())],
                ["• " + render_slack(line) for line in p.model_lines()], SLACK_SECTION_TEXT_MAX)
    blocks = [
        {"type": "header", "text": _plain(truncate(p.headline(), SLACK_HEADER_MAX))},
        {"type": "section", "text": _mrkdwn(body)},
        _slack_context(escape_slack(format_timestamp(alert.data.get("timestamp")) or ""),
                       escape_slack(_footer(alert.type, alert.seq)["text"])),
    ]
    return f"{p.headline()} — {p.title}", blocks


def slack_request(webhook_url: str, alert: AlertMessage, *, version: str = "0") -> OutgoingRequest:
    """One alert as a Slack message: header, details, context; ``text`` is the notification."""
    if alert.type == "whale_trade":
        text, blocks = _slack_whale(alert, WhaleView.from_data(alert.data))
    elif alert.type == "prediction":
        text, blocks = _slack_prediction(alert, PredictionView.from_data(alert.data))
    else:
        title = _text(alert.data, "title", "market", limit=_TITLE_MAX) or alert.type
        text, blocks = f"{alert.type}: {title}", [{"type": "section", "text": _mrkdwn(escape_slack(
            truncate(f"{alert.type}: {title}", SLACK_SECTION_TEXT_MAX // 2)))}]
    return OutgoingRequest("POST", webhook_url, {"Content-Type": "application/json", "User-Agent": user_agent(version)},
                           _slack_payload(text, blocks))


def slack_digest_request(webhook_url: str, alerts: Sequence[AlertMessage], *, window_seconds: float | None = None,
                         version: str = "0") -> OutgoingRequest:
    """Several alerts as one Slack message: the count and total, then the largest ones."""
    d = DigestView.from_alerts(alerts, window_seconds)
    headline = f"{d.emoji()} {d.headline()}"
    blocks: list[dict[str, Any]] = [{"type": "header", "text": _plain(truncate(headline, SLACK_HEADER_MAX))}]
    for intro, lines, more in d.sections():
        blocks.append({"type": "section", "text": _mrkdwn(_fit(
            [f"*{escape_slack(intro)}*"], ["• " + render_slack(line) for line in lines], SLACK_SECTION_TEXT_MAX,
            more=more))})
    blocks.append(_slack_context(escape_slack(f"{APP_NAME} · digest of {d.count} alert{'s' if d.count != 1 else ''}")))
    return OutgoingRequest("POST", webhook_url, {"Content-Type": "application/json", "User-Agent": user_agent(version)},
                           _slack_payload(headline, blocks))


# -- Telegram -------------------------------------------------------------------------------------------------


def telegram_method_url(base_url: str, token: str, method: str = "sendMessage") -> str:
    """``{base}/bot{token}/{method}``."""
    return f"{base_url.rstrip('/')}/bot{token}/{method}"


def _chat_id(chat_id: str | int) -> str | int:
    if isinstance(chat_id, int):
        return chat_id
    text = str(chat_id).strip()
    return int(text) if re.fullmatch(r"-?\d{1,20}", text) else text


def _telegram_request(base_url: str, token: str, chat_id: str | int, text: str, version: str) -> OutgoingRequest:
    body = orjson.dumps({"chat_id": _chat_id(chat_id), "text": text, "parse_mode": "MarkdownV2",
                         "link_preview_options": {"is_disabled": True}})
    return OutgoingRequest("POST", telegram_method_url(base_url, token),
                           {"Content-Type": "application/json", "User-Agent": user_agent(version)}, body)


def _telegram_more(n: int) -> str:
    return escape_markdown_v2(f"…and {n} more")


def telegram_text(alert: AlertMessage) -> str:
    """The MarkdownV2 text of one alert (at most 4096 characters, escaped)."""
    if alert.type == "whale_trade":
        w = WhaleView.from_data(alert.data)
        head = [
            render_markdown_v2(_line(f"{w.emoji} ", Span(w.tier_label, bold=True), f" · {w.trade}")),
            render_markdown_v2(w.deal()),
            render_markdown_v2((Span(w.title, url=w.url),)),
        ]
        who = w.who()
        stamp = format_timestamp(alert.data.get("timestamp"))
        tail = render_markdown_v2(_line("👤 ", who, " · " if who and stamp else "", stamp))
        return _fit([line for line in head if line], [tail] if tail else [], TELEGRAM_TEXT_MAX,
                    more_line=_telegram_more)
    if alert.type == "prediction":
        p = PredictionView.from_data(alert.data)
        head = [
            render_markdown_v2(_line("🔮 ", Span("AI forecast", bold=True), " · ", Span(p.title, url=p.url))),
            render_markdown_v2(p.consensus()),
            render_markdown_v2(p.odds()),
        ]
        return _fit([line for line in head if line], ["• " + render_markdown_v2(line) for line in p.model_lines()],
                    TELEGRAM_TEXT_MAX, more_line=_telegram_more)
    title = _text(alert.data, "title", "market", limit=_TITLE_MAX) or alert.type
    return escape_markdown_v2(truncate(f"{alert.type}: {title}", TELEGRAM_TEXT_MAX // 2))


def telegram_request(base_url: str, token: str, chat_id: str | int, alert: AlertMessage, *,
                     version: str = "0") -> OutgoingRequest:
    """One alert as one ``sendMessage`` (MarkdownV2, no link preview)."""
    return _telegram_request(base_url, token, chat_id, telegram_text(alert), version)


def telegram_digest_text(alerts: Sequence[AlertMessage], window_seconds: float | None = None) -> str:
    """The MarkdownV2 text of a digest (at most 4096 characters, escaped)."""
    d = DigestView.from_alerts(alerts, window_seconds)
    head = render_markdown_v2(_line(f"{d.emoji()} ", Span(d.headline(), bold=True)))
    sections = d.sections()
    budget = (TELEGRAM_TEXT_MAX - len(head)) // max(1, len(sections)) - 2
    parts = [head] + [_fit([escape_markdown_v2(intro)], ["• " + render_markdown_v2(line) for line in lines],
                           budget, more=more, more_line=_telegram_more) for intro, lines, more in sections]
    return "\n\n".join(parts)


def telegram_digest_request(base_url: str, token: str, chat_id: str | int, alerts: Sequence[AlertMessage], *,
                            window_seconds: float | None = None, version: str = "0") -> OutgoingRequest:
    """Several alerts as one ``sendMessage``."""
    return _telegram_request(base_url, token, chat_id, telegram_digest_text(alerts, window_seconds), version)


# -- answers: retry hints and verdicts ----------------------------------------------------------------------------


def _header(headers: Mapping[str, str], name: str) -> str | None:
    getter = getattr(headers, "get", None)
    value = getter(name) if getter is not None else None
    if value is None:
        lower = name.lower()
        for k, v in headers.items():
            if k.lower() == lower:
                return v
    return value


def _json_object(body: bytes | str) -> dict[str, Any] | None:
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) else None


def _body_text(body: bytes | str) -> str:
    return (body.decode("utf-8", "replace") if isinstance(body, bytes) else body).strip()


def _seconds(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) and value >= 0 else None


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """A ``Retry-After`` header: delta-seconds (``"5"``, also ``"1.5"``) or an HTTP date
    (seconds from ``now``, wall-clock epoch, default the current time; a past date is 0)."""
    if value is None:
        return None
    value = value.strip()
    try:
        return _seconds(float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    reference = time.time() if now is None else now
    return max(0.0, moment.timestamp() - reference)


def discord_retry_hint(status: int, headers: Mapping[str, str], body: bytes | str) -> float | None:
    """Discord: the body's ``retry_after`` (seconds, float) on 429, else the ``Retry-After``
    header, else ``X-RateLimit-Reset-After``."""
    if status == 429:
        obj = _json_object(body)
        if obj is not None:
            hint = _seconds(obj.get("retry_after"))
            if hint is not None:
                return hint
    hint = parse_retry_after(_header(headers, "retry-after"))
    if hint is None and status == 429:
        hint = parse_retry_after(_header(headers, "x-ratelimit-reset-after"))
    return hint


def telegram_retry_hint(status: int, headers: Mapping[str, str], body: bytes | str) -> float | None:
    """Telegram: ``parameters.retry_after`` (seconds), else the ``Retry-After`` header."""
    obj = _json_object(body)
    if obj is not None and isinstance(obj.get("parameters"), dict):
        hint = _seconds(obj["parameters"].get("retry_after"))
        if hint is not None:
            return hint
    return parse_retry_after(_header(headers, "retry-after"))


def slack_retry_hint(status: int, headers: Mapping[str, str], body: bytes | str, *,
                     now: float | None = None) -> float | None:
    """Slack: the ``Retry-After`` header (seconds or an HTTP date)."""
    return parse_retry_after(_header(headers, "retry-after"), now=now)


def webhook_retry_hint(status: int, headers: Mapping[str, str], body: bytes | str, *,
                       now: float | None = None) -> float | None:
    """A generic receiver: the ``Retry-After`` header (seconds or an HTTP date)."""
    return parse_retry_after(_header(headers, "retry-after"), now=now)


def retry_hint(kind: str, status: int, headers: Mapping[str, str], body: bytes | str, *,
               now: float | None = None) -> float | None:
    """Seconds the outlet asked us to wait before trying again, if it said (any of the above)."""
    if kind == "discord":
        return discord_retry_hint(status, headers, body)
    if kind == "telegram":
        return telegram_retry_hint(status, headers, body)
    if kind == "slack":
        return slack_retry_hint(status, headers, body, now=now)
    return webhook_retry_hint(status, headers, body, now=now)


#: Slack error bodies meaning the webhook (or its channel, app, workspace) no longer works.
SLACK_AUTH_ERRORS = frozenset({"no_service", "no_service_id", "no_team", "team_disabled", "invalid_token",
                               "channel_not_found", "channel_is_archived", "action_prohibited",
                               "posting_to_general_channel_denied", "invalid_auth", "account_inactive",
                               "token_revoked", "org_login_required"})
#: Telegram 400 descriptions that are about the chat (configuration), not the message.
_TELEGRAM_CHAT_ERRORS = ("chat not found", "group chat was upgraded", "not enough rights", "have no rights",
                         "need administrator rights", "chat_write_forbidden", "bot is not a member",
                         "chat is deactivated", "peer_id_invalid")


def classify_response(kind: str, status: int, body: bytes | str) -> Verdict:
    """What an answer means: ``ok``, ``retry``, ``rate_limited``, ``auth`` or ``rejected``.

    Common rules: 2xx is delivered; 429 is rate limited; 408, 425 and 5xx are retried; 401, 403,
    404, 410 and redirects (3xx: the URL is wrong) are ``auth`` — the outlet is broken, not the
    alert; other 4xx reject the message.  Per outlet: Slack's body names the error (its
    ``no_service``, ``invalid_token``, ``channel_*`` … are ``auth`` whatever the status,
    ``rollup_error`` is retried); Telegram's ``ok:false`` bodies are classified by ``error_code``,
    and a 400 about the chat (``chat not found``, bot lacks rights, group upgraded) is ``auth``;
    a webhook receiver's 409 (it already has this idempotency key) counts as delivered.
    """
    if kind == "slack":
        word = _body_text(body)
        if word in SLACK_AUTH_ERRORS:
            return "auth"
        if word == "rollup_error":
            return "retry"
    if kind == "telegram":
        obj = _json_object(body)
        if obj is not None and obj.get("ok") is False:
            code = obj.get("error_code")
            if isinstance(code, int) and not isinstance(code, bool) and code >= 400:
                status = code if 200 <= status < 300 else status
            description = str(obj.get("description", "")).lower()
            if status == 400 and any(p in description for p in _TELEGRAM_CHAT_ERRORS):
                return "auth"
            if 200 <= status < 300:
                return "rejected"
    if kind == "webhook" and status == 409:
        return "ok"
    if 200 <= status < 300:
        return "ok"
    if status == 429:
        return "rate_limited"
    if status in (401, 403, 404, 410) or 300 <= status < 400:
        return "auth"
    if status in (408, 425) or status >= 500 or status < 200:
        return "retry"
    return "rejected"


def describe_response(kind: str, status: int, body: bytes | str) -> str:
    """A short reason for logs and the delivery record: ``"Discord HTTP 404: Unknown Webhook (10015)"``.
    Holds only what the outlet said (at most 200 characters), never the URL or token."""
    name = {"discord": "Discord", "slack": "Slack", "telegram": "Telegram"}.get(kind, "webhook")
    said = ""
    obj = _json_object(body)
    if kind == "discord" and obj is not None:
        said = str(obj.get("message", ""))
        if obj.get("code"):
            said += f" ({obj['code']})"
        errors = obj.get("errors")
        if isinstance(errors, dict):
            said += ": " + _first_discord_error(errors)
    elif kind == "telegram" and obj is not None:
        said = str(obj.get("description", ""))
    elif obj is not None:
        said = str(obj.get("error") or obj.get("message") or "")
    else:
        text = _body_text(body)
        said = text if text and "<" not in text[:1] else ""
    said = " ".join(said.split())
    return truncate(f"{name} HTTP {status}" + (f": {said}" if said else ""), 200)


def _first_discord_error(errors: dict[str, Any], path: str = "") -> str:
    for key, value in errors.items():
        if key == "_errors" and isinstance(value, list) and value and isinstance(value[0], dict):
            return f"{path or 'body'}: {value[0].get('message', '')}"
        if isinstance(value, dict):
            found = _first_discord_error(value, f"{path}.{key}" if path else key)
            if found:
                return found
    return ""


def interpret_response(kind: str, status: int, headers: Mapping[str, str], body: bytes | str, *,
                       now: float | None = None) -> ResponseVerdict:
    """:func:`classify_response`, :func:`retry_hint` and :func:`describe_response` together."""
    verdict = classify_response(kind, status, body)
    hint = retry_hint(kind, status, headers, body, now=now) if verdict in ("rate_limited", "retry") else None
    detail = describe_response(kind, status, body) if verdict != "ok" else f"HTTP {status}"
    return ResponseVerdict(verdict, hint, detail)


# -- targets: one configured outlet ----------------------------------------------------------------------------


def _mask_url(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}" + (f":{parts.port}" if parts.port else "") + "/…"


class _Target:
    """What every target shares: reading a response by its ``kind``'s rules."""

    __slots__ = ()
    kind: ClassVar[str]

    def interpret(self, status: int, headers: Mapping[str, str], body: bytes | str, *,
                  now: float | None = None) -> ResponseVerdict:
        return interpret_response(self.kind, status, headers, body, now=now)


@attrs.frozen
class WebhookTarget(_Target):
    """A generic webhook outlet: ``url`` and an optional HMAC ``secret``."""

    kind: ClassVar[str] = "webhook"
    url: str = attrs.field(repr=False)
    secret: str | None = attrs.field(default=None, repr=False)
    version: str = "0"

    def single(self, alert: AlertMessage) -> OutgoingRequest:
        return webhook_request(self.url, alert, secret=self.secret, version=self.version)

    def digest(self, alerts: Sequence[AlertMessage], *, window_seconds: float | None = None) -> OutgoingRequest:
        return webhook_digest_request(self.url, alerts, secret=self.secret, version=self.version)

    def describe(self) -> str:
        return f"webhook {_mask_url(self.url)}" + (" (signed)" if self.secret else "")


@attrs.frozen
class DiscordTarget(_Target):
    """A Discord webhook outlet (its URL holds the webhook's token)."""

    kind: ClassVar[str] = "discord"
    webhook_url: str = attrs.field(repr=False)
    version: str = "0"

    def single(self, alert: AlertMessage) -> OutgoingRequest:
        return discord_request(self.webhook_url, alert, version=self.version)

    def digest(self, alerts: Sequence[AlertMessage], *, window_seconds: float | None = None) -> OutgoingRequest:
        return discord_digest_request(self.webhook_url, alerts, window_seconds=window_seconds, version=self.version)

    def describe(self) -> str:
        match = re.search(r"/webhooks/(\d+)/", self.webhook_url)
        return f"discord webhook {match.group(1)}" if match else f"discord {_mask_url(self.webhook_url)}"


@attrs.frozen
class SlackTarget(_Target):
    """A Slack incoming-webhook outlet (its URL's last part is a secret)."""

    kind: ClassVar[str] = "slack"
    webhook_url: str = attrs.field(repr=False)
    version: str = "0"

    def single(self, alert: AlertMessage) -> OutgoingRequest:
        return slack_request(self.webhook_url, alert, version=self.version)

    def digest(self, alerts: Sequence[AlertMessage], *, window_seconds: float | None = None) -> OutgoingRequest:
        return slack_digest_request(self.webhook_url, alerts, window_seconds=window_seconds, version=self.version)

    def describe(self) -> str:
        match = re.search(r"/services/([^/]+)/([^/]+)/", self.webhook_url)
        return f"slack {match.group(1)}/{match.group(2)}" if match else f"slack {_mask_url(self.webhook_url)}"


@attrs.frozen
class TelegramTarget(_Target):
    """A Telegram bot outlet: the bot ``token`` (secret), the ``chat_id`` and the API's base URL."""

    kind: ClassVar[str] = "telegram"
    token: str = attrs.field(repr=False)
    chat_id: str | int
    base_url: str = TELEGRAM_DEFAULT_BASE_URL
    version: str = "0"

    def single(self, alert: AlertMessage) -> OutgoingRequest:
        return telegram_request(self.base_url, self.token, self.chat_id, alert, version=self.version)

    def digest(self, alerts: Sequence[AlertMessage], *, window_seconds: float | None = None) -> OutgoingRequest:
        return telegram_digest_request(self.base_url, self.token, self.chat_id, alerts,
                                       window_seconds=window_seconds, version=self.version)

    def describe(self) -> str:
        bot = self.token.split(":", 1)[0] if ":" in self.token else "?"
        return f"telegram bot {bot} → chat {self.chat_id}"


OutletTarget = WebhookTarget | DiscordTarget | SlackTarget | TelegramTarget
