"""The OpenRouter (OpenAI-compatible) chat-completions wire format, and forecast answers (no I/O).

The one place that knows the format:

* requests: ``POST {base}/chat/completions`` with ``Authorization: Bearer <key>``, the app
  attribution headers (``HTTP-Referer``; ``X-OpenRouter-Title`` and its older spelling
  ``X-Title``) and a JSON body (:func:`chat_request_body`: ``model``, ``messages``,
  ``max_tokens``, ``temperature`` and, where asked for, ``response_format`` of type
  ``json_schema`` — providers that cannot honour it ignore it, since we never set
  ``provider.require_parameters``);
* responses (:func:`parse_chat_response`): ``choices[0].message.content`` and ``usage``
  (``prompt_tokens``, ``completion_tokens``, ``total_tokens`` and, from OpenRouter, ``cost`` in
  USD credits — always included now; ``usage: {include: true}`` is deprecated and not sent).
  OpenRouter may also answer 200 with an ``error`` object when the model failed after the
  request was accepted; that is a failure like a 5xx;
* errors (:func:`classify_error`): ``{"error": {"code", "message", "metadata"?}}`` with the HTTP
  status equal to ``code``: 400 bad request, 401 bad key, 402 no credits, 403 moderation, 404 no
  such model (or no endpoint for it), 408 timeout, 429 rate limited (``Retry-After`` header, or
  ``metadata.retry_after_seconds``), 502/503 model or provider down;
* forecast answers (:func:`parse_forecast_answer`): the model's JSON object, found tolerantly —
  bare, in a Markdown fence, or inside prose — and normalised; anything else raises
  :class:`AnswerParseError` with a short reason.

Parsers never raise anything but :class:`OpenRouterError` / :class:`AnswerParseError`
(both ``ValueError``) on bad input.
"""

from __future__ import annotations

import enum
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import orjson

#: Path of the chat-completions endpoint below the base URL (``.../api/v1``).
CHAT_COMPLETIONS_PATH = "/chat/completions"
#: Our name in OpenRouter's app attribution.
APP_TITLE = "Polymarket Insights"
#: ``json_schema.name`` of the structured output we ask for.
SCHEMA_NAME = "market_forecast"
#: Longest ``reasoning`` kept from an answer (characters).
MAX_REASONING_CHARS = 1000

#: The JSON schema of one forecast answer (strict mode: every property required, no others).
FORECAST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "outcome": {"type": "string", "description": "the outcome you expect: one of the market's outcome labels"},
        "probability": {"type": "number",
                        "description": "probability, from 0 to 1, that the market resolves to its FIRST outcome"},
        "confidence": {"type": "number", "description": "how confident you are in this estimate, from 0 to 1"},
        "reasoning": {"type": "string", "description": "why, in at most three sentences"},
    },
    "required": ["outcome", "probability", "confidence", "reasoning"],
    "additionalProperties": False,
}


# -- requests -------------------------------------------------------------------------------------


def request_headers(api_key: str, *, app_url: str, app_title: str = APP_TITLE) -> dict[str, str]:
    """Headers of a chat-completions request: bearer key, JSON, app attribution."""
    return {
        "Authorization": f"Bearer {api_key}",
        "Content-Type": "application/json",
        "HTTP-Referer": app_url,
        "X-OpenRouter-Title": app_title,
        "X-Title": app_title,
    }


def chat_request_body(
    model: str,
    messages: Sequence[tuple[str, str]],
    *,
    max_tokens: int,
    temperature: float,
    structured: bool = True,
) -> dict[str, Any]:
    """The JSON body of one non-streaming chat completion.

    ``messages`` are ``(role, content)`` pairs.  With ``structured`` the answer is asked for as
    JSON matching :data:`FORECAST_SCHEMA` (``response_format`` of type ``json_schema``, strict).
    """
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": role, "content": content} for role, content in messages],
        "max_tokens": int(max_tokens),
        "temperature": float(temperature),
        "stream": False,
    }
    if structured:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": SCHEMA_NAME, "strict": True, "schema": FORECAST_SCHEMA},
        }
    return body


def encode_body(body: Mapping[str, Any]) -> bytes:
    return orjson.dumps(body)


# -- failures -------------------------------------------------------------------------------------


class FailureKind(enum.Enum):
    """Why a call did not produce an answer (values are the reasons recorded and counted)."""

    #: HTTP 429: wait ``Retry-After``, then retry.
    RATE_LIMITED = "rate_limited"
    #: 5xx, 408, or an ``error`` object inside a 200: retry with backoff.
    SERVER_ERROR = "server_error"
    #: No answer within the per-model timeout: retry with backoff.
    TIMEOUT = "timeout"
    #: The connection failed: retry with backoff.
    TRANSPORT = "transport"
    #: A 200 whose body is not a chat completion: retry with backoff.
    BAD_RESPONSE = "bad_response"
    #: HTTP 401: the key is wrong or disabled (pauses every model).
    UNAUTHORIZED = "unauthorized"
    #: HTTP 402: no credits left (pauses every model).
    NO_CREDITS = "no_credits"
    #: HTTP 404: no such model, or no endpoint serves it (pauses that model).
    UNKNOWN_MODEL = "unknown_model"
    #: HTTP 403: the input was flagged by moderation.
    MODERATION = "moderation"
    #: Any other 4xx: this request is wrong; not retried.
    BAD_REQUEST = "bad_request"


_RETRYABLE = frozenset({FailureKind.RATE_LIMITED, FailureKind.SERVER_ERROR, FailureKind.TIMEOUT,
                        FailureKind.TRANSPORT, FailureKind.BAD_RESPONSE})


@attrs.frozen
class CallFailure:
    """One failed call, classified.

    Attributes:
        kind: What went wrong.
        message: A short human-readable reason (the server's message when it gave one).
        status: The HTTP status, if there was a response.
        retry_after: Seconds the server asked us to wait (``metadata.retry_after_seconds``);
            the ``Retry-After`` header is read by the caller.
    """

    kind: FailureKind
    message: str
    status: int | None = None
    retry_after: float | None = None

    @property
    def retryable(self) -> bool:
        return self.kind in _RETRYABLE

    @property
    def pauses(self) -> str | None:
        """``"key"`` (every model), ``"model"`` (this model) or None: what a cool-down applies to."""
        if self.kind in (FailureKind.UNAUTHORIZED, FailureKind.NO_CREDITS):
            return "key"
        if self.kind is FailureKind.UNKNOWN_MODEL:
            return "model"
        return None

    def describe(self) -> str:
        """``"rate_limited (HTTP 429: slow down)"``."""
        status = f"HTTP {self.status}: " if self.status is not None else ""
        return f"{self.kind.value} ({status}{self.message})" if self.message or status else self.kind.value


class OpenRouterError(ValueError):
    """A response that is an error or not a chat completion; ``failure`` says which."""

    def __init__(self, failure: CallFailure) -> None:
        super().__init__(failure.describe())
        self.failure = failure


def kind_for_status(status: int) -> FailureKind:
    if status == 429:
        return FailureKind.RATE_LIMITED
    if status == 401:
        return FailureKind.UNAUTHORIZED
    if status == 402:
        return FailureKind.NO_CREDITS
    if status == 404:
        return FailureKind.UNKNOWN_MODEL
    if status == 403:
        return FailureKind.MODERATION
    if status == 408 or status >= 500:
        return FailureKind.SERVER_ERROR
    return FailureKind.BAD_REQUEST


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _loads(body: bytes | str) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def classify_error(status: int, body: bytes | str) -> CallFailure:
    """Classify a non-2xx answer (or the ``error`` object of a 200) from its status and body."""
    data = _loads(body)
    error = data.get("error") if isinstance(data, dict) else None
    message = ""
    retry_after: float | None = None
    if isinstance(error, dict):
        if isinstance(error.get("message"), str):
            message = error["message"]
        metadata = error.get("metadata")
        if isinstance(metadata, dict):
            retry_after = _seconds(metadata.get("retry_after_seconds"))
            headers = metadata.get("headers")
            if retry_after is None and isinstance(headers, dict):
                retry_after = _seconds(headers.get("Retry-After") or headers.get("retry-after"))
            raw = metadata.get("raw")
            if isinstance(raw, str) and raw and raw not in message:
                message = f"{message}: {raw}" if message else raw
    elif isinstance(error, str):
        message = error
    elif data is None:
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        message = text.strip()
    return CallFailure(kind_for_status(status), _short(message), status, retry_after)


def _seconds(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        try:
            seconds = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


# -- responses ------------------------------------------------------------------------------------


@attrs.frozen
class Usage:
    """``usage`` of one completion; None where the server did not say."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    #: What the call cost, in USD (OpenRouter credits); None when the server does not report it.
    cost: float | None = None
    #: Prompt tokens read from the provider's cache.
    cached_tokens: int | None = None


@attrs.frozen
class ChatCompletion:
    """The parts of a chat completion we use."""

    id: str
    #: The model that answered (OpenRouter may name a variant of the one asked for).
    model: str
    content: str
    finish_reason: str | None
    usage: Usage
    provider: str | None = None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float) and math.isfinite(value) and value >= 0:
        return int(value)
    return None


def parse_usage(value: Any) -> Usage:
    if not isinstance(value, dict):
        return Usage()
    cost = value.get("cost")
    cost_usd = float(cost) if isinstance(cost, (int, float)) and not isinstance(cost, bool) else None
    if cost_usd is not None and not (math.isfinite(cost_usd) and cost_usd >= 0):
        cost_usd = None
    details = value.get("prompt_tokens_details")
    cached = _int(details.get("cached_tokens")) if isinstance(details, dict) else None
    return Usage(_int(value.get("prompt_tokens")), _int(value.get("completion_tokens")),
                 _int(value.get("total_tokens")), cost_usd, cached)


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}, ...]
        return "".join(part.get("text", "") for part in content
                       if isinstance(part, dict) and isinstance(part.get("text"), str))
    return ""


def parse_chat_response(body: bytes | str, *, status: int = 200) -> ChatCompletion:
    """A 2xx body → :class:`ChatCompletion`.

    Raises:
        OpenRouterError: the body is not JSON or not a chat completion (``bad_response``), or
            carries an ``error`` object (classified by its ``code``), or its only choice ended with
            ``finish_reason: "error"`` (``server_error``).
    """
    data = _loads(body)
    if not isinstance(data, dict):
        raise OpenRouterError(CallFailure(FailureKind.BAD_RESPONSE, "the body is not a JSON object", status))
    error = data.get("error")
    if error is not None and not data.get("choices"):
        code = error.get("code") if isinstance(error, dict) else None
        code = code if isinstance(code, int) and not isinstance(code, bool) and 400 <= code <= 599 else 502
        failure = classify_error(code, body)
        raise OpenRouterError(attrs.evolve(failure, status=status, message=failure.message or f"error code {code}"))
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise OpenRouterError(CallFailure(FailureKind.BAD_RESPONSE, "no choices in the completion", status))
    choice = choices[0]
    finish = choice.get("finish_reason") if isinstance(choice.get("finish_reason"), str) else None
    message = choice.get("message")
    content = _content_text(message.get("content")) if isinstance(message, dict) else ""
    if finish == "error":
        raise OpenRouterError(CallFailure(FailureKind.SERVER_ERROR, "the model stopped with an error", status))
    model = data.get("model")
    provider = data.get("provider")
    return ChatCompletion(
        id=str(data.get("id") or ""), model=model if isinstance(model, str) else "", content=content,
        finish_reason=finish, usage=parse_usage(data.get("usage")),
        provider=provider if isinstance(provider, str) else None)


# -- forecast answers -----------------------------------------------------------------------------


class AnswerParseError(ValueError):
    """The model's answer holds no usable forecast; ``reason`` says why (short, for storage)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@attrs.frozen
class ForecastAnswer:
    """One model's forecast, normalised.

    Attributes:
        outcome: The outcome the model votes for, as the market labels it.  On a two-outcome
            market this is the outcome its probability favours (``probability > 0.5`` → the
            first); only at exactly 0.5 does the stated label decide.
        probability: Probability that the market resolves to its first outcome (YES), 0..1.
        confidence: The model's own confidence in its estimate, 0..1; None if it gave none.
        reasoning: Its short explanation (at most :data:`MAX_REASONING_CHARS`).
        stated_outcome: The label as the model wrote it ("" if none).
    """

    outcome: str
    probability: float
    confidence: float | None
    reasoning: str
    stated_outcome: str = ""


_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_-]*)[ \t]*\r?\n?(.*?)```", re.DOTALL)
_PROBABILITY_KEYS = ("probability", "prob", "p_yes", "probability_yes", "yes_probability", "p")
_OUTCOME_KEYS = ("outcome", "prediction", "answer", "forecast", "vote")
_CONFIDENCE_KEYS = ("confidence", "certainty")
_REASONING_KEYS = ("reasoning", "rationale", "explanation", "reason")
_CONFIDENCE_WORDS = {"very high": 0.9, "high": 0.8, "medium": 0.5, "moderate": 0.5, "low": 0.2, "very low": 0.1}


def _candidates(text: str) -> list[Any]:
    """JSON objects in ``text``, most likely first: the whole text, fenced blocks, then every
    ``{`` that starts a decodable object (prose around JSON)."""
    found: list[Any] = []
    stripped = text.strip()
    try:
        found.append(json.loads(stripped))
    except ValueError:
        pass
    for match in _FENCE.finditer(text):
        try:
            found.append(json.loads(match.group(2).strip()))
        except ValueError:
            pass
    decoder = json.JSONDecoder()
    position = text.find("{")
    tries = 0
    while position != -1 and tries < 200:
        tries += 1
        try:
            value, end = decoder.raw_decode(text, position)
        except ValueError:
            position = text.find("{", position + 1)
            continue
        found.append(value)
        position = text.find("{", end)
    return found


def _lowered(obj: dict[Any, Any]) -> dict[str, Any]:
    return {str(k).strip().lower(): v for k, v in obj.items()}


def _pick(obj: dict[str, Any], keys: Sequence[str]) -> Any:
    for key in keys:
        if key in obj and obj[key] is not None:
            return obj[key]
    return None


def _unit_number(value: Any, what: str, *, words: Mapping[str, float] | None = None) -> float:
    """A 0..1 number from a number, ``"0.7"``, ``"70%"`` or ``70`` (2..100 is read as a percentage)."""
    percent = False
    if isinstance(value, bool):
        raise AnswerParseError(f"{what} is not a number: {value!r}")
    if isinstance(value, str):
        text = value.strip().lower()
        if words is not None and text in words:
            return words[text]
        if text.endswith("%"):
            percent, text = True, text[:-1].strip()
        try:
            number = float(text)
        except ValueError:
            raise AnswerParseError(f"{what} is not a number: {_short(value, 40)!r}") from None
    elif isinstance(value, (int, float)):
        number = float(value)
    else:
        raise AnswerParseError(f"{what} is not a number: {_short(repr(value), 40)}")
    if not math.isfinite(number):
        raise AnswerParseError(f"{what} is not finite")
    if percent or 2.0 <= number <= 100.0:  # 70 means 70 %; 1.7 is a mistake, not 1.7 %
        number /= 100.0
    if not 0.0 <= number <= 1.0:
        raise AnswerParseError(f"{what} {number:g} is outside 0..1")
    return number


def _match_outcome(stated: str, outcomes: Sequence[str]) -> str | None:
    wanted = stated.strip().strip(".").casefold()
    for label in outcomes:
        if label.casefold() == wanted:
            return label
    if len(outcomes) == 2:
        if wanted in ("yes", "true", "y"):
            return outcomes[0]
        if wanted in ("no", "false", "n"):
            return outcomes[1]
    return None


def _forecast_from(obj: dict[str, Any], outcomes: Sequence[str]) -> ForecastAnswer:
    raw_probability = _pick(obj, _PROBABILITY_KEYS)
    if raw_probability is None:
        raise AnswerParseError("the answer has no probability")
    probability = _unit_number(raw_probability, "probability")
    confidence: float | None
    raw_confidence = _pick(obj, _CONFIDENCE_KEYS)
    try:
        confidence = None if raw_confidence is None else _unit_number(raw_confidence, "confidence",
                                                                       words=_CONFIDENCE_WORDS)
    except AnswerParseError:
        confidence = None  # a garbled confidence does not spoil the forecast
    stated_value = _pick(obj, _OUTCOME_KEYS)
    stated = stated_value.strip() if isinstance(stated_value, str) else ""
    label = _match_outcome(stated, outcomes) if stated else None
    if len(outcomes) == 2 and probability != 0.5:
        outcome = outcomes[0] if probability > 0.5 else outcomes[1]
    elif label is not None:
        outcome = label
    elif outcomes:
        outcome = outcomes[0] if probability >= 0.5 else (outcomes[1] if len(outcomes) > 1 else outcomes[0])
    else:
        outcome = stated
    reasoning_value = _pick(obj, _REASONING_KEYS)
    reasoning = reasoning_value if isinstance(reasoning_value, str) else ""
    reasoning = reasoning.strip()[:MAX_REASONING_CHARS]
    return ForecastAnswer(outcome, probability, confidence, reasoning, stated)


def parse_forecast_answer(text: str, outcomes: Sequence[str] = ("Yes", "No")) -> ForecastAnswer:
    """The forecast in a model's answer ``text`` for a market with ``outcomes``.

    Accepts the JSON object bare, in a Markdown fence, or inside prose; keys are matched without
    regard to case, with a few common aliases (``prob``, ``prediction``, ``rationale``, ...);
    numbers may be strings or percentages (``"70%"``, ``70``).

    Raises:
        AnswerParseError: empty answer, no JSON object, no probability, or a probability that is
            not a number within 0..1 (``reason`` says which).
    """
    if not text or not text.strip():
        raise AnswerParseError("empty answer")
    objects = [_lowered(o) for o in _candidates(text) if isinstance(o, dict)]
    if not objects:
        raise AnswerParseError(f"no JSON object in the answer: {_short(text, 80)!r}")
    first_error: AnswerParseError | None = None
    for obj in objects:
        try:
            return _forecast_from(obj, outcomes)
        except AnswerParseError as exc:
            first_error = first_error or exc
    assert first_error is not None
    raise first_error


def answer_json(probability: float, outcome: str, confidence: float, reasoning: str) -> str:
    """A well-formed answer (what a model is asked to write; fakes and docs use it)."""
    return json.dumps({"outcome": outcome, "probability": probability, "confidence": confidence,
                       "reasoning": reasoning}, ensure_ascii=False)


__all__ = [
    "APP_TITLE", "CHAT_COMPLETIONS_PATH", "FORECAST_SCHEMA", "MAX_REASONING_CHARS", "SCHEMA_NAME",
    "AnswerParseError", "CallFailure", "ChatCompletion", "FailureKind", "ForecastAnswer", "OpenRouterError",
    "Usage", "answer_json", "chat_request_body", "classify_error", "encode_body", "kind_for_status",
    "parse_chat_response", "parse_forecast_answer", "parse_usage", "request_headers",
]
