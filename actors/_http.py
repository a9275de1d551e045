"""One way to call an upstream REST API: timeouts, 429 with Retry-After, bounded retries."""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping
from typing import Any

import attrs
import httpx
import trio
from loguru import logger

from supervision import Backoff


class UpstreamError(Exception):
    """A REST call failed for good (after its retries, or with a status not worth retrying)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def retry_after_seconds(value: str | None, *, now: float | None = None, cap: float = 300.0) -> float | None:
    """Parse a ``Retry-After`` header (seconds or an HTTP date); None when absent or garbage."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - (now if now is not None else time.time())
    if seconds != seconds:  # NaN
        return None
    return min(cap, max(0.0, seconds))


@attrs.frozen
class RetryPolicy:
    """How often and how patiently to retry one request."""

    attempts: int = 5
    backoff: Backoff = Backoff(min=1.0, max=30.0, factor=2.0, jitter=0.2)
    timeout: float = 20.0


@attrs.define
class HttpStats:
    requests_total: int = 0
    retries_total: int = 0
    rate_limited_total: int = 0
    failures_total: int = 0


async def get_with_retry(
    client: httpx.AsyncClient,
    path: str,
    params: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
    *,
    policy: RetryPolicy = RetryPolicy(),
    stats: HttpStats | None = None,
    rng: random.Random | None = None,
    what: str = "request",
) -> httpx.Response:
    """GET ``path`` and return a 2xx response.

    429 waits for ``Retry-After`` (or the backoff when absent); 5xx, timeouts and transport
    errors retry with backoff; other 4xx fail at once.  Time comes from trio, so MockClock
    drives the waits.

    Raises:
        UpstreamError: no 2xx answer within ``policy.attempts`` tries, or a 4xx other than 429.
    """
    stats = stats if stats is not None else HttpStats()
    rng = rng if rng is not None else random.Random()
    last: str = ""
    for attempt in range(policy.attempts):
        stats.requests_total += 1
        wait: float | None = None
        try:
            with trio.fail_after(policy.timeout):
                response = await client.get(path, params=params)
        except (httpx.TransportError, trio.TooSlowError) as exc:
            last = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            status: int | None = None
        else:
            status = response.status_code
            if 200 <= status < 300:
                return response
            last = f"HTTP {status}"
            if status == 429:
                stats.rate_limited_total += 1
                wait = retry_after_seconds(response.headers.get("retry-after"))
            elif status < 500:
                stats.failures_total += 1
                raise UpstreamError(f"{what}: {last} for {path}: {response.text[:200]}", status)
        if attempt + 1 == policy.attempts:
            break
        delay = wait if wait is not None else policy.backoff.delay(attempt, rng)
        stats.retries_total += 1
        logger.bind(actor=what).warning("{what}: {err}; retrying in {d:.1f} s", what=what, err=last, d=delay)
        await trio.sleep(delay)
    stats.failures_total += 1
    raise UpstreamError(f"{what}: gave up after {policy.attempts} tries ({last})")
