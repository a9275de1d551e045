"""One alert outlet actor: rules, rate cap with digests, retries, pauses, delivery record."""

from __future__ import annotations

import collections
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import httpx
import orjson
import trio

from protocols.alerts import AlertMessage
from storage import AlertDeliveryRow
from supervision import ActorContext, Backoff, deliver

from .._ratelimit import LogThrottle
from ..directory import MarketDirectory
from ..hub import RingEntry
from ._config import OutletConfig
from ._feed import AlertFeed
from ._transport import target_for

#: Delivered alert keys remembered per outlet (the database holds them all).
_REMEMBERED = 100_000
#: The rate cap's window.
_WINDOW = 60.0


@attrs.define
class OutletStats:
    """One outlet's counters (``/status`` and metrics)."""

    name: str
    kind: str
    target: str
    sent: int = 0
    digests: int = 0
    folded: int = 0
    retried: int = 0
    undeliverable: int = 0
    overflow: int = 0
    skipped: collections.Counter[str] = attrs.field(factory=collections.Counter)
    already_delivered: int = 0
    pauses: int = 0
    paused: bool = False
    last_error: str | None = None
    last_sent_at: float | None = None

    def as_status(self) -> dict[str, Any]:
        data = attrs.asdict(self)
        data["skipped"] = dict(self.skipped)
        return data


@attrs.define
class OutletState:
    """What outlives the outlet actor's restarts: the queue, the alert in flight, the digest
    being gathered, the rate window and the keys already delivered."""

    config: OutletConfig
    feed: AlertFeed
    stats: OutletStats
    delivered: collections.OrderedDict[str, None] = attrs.field(factory=collections.OrderedDict)
    loaded: bool = False
    current: RingEntry | None = None
    folded: list[RingEntry] = attrs.field(factory=list)
    sent_times: collections.deque[float] = attrs.field(factory=collections.deque)
    paused_until: float | None = None

    @classmethod
    def create(cls, config: OutletConfig) -> OutletState:
        return cls(config, AlertFeed(config.rules.types, config.queue_size),
                   OutletStats(config.name, config.kind, config.describe()))

    def remember(self, key: str) -> None:
        self.delivered[key] = None
        if len(self.delivered) > _REMEMBERED:
            self.delivered.popitem(last=False)


LoadDelivered = Callable[[str], Awaitable[set[str]]]


def _message(entry: RingEntry) -> AlertMessage:
    return AlertMessage.from_frame(entry.key or "", entry.payload)


def outlet_actor(
    state: OutletState,
    *,
    directory: MarketDirectory,
    store: trio.MemorySendChannel[Any] | None,
    load_delivered: LoadDelivered | None = None,
    http_client: Callable[[], httpx.AsyncClient] = httpx.AsyncClient,
    wall_clock: Callable[[], float] = time.time,
    rng: random.Random | None = None,
    retry_backoff: Backoff = Backoff(min=1.0, max=60.0, factor=2.0, jitter=0.2),
    version: str = "0",
) -> Callable[..., Any]:
    """The body of one outlet's actor.

    For each broadcast from its :class:`AlertFeed`: skip it if this outlet delivered it already
    (its key is in the delivery record) or its rules say no; send it at once while fewer than
    ``max_per_minute`` messages went out in the last minute, else fold it into a digest sent
    when the window frees a slot.  A failed send retries (5xx, timeouts: ``retry_backoff``;
    429: the outlet's retry hint) up to ``max_attempts`` tries, then the alert is recorded
    undeliverable; 401/403/404 pause the outlet for ``cool_down`` seconds (logged once per
    pause) and the alert waits.  Every outcome is a row of the delivery record (via ``store``).

    Cancellation and restarts: the queue, the alert in flight and the digest being gathered
    live in ``state``; a killed outlet's next incarnation sends the alert in flight again (a
    webhook receiver recognises it by its ``Idempotency-Key``; chat APIs have no such key, so a
    kill in the instant between their accepting a message and our recording it can repeat that
    one message).  At start-up the keys already delivered are loaded with ``load_delivered``,
    so a restarted service does not repeat what it sent before.
    """
    config, stats, feed = state.config, state.stats, state.feed
    rng = rng or random.Random()
    target = target_for(config, version)
    failures_log = LogThrottle(60.0)

    async def record(entries: list[RingEntry], status: str, attempts: int, detail: str | None) -> None:
        now = wall_clock()
        for entry in entries:
            assert entry.key is not None
            if status in ("delivered", "digest"):
                state.remember(entry.key)
            if store is not None:
                await deliver(store, AlertDeliveryRow(outlet=config.name, alert_key=entry.key, status=status,
                                                      alert_type=entry.type, attempts=attempts, detail=detail,
                                                      created_at=now))

    async def send(ctx: ActorContext, client: httpx.AsyncClient, entries: list[RingEntry], digest: bool) -> None:
        messages = [_message(e) for e in entries]
        request = target.digest(messages, window_seconds=_WINDOW) if digest else target.single(messages[0])
        attempts = 0
        while True:
            if state.paused_until is not None:
                await trio.sleep_until(state.paused_until)
                state.paused_until = None
                stats.paused = False
            attempts += 1
            try:
                with trio.fail_after(config.timeout):
                    response = await client.request(request.method, request.url, headers=request.headers,
                                                    content=request.body)
                answer = target.interpret(response.status_code, response.headers, response.content)
                verdict, hint, detail = answer.verdict, answer.retry_after, answer.detail
            except (httpx.TransportError, trio.TooSlowError) as exc:
                verdict, hint, detail = "retry", None, f"{type(exc).__name__}"
            if verdict == "ok":
                state.sent_times.append(trio.current_time())
                stats.last_sent_at = wall_clock()
                if digest:
                    stats.digests += 1
                else:
                    stats.sent += 1
                await record(entries, "digest" if digest else "delivered", attempts, None)
                return
            stats.last_error = detail
            if verdict == "auth":
                attempts -= 1      # not the alert's fault: it waits for the outlet to work again
                stats.pauses += 1
                stats.paused = True
                state.paused_until = trio.current_time() + config.cool_down
                ctx.log.error("alerts {name} ({target}): {detail}; pausing this outlet for {s:g} s "
                              "(check its token or webhook)", name=config.name, target=stats.target,
                              detail=detail, s=config.cool_down)
                continue
            if verdict == "rejected" or attempts >= config.max_attempts:
                stats.undeliverable += len(entries)
                if failures_log.allow():
                    ctx.log.warning("alerts {name}: {n} alert(s) undeliverable after {a} tries: {detail} "
                                    "(recorded; further failures logged at most once a minute)",
                                    name=config.name, n=len(entries), a=attempts, detail=detail)
                await record(entries, "undeliverable", attempts, detail)
                return
            stats.retried += 1
            await trio.sleep(hint if hint is not None else retry_backoff.delay(attempts - 1, rng))

    def window_free_at() -> float:
        now = trio.current_time()
        while state.sent_times and state.sent_times[0] <= now - _WINDOW:
            state.sent_times.popleft()
        if len(state.sent_times) < config.max_per_minute:
            return now
        return state.sent_times[0] + _WINDOW

    async def run(ctx: ActorContext, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()   # (alerts queue in the feed meanwhile)
        if not state.loaded and load_delivered is not None:
            try:
                with trio.fail_after(90):
                    keys = await load_delivered(config.name)
                for key in sorted(keys):
                    state.remember(key)
            except Exception as exc:  # noqa: BLE001 - the record is a guard, not a dependency
                ctx.log.warning("alerts {name}: could not read its delivery record ({err}); "
                                "alerts from before this start may be sent again", name=config.name,
                                err=type(exc).__name__)
        state.loaded = True
        # a graceful stop ends the outlet where it is: what is queued (and an alert in flight)
        # dies with the process, like any other in-memory queue
        async with http_client() as client:
            with ctx.stop_scope():
                await _loop(ctx, client)

    async def _loop(ctx: ActorContext, client: httpx.AsyncClient) -> None:
        while True:
            if feed.overflow:
                lost = list(feed.overflow)
                feed.overflow.clear()
                stats.overflow += len(lost)
                if failures_log.allow():
                    ctx.log.warning("alerts {name}: {n} alert(s) overflowed its queue of {q} (recorded "
                                    "undeliverable)", name=config.name, n=len(lost), q=config.queue_size)
                await record(lost, "overflow", 0, "queue full")
            if state.current is None:
                if state.folded and window_free_at() <= trio.current_time():
                    await send(ctx, client, state.folded, digest=True)
                    state.folded = []
                    continue
                if not feed.items:
                    deadline = window_free_at() if state.folded else float("inf")
                    with trio.move_on_at(deadline):
                        await feed.wait()
                    continue
                state.current = feed.items.popleft()
            entry = state.current
            assert entry.key is not None
            if entry.key in state.delivered:
                stats.already_delivered += 1
                state.current = None
                continue
            data = orjson.loads(entry.payload)["data"]
            market = directory.get(str(data.get("condition_id") or ""))
            reason = config.rules.decide(entry.type, data, market, wall_clock())
            if reason is not None:
                stats.skipped[reason] += 1
                state.current = None
                continue
            if state.folded or window_free_at() > trio.current_time():
                state.folded.append(entry)
                stats.folded += 1
                state.current = None
                continue
            await send(ctx, client, [entry], digest=False)
            state.current = None


    return run
