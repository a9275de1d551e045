"""Loopback fakes of the four alert outlets: a generic webhook receiver, Discord webhooks, Slack
incoming webhooks and the Telegram Bot API's ``sendMessage``.

Real HTTP/1.1 on 127.0.0.1 (hypercorn's trio worker, via :class:`tests.fakes._http.FakeHttpServer`).
Each fake checks requests the way the real service does and answers a bad one with that service's
real error (status and body); every request is kept in ``calls``, every accepted message in
``accepted``, and every problem found in a request's format in ``format_errors`` — also the
problems the real service would tolerate (an unknown field, an unescaped ``&`` in Slack mrkdwn),
so tests of the outlets can assert that it stays empty.

* :class:`FakeWebhookReceiver` — ``POST {path}``: JSON content type, our ``User-Agent``, an
  ``Idempotency-Key``, ``X-Signature: sha256=…`` checked when it knows the secret (401 if wrong),
  the body a client frame or a ``batch`` of them.  With ``dedupe`` (default) a repeated key is
  answered like the first time (200) but not accepted again, as a real idempotent receiver does.
* :class:`FakeDiscord` — ``POST /api/webhooks/{id}/{token}`` (also ``/api/v10/…``): JSON body,
  ``content`` or ``embeds``, every documented embed limit (answers ``50035 Invalid Form Body``
  with Discord's nested ``errors``), ``wait=true`` → 200 and the message, else 204.
* :class:`FakeSlack` — ``POST /services/T…/B…/…``: JSON (or ``payload=`` form), ``text`` /
  ``blocks`` with Block Kit's limits; answers ``ok`` or a text error (``invalid_payload``,
  ``no_text``, ``invalid_blocks``, ``invalid_token``, ``no_service``, ``channel_is_archived``).
* :class:`FakeTelegram` — ``POST /bot{token}/sendMessage``: JSON body, known chat, ``text``
  parsed as MarkdownV2 by :func:`parse_markdown_v2` (a port of TDLib's parser: an unescaped
  reserved character gets the real ``400 Bad Request: can't parse entities: Character '.' is
  reserved and must be escaped with the preceding '\\'``), at most 4096 characters,
  ``link_preview_options``; answers ``{"ok":true,"result":Message}`` or the Bot API's error.

Fault injection, the same on every fake (deterministic, queued in order):

* :meth:`AlertOutletFake.fail_next` — the next ``n`` requests get ``status`` with the service's
  real body for it (500 ``rollup_error`` on Slack, ``{"ok":false,…}`` on Telegram, …);
* :meth:`AlertOutletFake.rate_limit_next` — 429 with the service's real retry hint (Discord:
  body ``retry_after`` float + ``Retry-After`` header; Telegram: ``parameters.retry_after`` +
  header; Slack / webhook: the ``Retry-After`` header, or an HTTP date);
* :attr:`~tests.fakes._http.FakeHttpServer.delay` / :meth:`AlertOutletFake.delay_next` — slowness
  with ``trio.sleep`` (a MockClock drives it); ``accept_first=True`` records the message before
  the wait, like a service that has posted it but answers late;
* :meth:`AlertOutletFake.disconnect_next` — accept the message, then drop the connection
  without an answer (the sender cannot know it was delivered);
* :meth:`AlertOutletFake.revoke` (bad token: 401, Slack 403 ``invalid_token``) and
  :meth:`AlertOutletFake.delete` (deleted webhook: 404 ``Unknown Webhook`` / ``no_service``;
  Telegram: 403 bot kicked from the chat) until :meth:`AlertOutletFake.restore`.
"""

from __future__ import annotations

import email.utils
import math
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime
from typing import Any, ClassVar, TypeVar
from urllib.parse import parse_qsl

import attrs
import orjson
import trio

from protocols.alerts import verify_signature

from ._http import FakeHttpServer, RecordedRequest, Response, _Disconnect, _send, read_body

# -- Telegram MarkdownV2 (a port of TDLib's parse_markdown_v2) -----------------------------------------------


class MarkdownV2Error(ValueError):
    """Text Telegram refuses to parse; ``str(error)`` is TDLib's message (the part after
    ``Bad Request: can't parse entities: ``)."""


@attrs.frozen
class TelegramEntity:
    """A formatting entity as the Bot API reports it (offsets and lengths in UTF-16 code units)."""

    type: str
    offset: int
    length: int
    url: str | None = None
    language: str | None = None
    custom_emoji_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"offset": self.offset, "length": self.length, "type": self.type}
        for name in ("url", "language", "custom_emoji_id"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out


@attrs.frozen
class ParsedText:
    """MarkdownV2 parsed: the plain text and its entities."""

    text: str
    entities: tuple[TelegramEntity, ...]


@attrs.define
class _OpenEntity:
    type: str
    argument: str | None
    utf16_offset: int
    byte_offset: int
    begin: int  # position in the output


#: TDLib's names of the entity types (in "Can't find end of … entity" errors) and the Bot API's.
_TDLIB_NAMES = {"bold": "Bold", "italic": "Italic", "underline": "Underline", "strikethrough": "Strikethrough",
                "spoiler": "Spoiler", "code": "Code", "pre": "Pre", "pre_code": "PreCode", "text_link": "TextUrl",
                "custom_emoji": "CustomEmoji", "blockquote": "BlockQuote",
                "expandable_blockquote": "ExpandableBlockQuote"}
_BOT_API_TYPES = {"pre_code": "pre"}
_RESERVED = "_*[]()~`>#+-=|{}.!\n"
_LINK = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)?([^/?#\s]+)(\S*)$")
_URL_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):(?://)?([^/?#]*)[^?#]*(\?[^#]*)?")


def _utf16_len(char: str) -> int:
    return 2 if ord(char) > 0xFFFF else 1


def _is_space(char: str) -> bool:
    return char in " \t\r\n\0\v\f"


def _checked_link(url: str) -> str | None:
    """Roughly TDLib's ``get_checked_link``: an http(s) URL whose host has a dot (a bare host gets
    ``http://``, an empty path ``/``), or a tg:// / ton:// link; None for anything else."""
    match = _LINK.match(url.strip())
    if match is None:
        return None
    scheme, host, rest = match.group(1) or "http://", match.group(2), match.group(3)
    if scheme.lower() in ("tg://", "ton://"):
        return scheme + host + rest
    if scheme.lower() not in ("http://", "https://") or not re.fullmatch(r"[^.@:]+(?:\.[^.@:]+)+(?::\d{1,5})?", host):
        return None
    return scheme + host + (rest if rest.startswith("/") else "/" + rest)


def _custom_emoji_id(url: str) -> str:
    """The id of a ``tg://emoji?id=N`` link, with TDLib's errors."""
    match = _URL_SCHEME.match(url)
    if match is None or match.group(1).lower() != "tg":
        raise MarkdownV2Error("Custom emoji URL must have scheme tg")
    if match.group(2).lower() != "emoji":
        raise MarkdownV2Error('Custom emoji URL must have host "emoji"')
    ids = [v for k, v in parse_qsl((match.group(3) or "?")[1:], keep_blank_values=True) if k == "id"]
    if not ids:
        raise MarkdownV2Error("Custom emoji URL must have an emoji identifier")
    if not re.fullmatch(r"[1-9]\d{0,18}", ids[0]):
        raise MarkdownV2Error("Invalid custom emoji identifier specified")
    return ids[0]


def parse_markdown_v2(text: str) -> ParsedText:
    """Parse ``text`` as Telegram MarkdownV2, exactly as TDLib's ``parse_markdown_v2`` does.

    Raises:
        MarkdownV2Error: with TDLib's message, e.g. ``Character '.' is reserved and must be escaped
            with the preceding '\\'`` or ``Can't find end of Bold entity at byte offset 4``.
    """
    n = len(text)
    byte_at = [0] * (n + 1)
    for k, char in enumerate(text):
        byte_at[k + 1] = byte_at[k] + len(char.encode("utf-8", "surrogatepass"))

    def at(j: int) -> str:
        return text[j] if 0 <= j < n else "\0"

    def byte(j: int) -> int:
        return byte_at[min(max(j, 0), n)]

    def reserved_error(char: str) -> MarkdownV2Error:
        return MarkdownV2Error(f"Character '{char}' is reserved and must be escaped with the preceding '\\'")

    out: list[str] = []
    utf16 = 0
    entities: list[TelegramEntity] = []
    nested: list[_OpenEntity] = []
    have_blockquote = False
    can_start_blockquote = True
    i = -1
    while True:
        i += 1
        if i >= n:
            break
        c = text[i]
        if c == "\\" and 0 < ord(at(i + 1)) <= 126:
            i += 1
            utf16 += 1
            out.append(text[i])
            if text[i] != "\r":
                can_start_blockquote = text[i] == "\n"
            continue
        reserved = "`" if nested and nested[-1].type in ("code", "pre", "pre_code") else _RESERVED
        if c not in reserved:
            utf16 += _utf16_len(c)
            if c != "\r":
                can_start_blockquote = False
            out.append(c)
            continue

        is_end = False
        if nested:
            top = nested[-1].type
            if have_blockquote and c == "\n" and (i + 1 == n or text[i + 1] != ">"):
                is_end = True
            else:
                is_end = ((top == "bold" and c == "*") or (top == "italic" and c == "_" and at(i + 1) != "_")
                          or (top == "code" and c == "`")
                          or (top in ("pre", "pre_code") and c == "`" and at(i + 1) == "`" and at(i + 2) == "`")
                          or (top in ("text_link", "custom_emoji") and c == "]")
                          or (top == "underline" and c == "_" and at(i + 1) == "_")
                          or (top == "strikethrough" and c == "~")
                          or (top == "spoiler" and c == "|" and at(i + 1) == "|"))

        if not is_end:
            entity_byte_offset = byte(i)
            argument: str | None = None
            kind: str | None
            if c == "_":
                if at(i + 1) == "_":
                    kind = "underline"
                    i += 1
                else:
                    kind = "italic"
            elif c == "*":
                kind = "bold"
            elif c == "~":
                kind = "strikethrough"
            elif c == "|":
                if at(i + 1) != "|":
                    raise reserved_error(c)
                i += 1
                kind = "spoiler"
            elif c == "[":
                kind = "text_link"
            elif c == "`":
                if at(i + 1) == "`" and at(i + 2) == "`":
                    i += 3
                    kind = "pre"
                    language_end = i
                    while not _is_space(at(language_end)) and at(language_end) != "`":
                        language_end += 1
                    if i != language_end and language_end < n and at(language_end) != "`":
                        kind = "pre_code"
                        argument = text[i:language_end]
                        i = language_end
                    if at(i) in ("\n", "\r"):
                        if at(i + 1) in ("\n", "\r") and at(i) != at(i + 1):
                            i += 2
                        else:
                            i += 1
                    i -= 1
                else:
                    kind = "code"
            elif c == "!":
                if at(i + 1) != "[":
                    raise reserved_error(c)
                i += 1
                kind = "custom_emoji"
            elif c == "\n":
                utf16 += 1
                out.append("\n")
                can_start_blockquote = True
                kind = None
            elif c == ">":
                if not can_start_blockquote:
                    raise reserved_error(c)
                if have_blockquote:
                    kind = None
                else:
                    kind = "blockquote"
                    have_blockquote = True
            else:
                raise reserved_error(c)
            if kind is not None:
                nested.append(_OpenEntity(kind, argument, utf16, entity_byte_offset, len(out)))
            continue

        # the end of an entity
        kind = nested[-1].type
        if c == "\n" and kind != "blockquote":
            opened = nested[-1].byte_offset
            if kind != "spoiler" or not (opened == byte(i) - 2 or (opened == byte(i) - 3 and out and out[-1] == "\r")):
                raise MarkdownV2Error(f"Can't find end of {_TDLIB_NAMES[kind]} entity at byte offset {opened}")
            nested.pop()
            kind = nested[-1].type
            if kind != "blockquote":
                raise MarkdownV2Error(
                    f"Can't find end of {_TDLIB_NAMES[kind]} entity at byte offset {nested[-1].byte_offset}")
            kind = "expandable_blockquote"
        argument = nested[-1].argument
        custom_emoji_id: str | None = None
        skip = utf16 == nested[-1].utf16_offset
        if kind in ("underline", "spoiler"):
            i += 1
        elif kind in ("pre", "pre_code"):
            i += 2
        elif kind in ("text_link", "custom_emoji"):
            if kind == "text_link" and at(i + 1) != "(":
                url = "".join(out[nested[-1].begin:])
            else:
                if at(i + 1) != "(":
                    raise MarkdownV2Error("Custom emoji entity must contain a tg://emoji URL")
                i += 2
                url_begin = byte(i)
                chars: list[str] = []
                while i < n and text[i] != ")":
                    if text[i] == "\\" and 0 < ord(at(i + 1)) <= 126:
                        chars.append(at(i + 1))
                        i += 2
                        continue
                    chars.append(text[i])
                    i += 1
                if at(i) != ")":
                    what = "a URL" if kind == "text_link" else "a custom emoji URL"
                    raise MarkdownV2Error(f"Can't find end of {what} at byte offset {url_begin}")
                url = "".join(chars)
            if kind == "text_link":
                checked = _checked_link(url)
                if checked is None:
                    skip = True
                else:
                    argument = checked
            else:
                custom_emoji_id = _custom_emoji_id(url)
        elif kind in ("blockquote", "expandable_blockquote"):
            have_blockquote = False
            out.append(c)
            can_start_blockquote = True
            utf16 += 1
            skip = False
        if not skip:
            start = nested[-1].utf16_offset
            entities.append(_entity(kind, start, utf16 - start, argument, custom_emoji_id))
        nested.pop()

    if have_blockquote:
        kind = "blockquote"
        if nested[-1].type == "spoiler" and nested[-1].byte_offset == byte(n) - 2:
            nested.pop()
            kind = "expandable_blockquote"
        if nested[-1].type == "blockquote":
            start = nested[-1].utf16_offset
            if utf16 != start:
                entities.append(_entity(kind, start, utf16 - start, None, None))
            nested.pop()
    if nested:
        raise MarkdownV2Error(
            f"Can't find end of {_TDLIB_NAMES[nested[-1].type]} entity at byte offset {nested[-1].byte_offset}")
    entities.sort(key=lambda e: (e.offset, -e.length))
    return ParsedText("".join(out), tuple(entities))


def _entity(kind: str, offset: int, length: int, argument: str | None, custom_emoji_id: str | None) -> TelegramEntity:
    api_type = _BOT_API_TYPES.get(kind, kind)
    if kind == "text_link":
        return TelegramEntity(api_type, offset, length, url=argument)
    if kind == "pre_code":
        return TelegramEntity(api_type, offset, length, language=argument)
    if kind == "custom_emoji":
        return TelegramEntity(api_type, offset, length, custom_emoji_id=custom_emoji_id)
    return TelegramEntity(api_type, offset, length)


def utf16_length(text: str) -> int:
    return sum(_utf16_len(c) for c in text)


# -- shape checks, usable without a server --------------------------------------------------------------


@attrs.frozen
class DiscordProblem:
    """One problem in a Discord execute-webhook body: where, Discord's code and message."""

    path: tuple[str, ...]
    code: str
    message: str


_DISCORD_TOP_LEVEL = frozenset({"content", "username", "avatar_url", "tts", "embeds", "allowed_mentions",
                                "components", "flags", "thread_name", "applied_tags", "poll", "attachments",
                                "payload_json", "files"})
_DISCORD_EMBED_KEYS = frozenset({"title", "type", "description", "url", "timestamp", "color", "footer", "image",
                                 "thumbnail", "video", "provider", "author", "fields"})


def _max_len(value: Any, limit: int, path: tuple[str, ...], problems: list[DiscordProblem], *,
             required: bool = False) -> None:
    if value is None:
        if required:
            problems.append(DiscordProblem(path, "BASE_TYPE_REQUIRED", "This field is required"))
        return
    if not isinstance(value, str):
        problems.append(DiscordProblem(path, "BASE_TYPE_BAD_TYPE", "Must be a string."))
        return
    if required and not value.strip():
        problems.append(DiscordProblem(path, "BASE_TYPE_REQUIRED", "This field is required"))
    if len(value) > limit:
        problems.append(DiscordProblem(path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length."))


def _url_ok(value: Any, path: tuple[str, ...], problems: list[DiscordProblem]) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://\S+$", value):
        problems.append(DiscordProblem(path, "URL_TYPE_INVALID_URL", "Not a well formed URL."))
        return
    scheme = value.split("://", 1)[0].lower()
    if scheme not in ("http", "https"):
        problems.append(DiscordProblem(
            path, "URL_TYPE_INVALID_SCHEME",
            f"Scheme \"{scheme}\" is not supported. Scheme must be one of ('http', 'https')."))


def discord_problems(payload: Any) -> tuple[list[DiscordProblem], list[str]]:
    """Check an execute-webhook JSON body against Discord's documented rules.

    Returns ``(problems Discord answers 400 for, notes Discord tolerates)``; the notes are
    unknown fields (Discord ignores them, which usually hides a typo)."""
    problems: list[DiscordProblem] = []
    notes: list[str] = []
    if not isinstance(payload, dict):
        return [DiscordProblem((), "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")], notes
    for key in payload:
        if key not in _DISCORD_TOP_LEVEL:
            notes.append(f"Discord ignores the unknown field {key!r}")
    _max_len(payload.get("content"), 2000, ("content",), problems)
    _max_len(payload.get("username"), 80, ("username",), problems)
    embeds = payload.get("embeds")
    if embeds is not None:
        if not isinstance(embeds, list):
            problems.append(DiscordProblem(("embeds",), "BASE_TYPE_BAD_TYPE", "Must be an array."))
            embeds = []
        elif len(embeds) > 10:
            problems.append(DiscordProblem(("embeds",), "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length."))
        total = 0
        for k, embed in enumerate(embeds):
            path = ("embeds", str(k))
            if not isinstance(embed, dict):
                problems.append(DiscordProblem(path, "DICT_TYPE_CONVERT",
                                               "Only dictionaries may be used in a DictType"))
                continue
            for key in embed:
                if key not in _DISCORD_EMBED_KEYS:
                    notes.append(f"Discord ignores the unknown embed field {key!r}")
            _max_len(embed.get("title"), 256, (*path, "title"), problems)
            _max_len(embed.get("description"), 4096, (*path, "description"), problems)
            _url_ok(embed.get("url"), (*path, "url"), problems)
            color = embed.get("color")
            if color is not None and (isinstance(color, bool) or not isinstance(color, int)
                                      or not 0 <= color <= 0xFFFFFF):
                problems.append(DiscordProblem((*path, "color"), "NUMBER_TYPE_MAX",
                                               "int value should be less than or equal to 16777215."))
            stamp = embed.get("timestamp")
            if stamp is not None:
                try:
                    datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
                except ValueError:
                    problems.append(DiscordProblem((*path, "timestamp"), "DATE_TIME_TYPE_PARSE",
                                                   f"Could not parse {stamp}. Should be ISO8601."))
            footer = embed.get("footer")
            if footer is not None:
                _max_len(footer.get("text") if isinstance(footer, dict) else None, 2048, (*path, "footer", "text"),
                         problems, required=True)
            author = embed.get("author")
            if author is not None:
                _max_len(author.get("name") if isinstance(author, dict) else None, 256, (*path, "author", "name"),
                         problems, required=True)
                if isinstance(author, dict):
                    _url_ok(author.get("url"), (*path, "author", "url"), problems)
            fields = embed.get("fields")
            if fields is not None:
                if not isinstance(fields, list):
                    problems.append(DiscordProblem((*path, "fields"), "BASE_TYPE_BAD_TYPE", "Must be an array."))
                    fields = []
                elif len(fields) > 25:
                    problems.append(DiscordProblem((*path, "fields"), "BASE_TYPE_MAX_LENGTH",
                                                   "Must be 25 or fewer in length."))
                for f, field in enumerate(fields):
                    fpath = (*path, "fields", str(f))
                    if not isinstance(field, dict):
                        problems.append(DiscordProblem(fpath, "DICT_TYPE_CONVERT",
                                                       "Only dictionaries may be used in a DictType"))
                        continue
                    _max_len(field.get("name"), 256, (*fpath, "name"), problems, required=True)
                    _max_len(field.get("value"), 1024, (*fpath, "value"), problems, required=True)
                    if "inline" in field and not isinstance(field["inline"], bool):
                        problems.append(DiscordProblem((*fpath, "inline"), "BASE_TYPE_BAD_TYPE", "Must be a boolean."))
            total += _embed_chars(embed)
        if total > 6000:
            problems.append(DiscordProblem(("embeds",), "MAX_EMBED_SIZE_EXCEEDED",
                                           "Embed size exceeds maximum size of 6000"))
    mentions = payload.get("allowed_mentions")
    if mentions is not None:
        parse = mentions.get("parse") if isinstance(mentions, dict) else None
        if not isinstance(parse, list) or any(p not in ("roles", "users", "everyone") for p in parse):
            problems.append(DiscordProblem(("allowed_mentions", "parse"), "ENUM_TYPE_COERCE",
                                           "Value must be one of ('roles', 'users', 'everyone')."))
    return problems, notes


def _embed_chars(embed: Mapping[str, Any]) -> int:
    def s(value: Any) -> int:
        return len(value) if isinstance(value, str) else 0
    total = s(embed.get("title")) + s(embed.get("description"))
    if isinstance(embed.get("footer"), dict):
        total += s(embed["footer"].get("text"))
    if isinstance(embed.get("author"), dict):
        total += s(embed["author"].get("name"))
    for field in embed.get("fields") or ():
        if isinstance(field, dict):
            total += s(field.get("name")) + s(field.get("value"))
    return total


def discord_error_body(problems: list[DiscordProblem]) -> dict[str, Any]:
    """Discord's ``50035 Invalid Form Body`` answer for ``problems``."""
    errors: dict[str, Any] = {}
    for problem in problems:
        node = errors
        for part in problem.path:
            node = node.setdefault(part, {})
        node.setdefault("_errors", []).append({"code": problem.code, "message": problem.message})
    return {"code": 50035, "errors": errors, "message": "Invalid Form Body"}


_SLACK_BLOCK_TYPES = frozenset({"section", "header", "context", "divider", "actions", "image", "rich_text",
                                "markdown", "input", "file", "video"})
_SLACK_TOP_LEVEL = frozenset({"text", "blocks", "attachments", "mrkdwn", "unfurl_links", "unfurl_media", "username",
                              "icon_emoji", "icon_url", "channel", "thread_ts", "reply_broadcast", "link_names",
                              "parse", "metadata"})
#: Slack mrkdwn's control sequences: links/mentions ``<…>`` and the three entities.
_SLACK_TOKEN = re.compile(r"<(?:https?://|mailto:|[@#!])[^<>\s|]*(?:\|[^<>]*)?>|&(?:amp|lt|gt);")


def _slack_text_object(obj: Any, limit: int, where: str, problems: list[str], notes: list[str],
                       *, plain_only: bool = False) -> None:
    allowed = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    if not isinstance(obj, dict) or obj.get("type") not in allowed:
        problems.append(f"{where}: must be a {'plain_text' if plain_only else 'text'} object")
        return
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        problems.append(f"{where}: text must be a non-empty string")
        return
    if len(text) > limit:
        problems.append(f"{where}: text must be at most {limit} characters")
    if obj["type"] == "mrkdwn":
        notes.extend(f"{where}: {n}" for n in slack_mrkdwn_notes(text))


def slack_mrkdwn_notes(text: str) -> list[str]:
    """Unescaped control characters in Slack mrkdwn (Slack renders them, usually wrongly)."""
    rest = _SLACK_TOKEN.sub("", text)
    return [f"unescaped {c!r} in mrkdwn (use &amp; &lt; &gt;)" for c in "&<>" if c in rest]


def slack_problems(payload: Any) -> tuple[str | None, list[str], list[str]]:
    """Check an incoming-webhook body: ``(Slack's error word or None, detailed problems, notes)``.

    Slack answers ``invalid_payload`` for a body that is not a JSON object, ``no_text`` for a
    message with neither ``text`` nor ``blocks`` nor ``attachments``, ``invalid_blocks`` for
    blocks breaking Block Kit's rules.  Notes are what Slack accepts but is probably a mistake
    (unknown fields, unescaped ``&<>``, ``text`` past the 40,000 characters Slack keeps)."""
    problems: list[str] = []
    notes: list[str] = []
    if not isinstance(payload, dict):
        return "invalid_payload", ["the body is not a JSON object"], notes
    for key in payload:
        if key not in _SLACK_TOP_LEVEL:
            notes.append(f"Slack ignores the unknown field {key!r}")
    text = payload.get("text")
    blocks = payload.get("blocks")
    if text is not None and not isinstance(text, str):
        return "invalid_payload", ["text must be a string"], notes
    if not text and not blocks and not payload.get("attachments"):
        return "no_text", ["neither text nor blocks"], notes
    if isinstance(text, str):
        if len(text) > 40_000:
            notes.append("text longer than 40,000 characters is truncated by Slack")
        if payload.get("mrkdwn", True):
            notes.extend(f"text: {n}" for n in slack_mrkdwn_notes(text))
    if blocks is not None:
        if not isinstance(blocks, list):
            problems.append("blocks must be an array")
        elif len(blocks) > 50:
            problems.append("at most 50 blocks")
        else:
            for k, block in enumerate(blocks):
                where = f"blocks[{k}]"
                if not isinstance(block, dict) or block.get("type") not in _SLACK_BLOCK_TYPES:
                    problems.append(f"{where}: unknown block type")
                    continue
                if isinstance(block.get("block_id"), str) and len(block["block_id"]) > 255:
                    problems.append(f"{where}: block_id longer than 255")
                kind = block["type"]
                if kind == "section":
                    if "text" not in block and "fields" not in block:
                        problems.append(f"{where}: a section needs text or fields")
                    if "text" in block:
                        _slack_text_object(block["text"], 3000, f"{where}.text", problems, notes)
                    if "fields" in block:
                        fields = block["fields"]
                        if not isinstance(fields, list) or not fields or len(fields) > 10:
                            problems.append(f"{where}.fields: 1 to 10 text objects")
                        else:
                            for f, field in enumerate(fields):
                                _slack_text_object(field, 2000, f"{where}.fields[{f}]", problems, notes)
                elif kind == "header":
                    _slack_text_object(block.get("text"), 150, f"{where}.text", problems, notes, plain_only=True)
                elif kind == "context":
                    elements = block.get("elements")
                    if not isinstance(elements, list) or not elements or len(elements) > 10:
                        problems.append(f"{where}.elements: 1 to 10 elements")
                    else:
                        for e, element in enumerate(elements):
                            if isinstance(element, dict) and element.get("type") == "image":
                                continue
                            _slack_text_object(element, 3000, f"{where}.elements[{e}]", problems, notes)
                elif kind == "divider" and set(block) - {"type", "block_id"}:
                    problems.append(f"{where}: a divider has no content")
    return ("invalid_blocks" if problems else None), problems, notes


# -- recorded traffic --------------------------------------------------------------------------------------


@attrs.frozen
class OutletCall:
    """One HTTP request as a fake received it, and the status it was answered with."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    at: float  # trio time
    status: int = 0

    def json(self) -> Any:
        return orjson.loads(self.body)

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


@attrs.frozen
class WebhookDelivery:
    """A frame (or batch) the webhook receiver accepted."""

    idempotency_key: str
    payload: Any
    body: bytes
    signature: str | None


@attrs.frozen
class DiscordMessage:
    """A message a Discord webhook posted."""

    id: str
    webhook_id: str
    payload: dict[str, Any]

    @property
    def embeds(self) -> list[dict[str, Any]]:
        return list(self.payload.get("embeds") or [])

    @property
    def content(self) -> str:
        return str(self.payload.get("content") or "")


@attrs.frozen
class SlackMessage:
    """A message a Slack incoming webhook posted."""

    payload: dict[str, Any]

    @property
    def text(self) -> str:
        return str(self.payload.get("text") or "")

    @property
    def blocks(self) -> list[dict[str, Any]]:
        return list(self.payload.get("blocks") or [])


@attrs.frozen
class TelegramMessage:
    """A message the bot sent: the parsed text and entities, and the raw request."""

    message_id: int
    chat_id: int | str
    text: str
    entities: tuple[TelegramEntity, ...]
    raw_text: str
    payload: dict[str, Any]

    @property
    def links(self) -> list[str]:
        return [e.url for e in self.entities if e.type == "text_link" and e.url]


@attrs.frozen
class _Fault:
    kind: str  # "status" | "rate_limit" | "delay" | "disconnect"
    status: int = 500
    retry_after: float | str | None = None
    in_header: bool = True
    in_body: bool = True
    http_date: bool = False
    seconds: float = 0.0
    accept_first: bool = False
    body: Any = None
    path_prefix: str | None = None


_REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
            408: "Request Timeout", 409: "Conflict", 410: "Gone", 413: "Payload Too Large",
            415: "Unsupported Media Type", 429: "Too Many Requests", 500: "Internal Server Error",
            502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


def _reason(status: int) -> str:
    return _REASONS.get(status, f"HTTP {status}")


class AlertOutletFake(FakeHttpServer):
    """What the four fakes share: request capture, fault injection, revoked / deleted states.

    Subclasses implement :meth:`handle` (validate, accept, answer), :meth:`error` (the service's
    error for a status) and :meth:`rate_limited` (its 429)."""

    name: ClassVar[str] = "alert-outlet"

    def __init__(self) -> None:
        super().__init__()
        #: every request, in arrival order, with the status it got
        self.calls: list[OutletCall] = []
        #: every message the service accepted (type depends on the fake)
        self.accepted: list[Any] = []
        #: problems found in requests' format, including ones the real service tolerates
        self.format_errors: list[str] = []
        #: ``None``, ``"revoked"`` (bad token) or ``"deleted"`` (deleted webhook / bot removed)
        self.state: str | None = None
        self.in_flight = 0
        self._outlet_faults: list[_Fault] = []

    # ------------------------------------------------------------------ scripting

    def fail_next(self, n: int = 1, status: int = 500, retry_after: float | int | str | None = None,
                  body: Any = None, *, path: str | None = None) -> None:
        """The next ``n`` requests (whose path starts with ``path``, if given) are answered
        ``status`` with this service's body for it (or ``body``, JSON value or bytes), plus a
        ``Retry-After: retry_after`` header if given."""
        hint = retry_after if retry_after is None or isinstance(retry_after, str) else float(retry_after)
        self._outlet_faults.extend([_Fault("status", status=status, retry_after=hint, body=body,
                                           path_prefix=path)] * n)

    def rate_limit_next(self, n: int = 1, retry_after: float = 1.0, *, in_header: bool = True, in_body: bool = True,
                        http_date: bool = False, path: str | None = None) -> None:
        """The next ``n`` requests get 429 with the retry hint where this service puts it
        (``in_header`` / ``in_body`` choose; ``http_date`` writes ``Retry-After`` as a date)."""
        self._outlet_faults.extend([_Fault("rate_limit", status=429, retry_after=retry_after, in_header=in_header,
                                           in_body=in_body, http_date=http_date, path_prefix=path)] * n)

    def delay_next(self, n: int = 1, seconds: float = 1.0, *, accept_first: bool = False,
                   path: str | None = None) -> None:
        """The next ``n`` requests wait ``seconds`` (``trio.sleep``) before their answer; with
        ``accept_first`` the message is accepted before the wait (posted, answered late)."""
        self._outlet_faults.extend([_Fault("delay", seconds=seconds, accept_first=accept_first,
                                           path_prefix=path)] * n)

    def disconnect_next(self, n: int = 1, *, path: str | None = None) -> None:
        """The next ``n`` requests are accepted, then the connection is dropped without an answer."""
        self._outlet_faults.extend([_Fault("disconnect", path_prefix=path)] * n)

    def garbage_next(self, n: int = 1, body: bytes | None = None, *, path: str | None = None) -> None:
        """Not offered by the alert fakes (the outlets do not read answer bodies as data)."""
        raise NotImplementedError("use fail_next, rate_limit_next, delay_next or disconnect_next")

    def revoke(self) -> None:
        """From now on the token is invalid (401; Slack 403 ``invalid_token``)."""
        self.state = "revoked"

    def delete(self) -> None:
        """From now on the webhook is deleted (404; Telegram: 403, the bot was kicked)."""
        self.state = "deleted"

    def restore(self) -> None:
        self.state = None

    def clear_faults(self) -> None:
        super().clear_faults()
        self._outlet_faults.clear()
        self.state = None

    @property
    def pending_faults(self) -> int:
        return len(self._outlet_faults)

    async def wait_accepted(self, total: int = 1) -> None:
        """Until at least ``total`` messages were accepted."""
        await self.wait_until(lambda: len(self.accepted) >= total)

    # ------------------------------------------------------------------ to implement

    def handle(self, call: OutletCall) -> tuple[Response, Callable[[], None] | None]:
        """Validate ``call``; return the answer and, if accepted, the action recording it."""
        raise NotImplementedError

    def error(self, status: int, *, path: str = "") -> Response:
        raise NotImplementedError

    def rate_limited(self, fault: _Fault) -> Response:
        raise NotImplementedError

    def state_error(self, call: OutletCall) -> Response | None:
        """The answer while revoked / deleted (None: not applicable to this request)."""
        return self.error(401 if self.state == "revoked" else 404) if self.state else None

    # ------------------------------------------------------------------ helpers

    def _retry_after_header(self, fault: _Fault) -> dict[str, str]:
        if not fault.in_header or fault.retry_after is None:
            return {}
        if isinstance(fault.retry_after, str):
            return {"retry-after": fault.retry_after}
        if fault.http_date:
            return {"retry-after": email.utils.formatdate(time.time() + fault.retry_after, usegmt=True)}
        return {"retry-after": str(max(0, math.ceil(fault.retry_after)))}

    @staticmethod
    def _seconds(fault: _Fault) -> float:
        return float(fault.retry_after) if isinstance(fault.retry_after, (int, float)) else 1.0

    def _take(self, path: str) -> _Fault | None:
        for k, fault in enumerate(self._outlet_faults):
            if fault.path_prefix is None or path.startswith(fault.path_prefix):
                return self._outlet_faults.pop(k)
        return None

    def problem(self, message: str) -> None:
        self.format_errors.append(message)

    async def _asgi(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            await super()._asgi(scope, receive, send)
            return
        body = await read_body(receive)
        if body is None:
            return  # the client went away
        query: dict[str, list[str]] = {}
        for k, v in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True):
            query.setdefault(k, []).append(v)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        call = OutletCall(scope["method"], scope["path"], query, headers, body, trio.current_time())
        index = len(self.calls)
        self.calls.append(call)
        self.requests.append(RecordedRequest(call.path, query))
        self._notify()
        self.in_flight += 1
        try:
            response = await self._answer(call)
        except _Disconnect:
            self.calls[index] = attrs.evolve(call, status=-1)
            self._notify()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", b"1000")]})
            await send({"type": "http.response.body", "body": b'{"ok":', "more_body": True})
            raise
        finally:
            self.in_flight -= 1
        self.calls[index] = attrs.evolve(call, status=response.status)
        self._notify()
        await _send(send, response)

    async def _answer(self, call: OutletCall) -> Response:
        if self.delay > 0:
            await trio.sleep(self.delay)
        fault = self._take(call.path)
        if fault is not None and fault.kind == "status":
            response = self.error(fault.status, path=call.path)
            if fault.body is not None:
                response = Response(fault.status, fault.body)
            return attrs.evolve(response, headers={**response.headers, **self._retry_after_header(fault)})
        if fault is not None and fault.kind == "rate_limit":
            return self.rate_limited(fault)
        blocked = self.state_error(call)
        if blocked is not None:
            return blocked
        try:
            response, accept = self.handle(call)
        except Exception as exc:  # a bug in the fake: answered 500, kept for the test to see
            self.errors.append(exc)
            return self.error(500, path=call.path)
        if fault is not None and fault.kind == "delay":
            if fault.accept_first and accept is not None:
                accept()
                accept = None
            await trio.sleep(fault.seconds)
        if accept is not None:
            accept()
            self._notify()
        if fault is not None and fault.kind == "disconnect":
            raise _Disconnect
        return response


# -- the generic webhook receiver --------------------------------------------------------------------------

#: Broadcast types whose frames carry a ``seq``.
_SEQUENCED = frozenset({"whale_trade", "market_update", "prediction"})


class FakeWebhookReceiver(AlertOutletFake):
    """A receiver of our generic webhook (see the module docstring)."""

    name = "webhook"

    def __init__(self, *, path: str = "/hooks/alerts", secret: str | None = None, dedupe: bool = True,
                 duplicate_status: int = 200, require_idempotency_key: bool = True) -> None:
        super().__init__()
        self.path = path
        self.secret = secret
        self.dedupe = dedupe
        self.duplicate_status = duplicate_status
        self.require_idempotency_key = require_idempotency_key
        self.accepted: list[WebhookDelivery] = []
        #: requests whose Idempotency-Key had been accepted before
        self.duplicates: list[OutletCall] = []
        self._seen: set[str] = set()

    @property
    def webhook_url(self) -> str:
        return f"{self.url}{self.path}"

    def frames(self) -> list[dict[str, Any]]:
        """Every accepted frame, batches unpacked, in order."""
        out: list[dict[str, Any]] = []
        for delivery in self.accepted:
            if delivery.payload.get("type") == "batch":
                out.extend(delivery.payload["data"])
            else:
                out.append(delivery.payload)
        return out

    def error(self, status: int, *, path: str = "") -> Response:
        return Response(status, {"error": _reason(status).lower()})

    def rate_limited(self, fault: _Fault) -> Response:
        return Response(429, {"error": "too many requests"}, self._retry_after_header(fault))

    def state_error(self, call: OutletCall) -> Response | None:
        if self.state == "revoked":
            return Response(401, {"error": "unauthorized"})
        if self.state == "deleted":
            return Response(404, {"error": "not found"})
        return None

    def _bad(self, status: int, message: str) -> tuple[Response, None]:
        self.problem(message)
        return Response(status, {"error": message}), None

    def handle(self, call: OutletCall) -> tuple[Response, Callable[[], None] | None]:
        if call.path != self.path:
            return self._bad(404, f"no webhook at {call.path}")
        if call.method != "POST":
            return self._bad(405, f"method {call.method}, expected POST")
        if call.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            return self._bad(415, f"content-type {call.headers.get('content-type')!r}, expected application/json")
        agent = call.headers.get("user-agent", "")
        if not re.fullmatch(r"polymarket-insights/\S+", agent):
            self.problem(f"user-agent {agent!r}, expected polymarket-insights/<version>")
        key = call.headers.get("idempotency-key")
        if self.require_idempotency_key and (not key or len(key) > 255):
            return self._bad(400, "missing Idempotency-Key")
        signature = call.headers.get("x-signature")
        if self.secret is not None and not verify_signature(call.body, self.secret, signature):
            self.problem("bad or missing X-Signature")
            return Response(401, {"error": "invalid signature"}), None
        try:
            payload = orjson.loads(call.body)
        except orjson.JSONDecodeError:
            return self._bad(400, "the body is not JSON")
        problem = _frame_problem(payload)
        if problem is not None:
            return self._bad(422, problem)
        if self.dedupe and key is not None and key in self._seen:
            self.duplicates.append(call)
            return Response(self.duplicate_status, {"received": True, "duplicate": True}), None

        def accept() -> None:
            if key is not None:
                self._seen.add(key)
            self.accepted.append(WebhookDelivery(key or "", payload, call.body, signature))

        return Response(200, {"received": True}), accept


def _frame_problem(payload: Any, *, nested: bool = False) -> str | None:
    if not isinstance(payload, dict) or not isinstance(payload.get("type"), str) or "data" not in payload:
        return 'expected a frame {"type", "seq", "data"}'
    if payload["type"] == "batch" and not nested:
        if not isinstance(payload["data"], list) or not payload["data"]:
            return "a batch needs a non-empty data list"
        for frame in payload["data"]:
            problem = _frame_problem(frame, nested=True)
            if problem is not None:
                return f"in the batch: {problem}"
        return None
    if payload["type"] in _SEQUENCED:
        seq = payload.get("seq")
        if isinstance(seq, bool) or not isinstance(seq, int):
            return f"a {payload['type']} frame needs an integer seq"
        if not isinstance(payload["data"], dict):
            return "data must be an object"
    return None


# -- Discord ---------------------------------------------------------------------------------------------------

_DISCORD_PATH = re.compile(r"^/api(?:/v\d+)?/webhooks/(\d+)/([^/]+)/?$")


class FakeDiscord(AlertOutletFake):
    """Discord's execute-webhook endpoint for one webhook (see the module docstring)."""

    name = "discord"

    def __init__(self, *, webhook_id: str = "1234567890123456789",
                 token: str = "fAkE-wEbHoOk_ToKeN.0123456789") -> None:
        super().__init__()
        self.webhook_id = webhook_id
        self.token = token
        self.accepted: list[DiscordMessage] = []
        self._next_id = 1_300_000_000_000_000_000

    @property
    def webhook_url(self) -> str:
        return f"{self.url}/api/webhooks/{self.webhook_id}/{self.token}"

    def error(self, status: int, *, path: str = "") -> Response:
        if status == 401:
            return Response(401, {"message": "Invalid Webhook Token", "code": 50027})
        if status == 404:
            return Response(404, {"message": "Unknown Webhook", "code": 10015})
        if status == 400:
            return Response(400, {"message": "Cannot send an empty message", "code": 50006})
        if status == 403:
            return Response(403, {"message": "Missing Permissions", "code": 50013})
        return Response(status, {"message": f"{status}: {_reason(status)}", "code": 0})

    def rate_limited(self, fault: _Fault) -> Response:
        headers = self._retry_after_header(fault)
        headers.update({"x-ratelimit-limit": "5", "x-ratelimit-remaining": "0",
                        "x-ratelimit-reset-after": f"{self._seconds(fault):.3f}", "x-ratelimit-bucket": "fakebucket0",
                        "x-ratelimit-scope": "shared"})
        body: dict[str, Any] = {"message": "You are being rate limited.", "global": False}
        if fault.in_body:
            body["retry_after"] = self._seconds(fault)
        return Response(429, body, headers)

    def state_error(self, call: OutletCall) -> Response | None:
        return self.error(401 if self.state == "revoked" else 404) if self.state else None

    def handle(self, call: OutletCall) -> tuple[Response, Callable[[], None] | None]:
        match = _DISCORD_PATH.match(call.path)
        if match is None:
            self.problem(f"path {call.path!r} is not /api/webhooks/{{id}}/{{token}}")
            return Response(404, {"message": "404: Not Found", "code": 0}), None
        if call.method != "POST":
            self.problem(f"method {call.method}, expected POST")
            return Response(405, {"message": "405: Method Not Allowed", "code": 0}), None
        webhook_id, token = match.groups()
        if webhook_id != self.webhook_id:
            return self.error(404), None
        if token != self.token:
            return self.error(401), None
        wait = call.param("wait")
        if wait is not None and wait.lower() not in ("true", "false", "1", "0"):
            self.problem(f"wait={wait!r}")
            return Response(400, discord_error_body([DiscordProblem(("wait",), "BASE_TYPE_BAD_TYPE",
                                                                     "Must be either true or false.")])), None
        if call.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            self.problem(f"content-type {call.headers.get('content-type')!r}, expected application/json")
            return Response(400, {"message": "Cannot send an empty message", "code": 50006}), None
        try:
            payload = orjson.loads(call.body)
        except orjson.JSONDecodeError:
            self.problem("the body is not JSON")
            return Response(400, {"message": "The request body contains invalid JSON.", "code": 50109}), None
        problems, notes = discord_problems(payload)
        for note in notes:
            self.problem(note)
        if problems:
            for problem in problems:
                self.problem(f"{'.'.join(problem.path)}: {problem.message}")
            return Response(400, discord_error_body(problems)), None
        if not payload.get("content") and not payload.get("embeds") and not payload.get("components"):
            self.problem("an empty message")
            return Response(400, {"message": "Cannot send an empty message", "code": 50006}), None
        message_id = str(self._next_id)
        self._next_id += 1
        message = DiscordMessage(message_id, webhook_id, payload)

        def accept() -> None:
            self.accepted.append(message)

        if wait is not None and wait.lower() in ("true", "1"):
            return Response(200, {
                "id": message_id, "type": 0, "content": payload.get("content", ""), "channel_id": "1111111111111111111",
                "author": {"id": webhook_id, "username": payload.get("username", "Fake Hook"), "bot": True},
                "embeds": [{"type": "rich", **e} for e in payload.get("embeds", [])], "attachments": [],
                "mentions": [], "mention_roles": [], "pinned": False, "mention_everyone": False, "tts": False,
                "timestamp": "2025-10-10T08:41:13.000000+00:00", "edited_timestamp": None, "flags": 0,
                "components": [], "webhook_id": webhook_id}), accept
        return Response(204, b""), accept


# -- Slack -------------------------------------------------------------------------------------------------------

_SLACK_PATH = re.compile(r"^/services/(T[A-Z0-9]+)/(B[A-Z0-9]+)/([A-Za-z0-9]+)/?$")


class FakeSlack(AlertOutletFake):
    """One Slack incoming webhook (see the module docstring)."""

    name = "slack"

    def __init__(self, *, team: str = "T00000001", hook: str = "B00000001",
                 secret: str = "FakeSlackHookSecret0123456") -> None:
        super().__init__()
        self.team = team
        self.hook = hook
        self.secret = secret
        self.accepted: list[SlackMessage] = []

    @property
    def webhook_url(self) -> str:
        return f"{self.url}/services/{self.team}/{self.hook}/{self.secret}"

    def archive(self) -> None:
        """From now on the channel is archived (410 ``channel_is_archived``)."""
        self.state = "archived"

    @staticmethod
    def _text(status: int, word: str, headers: Mapping[str, str] | None = None) -> Response:
        return Response(status, word.encode(), {"content-type": "text/html", **(headers or {})})

    def error(self, status: int, *, path: str = "") -> Response:
        word = {400: "invalid_payload", 403: "invalid_token", 404: "no_service", 410: "channel_is_archived",
                500: "rollup_error"}.get(status, _reason(status).lower().replace(" ", "_"))
        return self._text(status, word)

    def rate_limited(self, fault: _Fault) -> Response:
        return self._text(429, "rate_limited", self._retry_after_header(fault))

    def state_error(self, call: OutletCall) -> Response | None:
        if self.state == "revoked":
            return self._text(403, "invalid_token")
        if self.state == "deleted":
            return self._text(404, "no_service")
        if self.state == "archived":
            return self._text(410, "channel_is_archived")
        return None

    def handle(self, call: OutletCall) -> tuple[Response, Callable[[], None] | None]:
        match = _SLACK_PATH.match(call.path)
        if match is None or match.group(1) != self.team or match.group(2) != self.hook:
            self.problem(f"no webhook at {call.path!r}")
            return self._text(404, "no_service"), None
        if match.group(3) != self.secret:
            return self._text(403, "invalid_token"), None
        if call.method != "POST":
            self.problem(f"method {call.method}, expected POST")
            return self._text(405, "invalid_method"), None
        content_type = call.headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            if content_type == "application/json":
                payload = orjson.loads(call.body)
            elif content_type == "application/x-www-form-urlencoded":
                self.problem("form-encoded payload (we send JSON)")
                form = dict(parse_qsl(call.body.decode("utf-8", "replace")))
                payload = orjson.loads(form.get("payload", ""))
            else:
                self.problem(f"content-type {call.headers.get('content-type')!r}, expected application/json")
                return self._text(400, "invalid_payload"), None
        except orjson.JSONDecodeError:
            self.problem("the body is not JSON")
            return self._text(400, "invalid_payload"), None
        word, problems, notes = slack_problems(payload)
        for message in (*problems, *notes):
            self.problem(message)
        if word is not None:
            return self._text(400, word), None
        message = SlackMessage(payload)

        def accept() -> None:
            self.accepted.append(message)

        return self._text(200, "ok"), accept


# -- Telegram -------------------------------------------------------------------------------------------------

_TELEGRAM_PATH = re.compile(r"^/bot([^/]*)/([A-Za-z]+)/?$")
_SEND_MESSAGE_PARAMS = frozenset({"chat_id", "text", "parse_mode", "entities", "link_preview_options",
                                  "disable_notification", "protect_content", "message_thread_id", "reply_parameters",
                                  "reply_markup", "business_connection_id", "message_effect_id",
                                  "allow_paid_broadcast", "direct_messages_topic_id", "suggested_post_parameters",
                                  "disable_web_page_preview", "reply_to_message_message_id",
                                  "allow_sending_without_reply", "reply_to_message_id"})
_LINK_PREVIEW_KEYS = frozenset({"is_disabled", "url", "prefer_small_media", "prefer_large_media", "show_above_text"})


class FakeTelegram(AlertOutletFake):
    """The Bot API's ``sendMessage`` for one bot (see the module docstring)."""

    name = "telegram"

    def __init__(self, *, token: str = "7123456789:AAFakeTelegramBotToken_0123456789abcd",
                 chats: Mapping[int | str, str] | None = None) -> None:
        super().__init__()
        self.token = token
        #: chats the bot can post to: id (or ``@username``) → chat type
        self.chats: dict[int | str, str] = dict(chats) if chats is not None else {-1001234567890: "supergroup"}
        self.accepted: list[TelegramMessage] = []
        self._next_message_id = 1

    @property
    def base_url(self) -> str:
        """What the Bot API's base URL setting should be."""
        return self.url

    @property
    def chat_id(self) -> int | str:
        """The first known chat."""
        return next(iter(self.chats))

    @property
    def bot_id(self) -> int:
        return int(self.token.split(":", 1)[0])

    @staticmethod
    def _error(status: int, description: str, *, retry_after: int | None = None) -> Response:
        body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        headers: dict[str, str] = {}
        if retry_after is not None:
            body["parameters"] = {"retry_after": retry_after}
        return Response(status, body, headers)

    def error(self, status: int, *, path: str = "") -> Response:
        description = {400: "Bad Request: chat not found", 401: "Unauthorized",
                       403: "Forbidden: bot was kicked from the group chat", 404: "Not Found",
                       500: "Internal Server Error", 502: "Bad Gateway"}.get(status, _reason(status))
        return self._error(status, description)

    def rate_limited(self, fault: _Fault) -> Response:
        seconds = max(1, math.ceil(self._seconds(fault)))
        body: dict[str, Any] = {"ok": False, "error_code": 429,
                                "description": f"Too Many Requests: retry after {seconds}"}
        if fault.in_body:
            body["parameters"] = {"retry_after": seconds}
        return Response(429, body, self._retry_after_header(fault))

    def state_error(self, call: OutletCall) -> Response | None:
        if self.state == "revoked":
            return self._error(401, "Unauthorized")
        if self.state == "deleted":
            return self._error(403, "Forbidden: bot was kicked from the group chat")
        return None

    def _bad(self, description: str) -> tuple[Response, None]:
        self.problem(description)
        return self._error(400, description), None

    def _known_chat(self, chat_id: Any) -> int | str | None:
        if isinstance(chat_id, bool):
            return None
        if isinstance(chat_id, str) and re.fullmatch(r"-?\d+", chat_id.strip()):
            chat_id = int(chat_id)
        return chat_id if chat_id in self.chats else None

    def handle(self, call: OutletCall) -> tuple[Response, Callable[[], None] | None]:
        match = _TELEGRAM_PATH.match(call.path)
        if match is None:
            self.problem(f"path {call.path!r} is not /bot<token>/<method>")
            return self._error(404, "Not Found"), None
        token, method = match.groups()
        if token[:1] == "0" or len(token) > 80 or ":" not in token:
            self.problem("malformed bot token")
            return self._error(401, "Unauthorized: invalid token specified"), None
        if token != self.token:
            return self._error(401, "Unauthorized"), None
        if method.lower() != "sendmessage":
            self.problem(f"method {method!r}, the fake knows sendMessage only")
            return self._error(404, "Not Found: method not found"), None
        if call.method != "POST":
            self.problem(f"HTTP method {call.method}, we POST")
        content_type = call.headers.get("content-type", "").split(";")[0].strip().lower()
        params: Any = {}
        if content_type == "application/json":
            try:
                params = orjson.loads(call.body) if call.body else {}
            except orjson.JSONDecodeError:
                return self._bad("Bad Request: can't parse JSON object")
            if not isinstance(params, dict):
                return self._bad("Bad Request: can't parse JSON object")
        else:
            self.problem(f"content-type {call.headers.get('content-type')!r}, we send application/json")
        for key in params:
            if key not in _SEND_MESSAGE_PARAMS:
                self.problem(f"sendMessage ignores the unknown parameter {key!r}")
        if "disable_web_page_preview" in params:
            self.problem("disable_web_page_preview is deprecated since Bot API 7.0: use link_preview_options")
        chat_id = params.get("chat_id")
        if chat_id is None or chat_id == "":
            return self._bad("Bad Request: chat_id is empty")
        chat = self._known_chat(chat_id)
        if chat is None:
            return self._bad("Bad Request: chat not found")
        raw = params.get("text")
        if not isinstance(raw, str) or not raw:
            return self._bad("Bad Request: message text is empty")
        options = params.get("link_preview_options")
        if options is not None and (not isinstance(options, dict) or set(options) - _LINK_PREVIEW_KEYS):
            return self._bad("Bad Request: can't parse link preview options JSON object")
        parse_mode = params.get("parse_mode")
        entities: tuple[TelegramEntity, ...] = ()
        text = raw
        if parse_mode is not None:
            mode = str(parse_mode).lower()
            if mode == "markdownv2":
                try:
                    parsed = parse_markdown_v2(raw)
                except MarkdownV2Error as exc:
                    return self._bad(f"Bad Request: can't parse entities: {exc}")
                text, entities = parsed.text, parsed.entities
            elif mode in ("markdown", "html"):
                self.problem(f"parse_mode {parse_mode!r}: we send MarkdownV2")
            elif mode:
                return self._bad("Bad Request: unsupported parse_mode")
        if not text.strip():
            return self._bad("Bad Request: message text is empty")
        if len(text) > 4096:
            return self._bad("Bad Request: message is too long")
        message_id = self._next_message_id
        self._next_message_id += 1
        message = TelegramMessage(message_id, chat, text, entities, raw, params)

        def accept() -> None:
            self.accepted.append(message)

        result: dict[str, Any] = {
            "message_id": message_id,
            "from": {"id": self.bot_id, "is_bot": True, "first_name": "Fake Whale Bot", "username": "fake_whale_bot"},
            "chat": {"id": chat if isinstance(chat, int) else -1009876543210, "type": self.chats[chat],
                     "title": "Whales"},
            "date": 1760085672 + message_id,
            "text": text,
        }
        if entities:
            result["entities"] = [e.as_json() for e in entities]
        if options:
            result["link_preview_options"] = options
        return Response(200, {"ok": True, "result": result}), accept


# -- starting them ----------------------------------------------------------------------------------------

Fake = TypeVar("Fake", bound=AlertOutletFake)


@asynccontextmanager
async def _open(fake: Fake) -> AsyncIterator[Fake]:
    async with trio.open_nursery() as nursery:
        await nursery.start(fake.run)
        try:
            yield fake
        finally:
            nursery.cancel_scope.cancel()


def open_fake_webhook_receiver(**kwargs: Any) -> AbstractAsyncContextManager[FakeWebhookReceiver]:
    """``async with open_fake_webhook_receiver(secret=…) as hook:`` — on 127.0.0.1, a free port."""
    return _open(FakeWebhookReceiver(**kwargs))


def open_fake_discord(**kwargs: Any) -> AbstractAsyncContextManager[FakeDiscord]:
    """``async with open_fake_discord() as discord:`` — post to ``discord.webhook_url``."""
    return _open(FakeDiscord(**kwargs))


def open_fake_slack(**kwargs: Any) -> AbstractAsyncContextManager[FakeSlack]:
    """``async with open_fake_slack() as slack:`` — post to ``slack.webhook_url``."""
    return _open(FakeSlack(**kwargs))


def open_fake_telegram(**kwargs: Any) -> AbstractAsyncContextManager[FakeTelegram]:
    """``async with open_fake_telegram() as tg:`` — ``tg.base_url``, ``tg.token``, ``tg.chat_id``."""
    return _open(FakeTelegram(**kwargs))


__all__ = [
    "AlertOutletFake", "DiscordMessage", "DiscordProblem", "FakeDiscord", "FakeSlack", "FakeTelegram",
    "FakeWebhookReceiver", "MarkdownV2Error", "OutletCall", "ParsedText", "SlackMessage", "TelegramEntity",
    "TelegramMessage", "WebhookDelivery", "discord_error_body", "discord_problems", "open_fake_discord",
    "open_fake_slack", "open_fake_telegram", "open_fake_webhook_receiver", "parse_markdown_v2", "slack_mrkdwn_notes",
    "slack_problems", "utf16_length",
]
