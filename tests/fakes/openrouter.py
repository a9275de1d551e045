"""A fake OpenRouter: ``POST /api/v1/chat/completions`` over loopback, scripted per model.

Real HTTP/1.1 on 127.0.0.1 (hypercorn's trio worker, via :class:`tests.fakes._http.FakeHttpServer`),
speaking the chat-completions format OpenRouter documents: a completion with ``choices`` and
``usage`` (``prompt_tokens``, ``completion_tokens``, ``total_tokens``, ``cost`` in USD, token
details), and errors as ``{"error": {"code", "message", "metadata"?}}`` with the same HTTP status.

It checks every request the way the real server would need it — path, method, bearer key,
JSON content type, attribution headers, body shape (``model``, ``messages`` of role/content,
``max_tokens``, ``temperature``, ``response_format`` of type ``json_schema``) — answers a bad one
with 400 and records the problem in :attr:`FakeOpenRouter.format_errors` (tests assert it stays
empty).  Every request is recorded in :attr:`FakeOpenRouter.calls`.

Behaviour is scripted per model with :meth:`FakeOpenRouter.script` (a queue of replies used
in turn, then the model's default): :func:`good`, :func:`fenced`, :func:`prose`, :func:`garbage`,
:func:`slow`, :func:`rate_limited` (429 with ``Retry-After``), :func:`server_error` (500),
:func:`unauthorized` (401), :func:`no_credits` (402), :func:`error_in_body` (200 with an
``error`` object).  A model not in :attr:`FakeOpenRouter.models` gets 404 "No endpoints found",
a wrong or missing key 401.  Delays use ``trio.sleep`` (a MockClock drives them).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import orjson
import trio

from protocols.openrouter import answer_json

from ._http import FakeHttpServer, Response, _send, read_body

DEFAULT_MODELS = ("openai/gpt-4o-mini", "anthropic/claude-3.5-haiku", "google/gemini-2.0-flash-exp")
DEFAULT_KEY = "sk-or-v1-fake-test-key-0123456789"
PATH = "/api/v1/chat/completions"
_SCHEMA_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@attrs.frozen
class Reply:
    """One scripted answer to one request.

    ``style``: ``json`` (the object alone), ``fenced`` (in a Markdown ```json fence), ``prose``
    (sentences around the object), ``garbage`` (no JSON at all), ``empty`` (no content),
    ``error_in_body`` (HTTP 200 with an ``error`` object, as OpenRouter does when the model fails
    after the request was accepted).  A ``status`` other than 200 answers with the error shape.
    """

    probability: float = 0.7
    outcome: str | None = None
    confidence: float = 0.6
    reasoning: str = "Base rates and the resolution rules point this way."
    style: str = "json"
    delay: float = 0.0
    status: int = 200
    retry_after: float | int | str | None = None
    message: str | None = None
    metadata: dict[str, Any] | None = None
    cost: float | None = 0.00021
    prompt_tokens: int = 412
    completion_tokens: int = 64
    text: str | None = None  # verbatim content (overrides style)

    def content(self) -> str:
        if self.text is not None:
            return self.text
        outcome = self.outcome if self.outcome is not None else ("Yes" if self.probability >= 0.5 else "No")
        obj = answer_json(self.probability, outcome, self.confidence, self.reasoning)
        if self.style == "json":
            return obj
        if self.style == "fenced":
            return f"Here is my forecast:\n```json\n{obj}\n```\n"
        if self.style == "prose":
            return f"Considering the candidates and the committee's record, my answer is {obj}. I hope this helps."
        if self.style == "garbage":
            return "I cannot predict the future, but it is an interesting question. Probability: who knows?"
        if self.style == "empty":
            return ""
        raise ValueError(f"unknown reply style {self.style!r}")


def good(probability: float = 0.7, confidence: float = 0.6, **kw: Any) -> Reply:
    return Reply(probability=probability, confidence=confidence, **kw)


def fenced(probability: float = 0.7, **kw: Any) -> Reply:
    return Reply(probability=probability, style="fenced", **kw)


def prose(probability: float = 0.7, **kw: Any) -> Reply:
    return Reply(probability=probability, style="prose", **kw)


def garbage(**kw: Any) -> Reply:
    return Reply(style="garbage", **kw)


def slow(seconds: float, probability: float = 0.7, **kw: Any) -> Reply:
    return Reply(probability=probability, delay=seconds, **kw)


def rate_limited(retry_after: float | int | str | None = 7, **kw: Any) -> Reply:
    return Reply(status=429, retry_after=retry_after, message="Rate limit exceeded: slow down", **kw)


def server_error(status: int = 500, **kw: Any) -> Reply:
    return Reply(status=status, message="Internal Server Error", **kw)


def unauthorized(**kw: Any) -> Reply:
    return Reply(status=401, message="User not found.", **kw)


def no_credits(**kw: Any) -> Reply:
    return Reply(status=402, message="Insufficient credits. Add more using https://openrouter.ai/credits",
                 metadata={"limit_source": "openrouter_credits"}, **kw)


def error_in_body(code: int = 502, **kw: Any) -> Reply:
    return Reply(style="error_in_body", status=200, message="Provider returned error",
                 metadata={"provider_name": "Fake", "raw": "upstream timed out", "code": code}, **kw)


@attrs.frozen
class RecordedCall:
    """One request to the chat-completions endpoint, as received."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at: float  # trio time
    status: int = 0  # what it was answered with

    @property
    def model(self) -> str:
        return self.body.get("model", "") if isinstance(self.body, dict) else ""

    @property
    def structured(self) -> bool:
        return isinstance(self.body, dict) and "response_format" in self.body

    def user_prompt(self) -> str:
        messages = self.body.get("messages", []) if isinstance(self.body, dict) else []
        return "\n".join(m.get("content", "") for m in messages if isinstance(m, dict) and m.get("role") == "user")


class FakeOpenRouter(FakeHttpServer):
    """OpenRouter's chat completions, scripted per model (see the module docstring)."""

    name = "openrouter"

    def __init__(self, *, api_key: str = DEFAULT_KEY, models: Iterable[str] = DEFAULT_MODELS) -> None:
        super().__init__()
        self.api_key = api_key
        #: Models the server knows; others get 404.
        self.models: set[str] = set(models)
        #: Every chat-completions request, in arrival order (also the rejected ones).
        self.calls: list[RecordedCall] = []
        #: Problems found in requests' format (should stay empty).
        self.format_errors: list[str] = []
        #: Models that answer a ``response_format`` request with 400 (no structured output).
        self.reject_structured: set[str] = set()
        #: The reply used when a model has nothing scripted (per model, then :attr:`default`).
        self.defaults: dict[str, Reply] = {}
        self.default: Reply | Callable[[RecordedCall], Reply] = Reply()
        self._scripts: dict[str, list[Reply]] = {}
        self.in_flight = 0

    @property
    def base_url(self) -> str:
        """What ``OPENROUTER_BASE_URL`` should be."""
        return f"{self.url}/api/v1"

    def script(self, model: str, *replies: Reply) -> None:
        """Answer ``model``'s next requests with ``replies``, in order (then its default)."""
        self._scripts.setdefault(model, []).extend(replies)

    def calls_for(self, model: str) -> list[RecordedCall]:
        return [c for c in self.calls if c.model == model]

    def pending_script(self, model: str) -> int:
        return len(self._scripts.get(model, []))

    async def wait_calls(self, total: int, model: str | None = None) -> None:
        await self.wait_until(lambda: len(self.calls if model is None else self.calls_for(model)) >= total)

    # ------------------------------------------------------------------ request checks

    def _check(self, method: str, path: str, headers: dict[str, str], body: Any) -> list[str]:
        problems: list[str] = []
        if method != "POST":
            problems.append(f"method {method}, expected POST")
        if path != PATH:
            problems.append(f"path {path!r}, expected {PATH!r}")
        if "application/json" not in headers.get("content-type", ""):
            problems.append(f"content-type {headers.get('content-type')!r}, expected application/json")
        if not headers.get("http-referer"):
            problems.append("no HTTP-Referer attribution header")
        if not (headers.get("x-title") or headers.get("x-openrouter-title")):
            problems.append("no X-Title / X-OpenRouter-Title attribution header")
        if not isinstance(body, dict):
            return [*problems, "the body is not a JSON object"]
        if not isinstance(body.get("model"), str) or not body["model"]:
            problems.append("model missing")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            problems.append("messages missing or empty")
        else:
            for m in messages:
                if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant") \
                        or not isinstance(m.get("content"), str) or not m["content"].strip():
                    problems.append(f"bad message {str(m)[:80]}")
        max_tokens = body.get("max_tokens")
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            problems.append(f"max_tokens {max_tokens!r}, expected a positive integer")
        temperature = body.get("temperature")
        if not isinstance(temperature, (int, float)) or not 0 <= temperature <= 2:
            problems.append(f"temperature {temperature!r}, expected 0..2")
        if body.get("stream"):
            problems.append("stream requested (the client reads one JSON body)")
        if "response_format" in body:
            rf = body["response_format"]
            js = rf.get("json_schema") if isinstance(rf, dict) else None
            if not isinstance(rf, dict) or rf.get("type") != "json_schema" or not isinstance(js, dict) \
                    or not isinstance(js.get("name"), str) or not _SCHEMA_NAME.match(js["name"]) \
                    or not isinstance(js.get("schema"), dict) or js["schema"].get("type") != "object":
                problems.append(f"bad response_format {str(rf)[:120]}")
        return problems

    # ------------------------------------------------------------------ answers

    def _error(self, status: int, message: str, *, retry_after: Any = None,
               metadata: dict[str, Any] | None = None) -> Response:
        error: dict[str, Any] = {"code": status, "message": message}
        if metadata:
            error["metadata"] = metadata
        headers = {"retry-after": str(retry_after)} if retry_after is not None else {}
        return Response(status, {"error": error, "user_id": "user_fake"}, headers)

    def _completion(self, model: str, reply: Reply) -> Response:
        content = reply.content()
        usage: dict[str, Any] = {
            "prompt_tokens": reply.prompt_tokens, "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        }
        if reply.cost is not None:
            usage["cost"] = reply.cost
            usage["is_byok"] = False
            usage["cost_details"] = {"upstream_inference_cost": None}
        n = len(self.calls)
        return Response(200, {
            "id": f"gen-{n:08d}-fake", "provider": "Fake", "model": model, "object": "chat.completion",
            "created": 1_760_000_000 + n, "system_fingerprint": None,
            "choices": [{"logprobs": None, "finish_reason": "stop", "native_finish_reason": "stop", "index": 0,
                         "message": {"role": "assistant", "content": content, "refusal": None,
                                     "reasoning": None}}],
            "usage": usage,
        })

    def _reply_for(self, call: RecordedCall) -> Reply:
        queue = self._scripts.get(call.model)
        if queue:
            return queue.pop(0)
        if call.model in self.defaults:
            return self.defaults[call.model]
        return self.default(call) if callable(self.default) else self.default

    async def _answer(self, call: RecordedCall) -> Response:
        problems = self._check(call.method, call.path, call.headers, call.body)
        auth = call.headers.get("authorization", "")
        if call.path != PATH:
            return self._error(404, "Not Found")
        if not auth.startswith("Bearer "):
            self.format_errors.append("no bearer Authorization header")
            return self._error(401, "No auth credentials found")
        if auth != f"Bearer {self.api_key}":
            return self._error(401, "User not found.")
        if problems:
            self.format_errors.extend(problems)
            return self._error(400, "; ".join(problems))
        model = call.model
        if model not in self.models:
            return self._error(404, f"No endpoints found for {model}.")
        if call.structured and model in self.reject_structured:
            return self._error(400, "Provider returned error", metadata={
                "raw": "response_format json_schema is not supported by this model"})
        reply = self._reply_for(call)
        if reply.delay > 0:
            await trio.sleep(reply.delay)
        if reply.style == "error_in_body":
            return Response(200, {"error": {"code": (reply.metadata or {}).get("code", 502),
                                            "message": reply.message or "Provider returned error",
                                            "metadata": reply.metadata or {}}, "user_id": "user_fake"})
        if reply.status != 200:
            return self._error(reply.status, reply.message or f"HTTP {reply.status}", retry_after=reply.retry_after,
                               metadata=reply.metadata)
        return self._completion(model, reply)

    async def _asgi(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            await super()._asgi(scope, receive, send)
            return
        raw = await read_body(receive)
        if raw is None:
            return  # the client went away
        try:
            body: Any = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = raw.decode("utf-8", "replace")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        call = RecordedCall(scope["method"], scope["path"], headers, body, trio.current_time())
        index = len(self.calls)
        self.calls.append(call)
        self._notify()
        self.in_flight += 1
        try:
            fault = self._take_fault(scope["path"])
            if fault is not None and fault.kind == "status":
                response = self._error(fault.status, "injected fault", retry_after=fault.retry_after)
            else:
                response = await self._answer(call)
        finally:
            self.in_flight -= 1
        self.calls[index] = attrs.evolve(call, status=response.status)
        self._notify()
        await _send(send, response)


@asynccontextmanager
async def open_fake_openrouter(**kwargs: Any) -> AsyncIterator[FakeOpenRouter]:
    """Start the fake on 127.0.0.1 (a free port) and stop it on exit."""
    server = FakeOpenRouter(**kwargs)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run)
        try:
            yield server
        finally:
            nursery.cancel_scope.cancel()


__all__ = [
    "DEFAULT_KEY", "DEFAULT_MODELS", "FakeOpenRouter", "RecordedCall", "Reply", "error_in_body", "fenced",
    "garbage", "good", "no_credits", "open_fake_openrouter", "prose", "rate_limited", "server_error", "slow",
    "unauthorized",
]
