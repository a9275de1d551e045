"""Predictor actor: one per model; asks it for a forecast of each market it is sent.

``POST {OPENROUTER_BASE_URL}/chat/completions`` with httpx on trio (the wire format lives in
:mod:`protocols.openrouter`), then one :class:`ModelForecast` per request — an answer, or a
failure with its reason — to the swarm aggregator, and its ``model_forecasts`` row to the DB writer.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import attrs
import httpx
import trio

from protocols.openrouter import (
    CHAT_COMPLETIONS_PATH,
    AnswerParseError,
    CallFailure,
    ChatCompletion,
    FailureKind,
    OpenRouterError,
    chat_request_body,
    classify_error,
    encode_body,
    parse_chat_response,
    parse_forecast_answer,
    request_headers,
)
from supervision import ActorContext, Backoff, deliver

from .._http import retry_after_seconds
from ._messages import ForecastRequest, ModelForecast
from ._stats import AiStats, ModelStats

HttpClientFactory = Callable[[str], httpx.AsyncClient]

#: Longest wait a ``Retry-After`` may impose on one retry (seconds).
MAX_RETRY_AFTER = 300.0


@attrs.frozen
class PredictorConfig:
    """One model's call settings.

    Attributes:
        timeout: Per-call limit (``AI_MODEL_TIMEOUT_SECONDS``).
        attempts: Calls at most per forecast (the first and its retries) for 429, 5xx, timeouts,
            transport errors and malformed completions.
        backoff: Delay between retries when the server gave no ``Retry-After``.
        pause_seconds: Cool-down after 401/402 (every model) or 404 (this model); 0: none.
        assumed_usd_per_million_tokens: Cost of a call whose answer reports none.
    """

    model: str
    base_url: str
    api_key: str = attrs.field(repr=False)
    app_url: str = "http://localhost"
    max_tokens: int = 500
    temperature: float = 0.2
    timeout: float = 60.0
    attempts: int = 4
    backoff: Backoff = Backoff(min=2.0, max=60.0, factor=2.0, jitter=0.2)
    pause_seconds: float = 1800.0
    assumed_usd_per_million_tokens: float = 5.0


def _estimate_tokens(text: str) -> int:
    return max(1, len(text) // 4)


def predictor_actor(
    config: PredictorConfig,
    stats: AiStats,
    *,
    results: trio.MemorySendChannel[ModelForecast],
    store: trio.MemorySendChannel[Any] | None,
    http_client: HttpClientFactory,
    wall_clock: Callable[[], float] = time.time,
    rng: random.Random | None = None,
) -> Callable[..., Any]:
    """The predictor's actor body; its inbox takes :class:`ForecastRequest` for its model.

    For each request: one chat completion (``max_tokens``, ``temperature``, and a
    ``json_schema`` response format unless the model refused one — then it is asked again
    without, and never again with), the answer parsed tolerantly, and the resulting
    :class:`ModelForecast` stored (``store``) and sent to the aggregator (``results``).  Tokens,
    latency and cost (``usage.cost``, else estimated from tokens) go into ``stats``.

    Errors: a 429 waits for ``Retry-After`` (header, else the body's
    ``metadata.retry_after_seconds``, else the backoff); 5xx, 408, timeouts (``timeout`` per call),
    transport errors and malformed completions retry with backoff, ``attempts`` calls at most; a
    retry that could not finish before the round's deadline is not made.  401 (bad key) and 402
    (no credits) pause every model, 404 (unknown model) pauses this one, for ``pause_seconds``;
    each pause is logged once, and requests for a paused model fail at once without a call.
    Other 4xx and unparseable answers fail that forecast.  None of these raises: each ends as a
    failed forecast with its reason.

    Cancellation and restarts: a request whose call was interrupted (the actor killed or
    restarted mid-call) is redelivered by the inbox to the next incarnation, which makes the call
    again — so the round still gets this model's answer; the row is keyed by ``request_id`` and
    the aggregator keeps one answer per model.  Work past the round's deadline is abandoned.  On
    a graceful stop the call in progress is abandoned.
    """
    rng = rng if rng is not None else random.Random()
    model_stats: ModelStats = stats.model(config.model)
    headers = request_headers(config.api_key, app_url=config.app_url)

    def pause(ctx: ActorContext, failure: CallFailure) -> None:
        if config.pause_seconds <= 0:
            return
        now = trio.current_time()
        until = now + config.pause_seconds
        minutes = config.pause_seconds / 60
        if failure.pauses == "key":
            if stats.key_paused_until is None or now >= stats.key_paused_until:
                stats.key_paused_until, stats.key_pause_reason = until, failure.describe()
                what = "the API key was refused" if failure.kind is FailureKind.UNAUTHORIZED else "no credits left"
                ctx.log.error("AI: {what} ({reason}); every model paused for {m:g} min",
                              what=what, reason=failure.describe(), m=minutes)
        elif model_stats.paused_until is None or now >= model_stats.paused_until:
            model_stats.paused_until, model_stats.pause_reason = until, failure.describe()
            ctx.log.error("AI model {model}: {reason}; this model paused for {m:g} min",
                          model=config.model, reason=failure.describe(), m=minutes)

    def record_usage(completion: ChatCompletion, body: bytes) -> tuple[int, int, float]:
        usage = completion.usage
        prompt = usage.prompt_tokens if usage.prompt_tokens is not None else _estimate_tokens(body.decode())
        completion_tokens = (usage.completion_tokens if usage.completion_tokens is not None
                             else _estimate_tokens(completion.content))
        estimated = usage.cost is None
        cost = usage.cost if usage.cost is not None else \
            (prompt + completion_tokens) * config.assumed_usd_per_million_tokens / 1e6
        stats.prompt_tokens_total += prompt
        stats.completion_tokens_total += completion_tokens
        model_stats.prompt_tokens += prompt
        model_stats.completion_tokens += completion_tokens
        stats.record_cost(config.model, cost, wall_clock(), estimated=estimated)
        return prompt, completion_tokens, cost

    async def call(ctx: ActorContext, client: httpx.AsyncClient, request: ForecastRequest) -> ModelForecast:
        base = ModelForecast(request.request_id, request.forecast_id, request.condition_id, config.model, ok=False,
                             market_price=request.market_price)

        def failed(reason: str, **fields: Any) -> ModelForecast:
            return attrs.evolve(base, error=reason[:2000], created_at=wall_clock(), **fields)

        attempt = 0
        while True:
            paused = stats.paused_reason(config.model, trio.current_time())
            if paused is not None:
                return failed(f"paused ({paused})")
            attempt += 1
            structured = model_stats.structured_output
            body = encode_body(chat_request_body(config.model, request.messages, max_tokens=config.max_tokens,
                                                 temperature=config.temperature, structured=structured))
            stats.calls_total += 1
            model_stats.calls += 1
            started = trio.current_time()
            retry_after_header: str | None = None
            failure: CallFailure
            try:
                with trio.fail_after(config.timeout):
                    response = await client.post(CHAT_COMPLETIONS_PATH, content=body, headers=headers,
                                                 timeout=httpx.Timeout(config.timeout + 5.0))
            except trio.TooSlowError:
                failure = CallFailure(FailureKind.TIMEOUT, f"no answer within {config.timeout:g} s")
            except httpx.TimeoutException as exc:
                failure = CallFailure(FailureKind.TIMEOUT, type(exc).__name__)
            except httpx.TransportError as exc:
                failure = CallFailure(FailureKind.TRANSPORT, f"{type(exc).__name__}: {exc}"[:200])
            else:
                latency_ms = (trio.current_time() - started) * 1000.0
                model_stats.last_latency_ms = latency_ms
                status = response.status_code
                if 200 <= status < 300:
                    try:
                        completion = parse_chat_response(response.content, status=status)
                    except OpenRouterError as exc:
                        failure = exc.failure
                    else:
                        prompt, completion_tokens, cost = record_usage(completion, body)
                        usage = {"prompt_tokens": prompt, "completion_tokens": completion_tokens, "cost_usd": cost,
                                 "latency_ms": round(latency_ms, 1)}
                        try:
                            answer = parse_forecast_answer(completion.content, request.outcomes)
                        except AnswerParseError as exc:
                            stats.call_failures["unparseable"] += 1
                            model_stats.last_error = f"unparseable ({exc.reason})"
                            ctx.log.warning("AI model {model}: answer not usable: {reason}", model=config.model,
                                            reason=exc.reason)
                            return failed(f"unparseable ({exc.reason})", **usage)
                        return attrs.evolve(base, ok=True, outcome=answer.outcome, probability=answer.probability,
                                            confidence=answer.confidence, reasoning=answer.reasoning,
                                            created_at=wall_clock(), **usage)
                else:
                    failure = classify_error(status, response.content)
                    retry_after_header = response.headers.get("retry-after")
            stats.call_failures[failure.kind.value] += 1
            model_stats.last_error = failure.describe()
            if failure.kind is FailureKind.BAD_REQUEST and structured:
                model_stats.structured_output = False
                attempt -= 1
                ctx.log.warning("AI model {model}: request refused ({reason}); asking without a JSON schema from now on",
                                model=config.model, reason=failure.describe())
                continue
            if failure.pauses is not None:
                pause(ctx, failure)
                return failed(failure.describe())
            if not failure.retryable or attempt >= config.attempts:
                if failure.retryable:
                    ctx.log.warning("AI model {model}: {reason}; giving up after {n} calls", model=config.model,
                                    reason=failure.describe(), n=attempt)
                else:
                    ctx.log.warning("AI model {model}: {reason}", model=config.model, reason=failure.describe())
                return failed(failure.describe())
            wait: float | None = None
            if failure.kind is FailureKind.RATE_LIMITED:
                wait = retry_after_seconds(retry_after_header, now=wall_clock(), cap=MAX_RETRY_AFTER)
                if wait is None and failure.retry_after is not None:
                    wait = min(MAX_RETRY_AFTER, failure.retry_after)
            if wait is None:
                wait = config.backoff.delay(attempt - 1, rng)
            if trio.current_time() + wait >= request.deadline:
                ctx.log.warning("AI model {model}: {reason}; no retry: the analysis ends in {left:.0f} s",
                                model=config.model, reason=failure.describe(),
                                left=max(0.0, request.deadline - trio.current_time()))
                return failed(f"{failure.describe()}; no time left to retry")
            ctx.log.warning("AI model {model}: {reason}; retry {n} of {most} in {wait:.1f} s", model=config.model,
                            reason=failure.describe(), n=attempt, most=config.attempts - 1, wait=wait)
            await trio.sleep(wait)

    async def forecast(ctx: ActorContext, client: httpx.AsyncClient, request: ForecastRequest) -> ModelForecast:
        result: ModelForecast | None = None
        if trio.current_time() < request.deadline:
            with trio.move_on_at(request.deadline):
                result = await call(ctx, client, request)
        if result is None:
            result = ModelForecast(request.request_id, request.forecast_id, request.condition_id, config.model,
                                   ok=False, error="deadline (no answer before the analysis closed)",
                                   market_price=request.market_price, created_at=wall_clock())
        if result.ok:
            stats.forecasts_ok += 1
            model_stats.answers += 1
        else:
            stats.forecasts_failed[result.reason] += 1
            model_stats.failures[result.reason] += 1
        return result

    async def run(ctx: ActorContext, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        assert ctx.inbox is not None
        async with http_client(config.base_url) as client:
            task_status.started()
            with ctx.stop_scope():
                async for request in ctx.inbox:
                    result = await forecast(ctx, client, request)
                    if store is not None:
                        await deliver(store, result.to_row())
                    await deliver(results, result)

    return run
