"""The alert outlets' loopback fakes: each accepts a correct request made with httpx, refuses
malformed ones with the real service's error, and injects 429s, 5xx, slowness, disconnects and
revoked / deleted webhooks."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
import trio
import trio.testing

from protocols.alerts import (
    AlertMessage,
    OutgoingRequest,
    classify_response,
    discord_request,
    interpret_response,
    retry_hint,
    sign,
    slack_request,
    telegram_method_url,
    telegram_request,
    webhook_digest_request,
    webhook_request,
)
from tests.fakes.alert_outlets import (
    open_fake_discord,
    open_fake_slack,
    open_fake_telegram,
    open_fake_webhook_receiver,
    utf16_length,
)

TITLE = "Will María Corina Machado win the Nobel Peace Prize in 2025? (yes/no) 1.5!"


@pytest.fixture
def loopback_clock() -> trio.testing.MockClock:
    """Virtual time that jumps only once every task has waited 10 ms of real time (sockets)."""
    return trio.testing.MockClock(autojump_threshold=0.01)


def whale(seq: int = 1043, **changes: Any) -> AlertMessage:
    data = {"market": TITLE, "side": "YES", "action": "BUY", "amount": 24150.5, "price": 0.71, "size": 34014.8,
            "timestamp": "2025-10-10T08:41:12Z", "url": "https://polymarket.com/event/nobel-peace-prize-winner-2025",
            "wallet": "0x1234567890abcdef1234567890abcdef1234abcd", "tier": "big_whale", "trade_id": f"t{seq}"}
    data.update(changes)
    return AlertMessage.from_frame(f"whale:t{seq}", orjson.dumps({"type": "whale_trade", "seq": seq, "data": data}))


async def send(client: httpx.AsyncClient, request: OutgoingRequest) -> httpx.Response:
    return await client.request(request.method, request.url, headers=request.headers, content=request.body)


# -- the generic webhook receiver ----------------------------------------------------------------------------------


async def test_webhook_receiver_accepts_a_signed_frame_and_dedupes_by_key() -> None:
    async with open_fake_webhook_receiver(secret="s3cret") as hook, httpx.AsyncClient() as client:
        message = whale()
        request = webhook_request(hook.webhook_url, message, secret="s3cret", version="0.1.0")
        first = await send(client, request)
        again = await send(client, request)
        assert first.status_code == again.status_code == 200
        assert again.json() == {"received": True, "duplicate": True}
        assert [d.idempotency_key for d in hook.accepted] == [message.key]
        assert hook.accepted[0].body == message.frame and len(hook.duplicates) == 1
        digest = await send(client, webhook_digest_request(hook.webhook_url, [whale(1), whale(2)], secret="s3cret"))
        assert digest.status_code == 200
        assert [f["seq"] for f in hook.frames()] == [1043, 1, 2]
        assert hook.format_errors == []


async def test_webhook_receiver_refuses_bad_requests() -> None:
    async with open_fake_webhook_receiver(secret="s3cret") as hook, httpx.AsyncClient() as client:
        good = webhook_request(hook.webhook_url, whale(), secret="s3cret", version="1")
        wrong_secret = webhook_request(hook.webhook_url, whale(), secret="other", version="1")
        response = await send(client, wrong_secret)
        assert (response.status_code, response.json()) == (401, {"error": "invalid signature"})
        unsigned = {k: v for k, v in good.headers.items() if k != "X-Signature"}
        assert (await client.post(hook.webhook_url, headers=unsigned, content=good.body)).status_code == 401
        no_key = {k: v for k, v in good.headers.items() if k != "Idempotency-Key"}
        assert (await client.post(hook.webhook_url, headers=no_key, content=good.body)).status_code == 400
        text = {**good.headers, "Content-Type": "text/plain"}
        assert (await client.post(hook.webhook_url, headers=text, content=good.body)).status_code == 415
        body = b'{"type":"whale_trade","data":{}}'
        signed = {**good.headers, "X-Signature": sign(body, "s3cret")}
        response = await client.post(hook.webhook_url, headers=signed, content=body)
        assert response.status_code == 422 and "seq" in response.json()["error"]
        assert hook.accepted == [] and len(hook.format_errors) == 5


# -- Discord -----------------------------------------------------------------------------------------------------


async def test_discord_accepts_an_embed_and_answers_like_discord() -> None:
    async with open_fake_discord() as discord, httpx.AsyncClient() as client:
        response = await send(client, discord_request(discord.webhook_url, whale()))
        assert response.status_code == 200 and response.json()["webhook_id"] == discord.webhook_id
        assert response.json()["embeds"][0]["title"] == TITLE
        without_wait = await client.post(discord.webhook_url, json={"content": "plain"})
        assert (without_wait.status_code, without_wait.content) == (204, b"")
        assert [m.embeds[0]["title"] if m.embeds else m.content for m in discord.accepted] == [TITLE, "plain"]
        assert discord.format_errors == []


async def test_discord_refuses_what_discord_refuses() -> None:
    async with open_fake_discord() as discord, httpx.AsyncClient() as client:
        url = discord.webhook_url + "?wait=true"
        response = await client.post(url, json={"embeds": [{"title": "x" * 257}]})
        assert response.status_code == 400
        assert response.json() == {"code": 50035, "message": "Invalid Form Body", "errors": {"embeds": {"0": {
            "title": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 256 or fewer in length."}]}}}}}
        response = await client.post(url, json={"embeds": [{"title": "t"}] * 11})
        assert response.json()["errors"]["embeds"]["_errors"][0]["message"] == "Must be 10 or fewer in length."
        response = await client.post(url, json={"embeds": [{"fields": [{"name": "n", "value": "v" * 1025}]}]})
        assert "fields" in response.json()["errors"]["embeds"]["0"]
        response = await client.post(url, json={"embeds": [{"description": "d" * 4096, "title": "t" * 256,
                                                             "footer": {"text": "f" * 2000}}]})
        assert response.json()["errors"]["embeds"]["_errors"][0]["code"] == "MAX_EMBED_SIZE_EXCEEDED"
        response = await client.post(url, json={"content": ""})
        assert (response.status_code, response.json()["code"]) == (400, 50006)
        response = await client.post(url, content=b"{not json", headers={"Content-Type": "application/json"})
        assert response.json()["code"] == 50109
        bad_token = discord.webhook_url.rsplit("/", 1)[0] + "/wrong"
        response = await client.post(bad_token, json={"content": "x"})
        assert (response.status_code, response.json()) == (401, {"message": "Invalid Webhook Token", "code": 50027})
        assert discord.accepted == []


async def test_discord_rate_limit_failures_and_a_deleted_webhook() -> None:
    async with open_fake_discord() as discord, httpx.AsyncClient() as client:
        request = discord_request(discord.webhook_url, whale())
        discord.rate_limit_next(1, retry_after=1.5)
        response = await send(client, request)
        assert response.status_code == 429 and response.headers["retry-after"] == "2"
        assert response.json() == {"message": "You are being rate limited.", "retry_after": 1.5, "global": False}
        assert retry_hint("discord", 429, response.headers, response.content) == 1.5
        discord.rate_limit_next(1, retry_after=3, in_body=False)
        response = await send(client, request)
        assert interpret_response("discord", 429, response.headers, response.content).retry_after == 3.0
        discord.fail_next(1, 502)
        response = await send(client, request)
        assert classify_response("discord", response.status_code, response.content) == "retry"
        discord.delete()
        response = await send(client, request)
        assert (response.status_code, response.json()) == (404, {"message": "Unknown Webhook", "code": 10015})
        assert classify_response("discord", 404, response.content) == "auth"
        discord.revoke()
        assert (await send(client, request)).status_code == 401
        discord.restore()
        assert (await send(client, request)).status_code == 200
        assert len(discord.accepted) == 1 and [c.status for c in discord.calls] == [429, 429, 502, 404, 401, 200]


# -- Slack -------------------------------------------------------------------------------------------------------


async def test_slack_accepts_blocks_and_answers_ok() -> None:
    async with open_fake_slack() as slack, httpx.AsyncClient() as client:
        response = await send(client, slack_request(slack.webhook_url, whale()))
        assert (response.status_code, response.text) == (200, "ok")
        assert slack.accepted[0].text.startswith("🐋 Big whale: $24,150 BUY YES at 71¢")
        assert slack.format_errors == []


async def test_slack_refuses_with_its_text_errors() -> None:
    async with open_fake_slack() as slack, httpx.AsyncClient() as client:
        url = slack.webhook_url
        cases = [
            ({"json": {"blocks": []}}, 400, "no_text"),
            ({"json": {"text": "x", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "y" * 3001}}]}},
             400, "invalid_blocks"),
            ({"json": {"text": "x", "blocks": [{"type": "header", "text": {"type": "mrkdwn", "text": "h"}}]}},
             400, "invalid_blocks"),
            ({"json": {"text": "x", "blocks": [{"type": "section"}] * 51}}, 400, "invalid_blocks"),
            ({"content": b"{oops", "headers": {"Content-Type": "application/json"}}, 400, "invalid_payload"),
            ({"content": b"text=hi", "headers": {"Content-Type": "text/plain"}}, 400, "invalid_payload"),
        ]
        for kwargs, status, word in cases:
            response = await client.post(url, **kwargs)
            assert (response.status_code, response.text) == (status, word)
            assert classify_response("slack", response.status_code, response.content) == "rejected"
        response = await client.post(url.rsplit("/", 1)[0] + "/WrongSecret", json={"text": "x"})
        assert (response.status_code, response.text) == (403, "invalid_token")
        assert slack.accepted == []


async def test_slack_unescaped_mrkdwn_is_accepted_but_flagged() -> None:
    async with open_fake_slack() as slack, httpx.AsyncClient() as client:
        response = await client.post(slack.webhook_url, json={"text": "AT&T <b> is up"})
        assert response.text == "ok"
        assert any("unescaped '&'" in e for e in slack.format_errors)


async def test_slack_rate_limit_failures_and_a_removed_hook() -> None:
    async with open_fake_slack() as slack, httpx.AsyncClient() as client:
        request = slack_request(slack.webhook_url, whale())
        slack.rate_limit_next(1, retry_after=30)
        response = await send(client, request)
        assert response.status_code == 429 and retry_hint("slack", 429, response.headers, response.content) == 30.0
        slack.fail_next(1, 500)
        response = await send(client, request)
        assert (response.status_code, response.text) == (500, "rollup_error")
        assert classify_response("slack", 500, response.content) == "retry"
        for break_it, status, word in ((slack.delete, 404, "no_service"), (slack.revoke, 403, "invalid_token"),
                                       (slack.archive, 410, "channel_is_archived")):
            break_it()
            response = await send(client, request)
            assert (response.status_code, response.text) == (status, word)
            assert classify_response("slack", status, response.content) == "auth"
        assert slack.accepted == []


# -- Telegram ----------------------------------------------------------------------------------------------------


async def test_telegram_accepts_markdown_v2_and_answers_a_message() -> None:
    async with open_fake_telegram() as telegram, httpx.AsyncClient() as client:
        response = await send(client, telegram_request(telegram.base_url, telegram.token, telegram.chat_id, whale()))
        assert response.status_code == 200
        body = response.json()
        assert body["ok"] is True and body["result"]["message_id"] == 1
        assert body["result"]["chat"]["id"] == telegram.chat_id
        assert TITLE in body["result"]["text"]
        text = body["result"]["text"]
        assert {"type": "text_link", "offset": utf16_length(text[:text.index(TITLE)]), "length": len(TITLE),
                "url": "https://polymarket.com/event/nobel-peace-prize-winner-2025"} in body["result"]["entities"]
        (message,) = telegram.accepted
        assert message.links[0] == "https://polymarket.com/event/nobel-peace-prize-winner-2025"
        assert telegram.format_errors == []


async def test_telegram_refuses_unescaped_markdown_with_the_real_error() -> None:
    async with open_fake_telegram() as telegram, httpx.AsyncClient() as client:
        url = telegram_method_url(telegram.base_url, telegram.token)
        response = await client.post(url, json={"chat_id": telegram.chat_id, "text": "Version 1.0",
                                                "parse_mode": "MarkdownV2"})
        assert response.status_code == 400
        assert response.json() == {"ok": False, "error_code": 400, "description": "Bad Request: can't parse entities: "
                                   "Character '.' is reserved and must be escaped with the preceding '\\'"}
        assert classify_response("telegram", 400, response.content) == "rejected"
        response = await client.post(url, json={"chat_id": telegram.chat_id, "text": "*bold",
                                                "parse_mode": "MarkdownV2"})
        assert response.json()["description"] == \
            "Bad Request: can't parse entities: Can't find end of Bold entity at byte offset 0"
        response = await client.post(url, json={"chat_id": telegram.chat_id, "text": "x" * 4097})
        assert response.json()["description"] == "Bad Request: message is too long"
        response = await client.post(url, json={"chat_id": 42, "text": "hi"})
        assert response.json()["description"] == "Bad Request: chat not found"
        assert classify_response("telegram", 400, response.content) == "auth"
        response = await client.post(url, json={"chat_id": telegram.chat_id, "text": ""})
        assert response.json()["description"] == "Bad Request: message text is empty"
        response = await client.post(url, json={"chat_id": telegram.chat_id, "text": "x",
                                                "link_preview_options": {"disabled": True}})
        assert response.status_code == 400
        response = await client.post(telegram_method_url(telegram.base_url, "123:wrong"), json={})
        assert (response.status_code, response.json()["description"]) == (401, "Unauthorized")
        response = await client.post(telegram_method_url(telegram.base_url, "no-colon"), json={})
        assert response.json()["description"] == "Unauthorized: invalid token specified"
        assert telegram.accepted == []


async def test_telegram_flags_the_deprecated_preview_parameter() -> None:
    async with open_fake_telegram() as telegram, httpx.AsyncClient() as client:
        response = await client.post(telegram_method_url(telegram.base_url, telegram.token), json={
            "chat_id": telegram.chat_id, "text": "hi", "disable_web_page_preview": True})
        assert response.status_code == 200
        assert any("link_preview_options" in e for e in telegram.format_errors)


async def test_telegram_rate_limit_and_a_revoked_token() -> None:
    async with open_fake_telegram() as telegram, httpx.AsyncClient() as client:
        request = telegram_request(telegram.base_url, telegram.token, telegram.chat_id, whale())
        telegram.rate_limit_next(1, retry_after=5)
        response = await send(client, request)
        assert response.status_code == 429 and response.headers["retry-after"] == "5"
        assert response.json() == {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 5",
                                   "parameters": {"retry_after": 5}}
        assert retry_hint("telegram", 429, {}, response.content) == 5.0
        telegram.revoke()
        response = await send(client, request)
        assert (response.status_code, response.json()["description"]) == (401, "Unauthorized")
        telegram.delete()
        response = await send(client, request)
        assert response.status_code == 403 and classify_response("telegram", 403, response.content) == "auth"
        assert telegram.accepted == []


# -- slowness and lost answers (virtual time) -------------------------------------------------------------------


async def test_a_slow_outlet_is_driven_by_the_mock_clock(loopback_clock: trio.testing.MockClock) -> None:
    async with open_fake_discord() as discord, httpx.AsyncClient(timeout=None) as client:
        request = discord_request(discord.webhook_url, whale())
        discord.delay_next(1, 120.0)
        start = trio.current_time()
        assert (await send(client, request)).status_code == 200
        assert trio.current_time() - start >= 120.0
        discord.delay = 10.0
        with trio.move_on_after(5.0) as scope:
            await send(client, request)
        assert scope.cancelled_caught and len(discord.accepted) == 1  # given up before the answer: not posted


async def test_a_late_answer_after_posting_leaves_the_message_posted(loopback_clock: trio.testing.MockClock) -> None:
    async with open_fake_telegram() as telegram, httpx.AsyncClient(timeout=5.0) as client:
        telegram.delay_next(1, 60.0, accept_first=True)
        with pytest.raises(httpx.ReadTimeout):
            await send(client, telegram_request(telegram.base_url, telegram.token, telegram.chat_id, whale()))
        assert len(telegram.accepted) == 1


async def test_a_dropped_connection_after_accepting() -> None:
    async with open_fake_webhook_receiver() as hook, httpx.AsyncClient() as client:
        request = webhook_request(hook.webhook_url, whale())
        hook.disconnect_next()
        with pytest.raises(httpx.HTTPError):
            await send(client, request)
        assert len(hook.accepted) == 1
        again = await send(client, request)  # the sender retries: the receiver recognises the key
        assert again.json() == {"received": True, "duplicate": True} and len(hook.accepted) == 1
