"""protocols/openrouter.py: request shape, response and usage parsing, error classes, tolerant answers."""

from __future__ import annotations

import json
import math

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.openrouter import (
    FORECAST_SCHEMA,
    AnswerParseError,
    FailureKind,
    OpenRouterError,
    answer_json,
    chat_request_body,
    classify_error,
    parse_chat_response,
    parse_forecast_answer,
    request_headers,
)

COMPLETION = {
    "id": "gen-1760000000-abc", "provider": "OpenAI", "model": "openai/gpt-4o-mini", "object": "chat.completion",
    "created": 1760000000,
    "choices": [{"logprobs": None, "finish_reason": "stop", "native_finish_reason": "stop", "index": 0,
                 "message": {"role": "assistant", "content": '{"outcome":"Yes","probability":0.62,'
                             '"confidence":0.5,"reasoning":"r"}', "refusal": None, "reasoning": None}}],
    "usage": {"prompt_tokens": 194, "completion_tokens": 2, "total_tokens": 196, "cost": 0.95,
              "cost_details": {"upstream_inference_cost": 19},
              "prompt_tokens_details": {"cached_tokens": 7, "audio_tokens": 0},
              "completion_tokens_details": {"reasoning_tokens": 0}},
}


def test_request_body_and_headers() -> None:
    body = chat_request_body("openai/gpt-4o-mini", [("system", "be careful"), ("user", "Will it?")],
                             max_tokens=300, temperature=0.2)
    assert body["model"] == "openai/gpt-4o-mini"
    assert body["messages"] == [{"role": "system", "content": "be careful"}, {"role": "user", "content": "Will it?"}]
    assert body["max_tokens"] == 300 and body["temperature"] == 0.2 and body["stream"] is False
    rf = body["response_format"]
    assert rf["type"] == "json_schema" and rf["json_schema"]["strict"] is True
    schema = rf["json_schema"]["schema"]
    assert schema is FORECAST_SCHEMA and set(schema["required"]) == set(schema["properties"])
    assert schema["additionalProperties"] is False
    assert "usage" not in body  # deprecated; OpenRouter always returns usage now
    assert "response_format" not in chat_request_body("m", [("user", "q")], max_tokens=1, temperature=0,
                                                      structured=False)
    headers = request_headers("sk-or-v1-secret", app_url="https://example.org")
    assert headers["Authorization"] == "Bearer sk-or-v1-secret"
    assert headers["HTTP-Referer"] == "https://example.org"
    assert headers["X-Title"] == headers["X-OpenRouter-Title"] == "Polymarket Insights"


def test_completion_and_usage_with_cost() -> None:
    completion = parse_chat_response(orjson.dumps(COMPLETION))
    assert completion.model == "openai/gpt-4o-mini" and completion.finish_reason == "stop"
    assert completion.content.startswith('{"outcome"') and completion.provider == "OpenAI"
    usage = completion.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (194, 2, 196)
    assert usage.cost == 0.95 and usage.cached_tokens == 7


def test_completion_without_cost_and_with_content_parts() -> None:
    data = json.loads(json.dumps(COMPLETION))
    del data["usage"]["cost"]
    data["choices"][0]["message"]["content"] = [{"type": "text", "text": "{\"probability\":"},
                                                {"type": "text", "text": " 0.3}"}]
    completion = parse_chat_response(json.dumps(data))
    assert completion.usage.cost is None and completion.usage.prompt_tokens == 194
    assert parse_forecast_answer(completion.content).probability == 0.3


@pytest.mark.parametrize("body,kind", [
    (b"<html>502</html>", FailureKind.BAD_RESPONSE),
    (b'{"id":"x","choices":[]}', FailureKind.BAD_RESPONSE),
    (b'{"error":{"code":502,"message":"Provider returned error","metadata":{"raw":"boom"}}}', FailureKind.SERVER_ERROR),
    (b'{"error":{"code":429,"message":"slow down","metadata":{"retry_after_seconds":17}}}', FailureKind.RATE_LIMITED),
    (b'{"error":{"code":402,"message":"Insufficient credits"}}', FailureKind.NO_CREDITS),
    (b'{"id":"x","choices":[{"finish_reason":"error","message":{"content":""}}]}', FailureKind.SERVER_ERROR),
])
def test_bad_2xx_bodies_are_classified(body: bytes, kind: FailureKind) -> None:
    with pytest.raises(OpenRouterError) as info:
        parse_chat_response(body)
    assert info.value.failure.kind is kind


@pytest.mark.parametrize("status,kind,retryable,pauses", [
    (400, FailureKind.BAD_REQUEST, False, None),
    (401, FailureKind.UNAUTHORIZED, False, "key"),
    (402, FailureKind.NO_CREDITS, False, "key"),
    (403, FailureKind.MODERATION, False, None),
    (404, FailureKind.UNKNOWN_MODEL, False, "model"),
    (408, FailureKind.SERVER_ERROR, True, None),
    (429, FailureKind.RATE_LIMITED, True, None),
    (500, FailureKind.SERVER_ERROR, True, None),
    (502, FailureKind.SERVER_ERROR, True, None),
    (503, FailureKind.SERVER_ERROR, True, None),
])
def test_error_statuses(status: int, kind: FailureKind, retryable: bool, pauses: str | None) -> None:
    failure = classify_error(status, b'{"error":{"code":%d,"message":"No endpoints found for x/y."}}' % status)
    assert (failure.kind, failure.retryable, failure.pauses, failure.status) == (kind, retryable, pauses, status)
    assert failure.message == "No endpoints found for x/y."
    assert failure.describe() == f"{kind.value} (HTTP {status}: No endpoints found for x/y.)"


def test_error_metadata_retry_after_and_raw() -> None:
    body = {"error": {"code": 429, "message": "Provider returned error", "metadata": {
        "raw": "temporarily rate-limited upstream", "retry_after_seconds": 17, "headers": {"Retry-After": "17"}}}}
    failure = classify_error(429, orjson.dumps(body))
    assert failure.retry_after == 17 and "temporarily rate-limited upstream" in failure.message
    assert classify_error(429, b'{"error":{"code":429,"metadata":{"headers":{"Retry-After":"3"}}}}').retry_after == 3
    assert classify_error(500, b"Internal Server Error").message == "Internal Server Error"


# -- tolerant answers ------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    '{"outcome": "Yes", "probability": 0.72, "confidence": 0.6, "reasoning": "because"}',
    'Sure!\n```json\n{"outcome": "Yes", "probability": 0.72, "confidence": 0.6, "reasoning": "because"}\n```',
    '```\n{"outcome": "Yes", "probability": 0.72, "confidence": 0.6, "reasoning": "because"}\n```',
    'My answer: {"outcome": "Yes", "probability": 0.72, "confidence": 0.6, "reasoning": "because"} Thanks.',
    'Thinking {not json} ... final: {"Outcome": "YES", "Probability": "72%", "Confidence": "0.6", "Rationale": "because"}',
    '{"prediction": "yes", "prob": 72, "confidence": 60, "explanation": "because"}',
])
def test_answers_in_many_shapes(text: str) -> None:
    answer = parse_forecast_answer(text, ("Yes", "No"))
    assert answer.outcome == "Yes" and math.isclose(answer.probability, 0.72)
    assert answer.confidence is not None and math.isclose(answer.confidence, 0.6)
    assert answer.reasoning == "because"


def test_vote_follows_the_probability_and_labels_are_matched() -> None:
    # a stated outcome that contradicts the probability: the probability (what is scored) wins
    answer = parse_forecast_answer('{"outcome": "No", "probability": 0.8, "confidence": 0.5}', ("Yes", "No"))
    assert answer.outcome == "Yes" and answer.stated_outcome == "No"
    # exactly 0.5: the stated label decides; YES/NO map onto other two-outcome labels
    assert parse_forecast_answer('{"outcome": "no", "probability": 0.5}', ("Over", "Under")).outcome == "Under"
    assert parse_forecast_answer('{"outcome": "Under", "probability": 0.5}', ("Over", "Under")).outcome == "Under"
    assert parse_forecast_answer('{"probability": 0.2}', ("Over", "Under")).outcome == "Under"
    answer = parse_forecast_answer('{"probability": 0.4, "confidence": "high", "reasoning": "' + "x" * 5000 + '"}')
    assert answer.confidence == 0.8 and len(answer.reasoning) == 1000
    assert parse_forecast_answer('{"probability": 0.4, "confidence": "sure?"}').confidence is None


@pytest.mark.parametrize("text,reason", [
    ("", "empty answer"),
    ("   \n", "empty answer"),
    ("I cannot predict the future.", "no JSON object"),
    ("[0.4, 0.6]", "no JSON object"),
    ('{"outcome": "Yes", "confidence": 0.9}', "no probability"),
    ('{"probability": 1.7}', "outside 0..1"),
    ('{"probability": 250}', "outside 0..1"),
    ('{"probability": -0.1}', "outside 0..1"),
    ('{"probability": "likely"}', "not a number"),
    ('{"probability": true}', "not a number"),
    ('{"probability": NaN}', "not finite"),
])
def test_unusable_answers_say_why(text: str, reason: str) -> None:
    with pytest.raises(AnswerParseError) as info:
        parse_forecast_answer(text)
    assert reason in info.value.reason


_unit = st.floats(min_value=0, max_value=1, allow_nan=False)
_prose = st.text(st.characters(blacklist_characters="{}`", blacklist_categories=("Cs",)), max_size=80)


@given(p=_unit, c=_unit, reasoning=st.text(max_size=200), before=_prose, after=_prose,
       style=st.sampled_from(["bare", "fenced", "prose"]))
def test_any_well_formed_answer_is_found_whatever_surrounds_it(
        p: float, c: float, reasoning: str, before: str, after: str, style: str) -> None:
    obj = answer_json(p, "Yes" if p >= 0.5 else "No", c, reasoning)
    text = {"bare": obj, "fenced": f"{before}\n```json\n{obj}\n```\n{after}", "prose": f"{before} {obj} {after}"}[style]
    answer = parse_forecast_answer(text, ("Yes", "No"))
    assert answer.probability == pytest.approx(p if p <= 1 else p / 100)
    assert answer.confidence == pytest.approx(c)
    assert answer.outcome == ("Yes" if p > 0.5 else "No" if p < 0.5 else "Yes")


@given(st.text(max_size=300))
def test_arbitrary_text_never_crashes_the_parser(text: str) -> None:
    try:
        answer = parse_forecast_answer(text, ("Yes", "No"))
    except AnswerParseError as exc:
        assert exc.reason
    else:
        assert 0.0 <= answer.probability <= 1.0 and answer.outcome in ("Yes", "No")


@given(st.binary(max_size=200))
def test_arbitrary_bodies_raise_only_openrouter_errors(body: bytes) -> None:
    try:
        parse_chat_response(body)
    except OpenRouterError as exc:
        assert exc.failure.kind in FailureKind
    classify_error(500, body)
