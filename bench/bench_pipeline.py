"""Pipeline throughput: a CLOB-heavy recording replayed at full speed through the real service.

A recording in the ``protocols/recording.py`` format is generated in a temporary directory:
one Gamma ``/events`` page (``--markets`` politics markets, JSON-in-string fields as Gamma
sends them), then ``--frames`` upstream frames of a CLOB ``price_change``-heavy mix:

* ~85 % CLOB ``price_change`` (new schema; one object, or an array of 1-3 objects; each
  object 1-2 changes, the market's YES and NO token); 80 % of them on 8 busy tokens;
* ~5 % CLOB ``book`` (10 levels a side, with ``tick_size`` and ``last_trade_price``);
* ~5 % CLOB ``last_trade_price`` (with ``transaction_hash``);
* ~5 % RTDS ``activity``/``orders_matched`` envelopes: ~77 % below the $1,000 trade
  threshold, ~20 % kept, ~3 % whales >= $10,000 priced 0.1-0.9 (so all are broadcast).

The real service then runs in this process (``build_service`` with ``replay=…, speed=0``,
every endpoint at 127.0.0.1:9, no clients), and the run is timed from the replay's start
until the file is read and every inbox is empty.  Rows, in the same run:

* ``recording read + decode``: ``RecordingReader`` alone (file, JSON line, ``RecordedFrame``);
* ``parsers alone``: ``parse_clob_frame`` / ``parse_rtds_frame`` on the same frames;
* ``service: ingest only``: replay → parsers → trade merger, with the pipeline actors
  replaced by channels that a task drains (``build_service(trades_sink=…, ticks_sink=…)``);
* ``service: full pipeline``: replay → parsers → merger → filter → whale watcher / market
  state → hub (no clients connected).

Usage::

    .venv/bin/python bench/bench_pipeline.py [--frames N] [--markets M] [--seed S]
                                             [--profile] [--profile-top K] [--keep FILE] [--quick]

``--profile`` adds a cProfile run of the full pipeline (slower than the timed run) and prints
where the time goes: by package, then the top functions by own time.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import gc
import hashlib
import io
import pstats
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import OFFLINE_ENV, cpu_seconds, machine_line, proc_status, profile_tables, quiet_logging, table  # noqa: E402

import trio  # noqa: E402

from actors import ServiceOptions, build_service  # noqa: E402
from config import load_settings  # noqa: E402
from protocols.polymarket import parse_clob_frame, parse_rtds_frame  # noqa: E402
from protocols.recording import RecordedFrame, RecordingReader, encode_header  # noqa: E402
from supervision import run_supervisor  # noqa: E402

GAMMA_REQUEST = "/events?active=true&closed=false&limit=100&offset=0"
T0 = 1_760_000_000.0
CONNECTION_ID = "gXseIO-NQWeIKEhJwA=="


# ----------------------------------------------------------------------------- the recording


def _hex(rng: random.Random, n: int) -> str:
    return f"{rng.getrandbits(4 * n):0{n}x}"


def _token(rng: random.Random) -> str:
    return str(rng.getrandbits(254) | (1 << 252))  # a 76-77 digit decimal, like real token ids


def _encoded(items: list[str]) -> str:
    """A JSON-encoded string array spelled like Gamma's (``["a", "b"]``)."""
    return "[" + ", ".join(orjson.dumps(i).decode() for i in items) + "]"


def build_markets(rng: random.Random, count: int) -> tuple[list[dict[str, Any]], str]:
    """``count`` two-outcome politics markets in events of 5, and the Gamma ``/events`` body."""
    markets: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for e in range(0, count, 5):
        event_slug = f"bench-election-{e // 5}"
        event_markets = []
        for i in range(e, min(count, e + 5)):
            yes = round(rng.uniform(0.1, 0.9), 3)
            m = {
                "condition_id": "0x" + _hex(rng, 64),
                "tokens": [_token(rng), _token(rng)],
                "question": f"Will candidate {i} win the bench election {e // 5}?",
                "slug": f"will-candidate-{i}-win-bench-election-{e // 5}",
                "event_slug": event_slug,
                "yes": yes,
            }
            markets.append(m)
            event_markets.append({
                "id": str(500_000 + i), "question": m["question"], "conditionId": m["condition_id"],
                "slug": m["slug"], "description": "This market resolves to \"Yes\" if ... otherwise \"No\".",
                "category": None, "icon": "https://example.invalid/icon.png",
                "endDate": "2026-11-03T00:00:00Z", "endDateIso": "2026-11-03",
                "outcomes": _encoded(["Yes", "No"]),
                "outcomePrices": _encoded([f"{yes:g}", f"{1 - yes:.3f}".rstrip("0")]),
                "clobTokenIds": _encoded(m["tokens"]),
                "volume": f"{rng.uniform(1e4, 5e6):.6f}", "volumeNum": 1e6, "volume24hr": rng.uniform(1e3, 1e5),
                "active": True, "closed": False, "archived": False, "acceptingOrders": True,
                "enableOrderBook": True,
            })
        events.append({
            "id": str(90_000 + e), "ticker": event_slug, "slug": event_slug, "title": f"Bench election {e // 5}",
            "description": "Synthetic politics event for the pipeline benchmark.", "endDate": "2026-11-03T00:00:00Z",
            "active": True, "closed": False, "archived": False, "volume": 1e6, "volume24hr": 1e5,
            "category": None,
            "tags": [{"id": "2", "label": "Politics", "slug": "politics"},
                     {"id": "101970", "label": "World", "slug": "world"}],
            "markets": event_markets,
        })
    return markets, orjson.dumps(events).decode()


class FrameMaker:
    """The frame mix described in the module docstring (deterministic for a seed)."""

    def __init__(self, rng: random.Random, markets: list[dict[str, Any]]) -> None:
        self.rng = rng
        self.markets = markets
        self.busy = markets[:4]  # 8 busy tokens
        self.wallets = ["0x" + "".join(c.upper() if rng.random() < 0.5 else c for c in _hex(rng, 40))
                        for _ in range(500)]
        self.kinds: Counter[str] = Counter()
        self.whales = 0
        self.kept = 0

    def _market(self) -> dict[str, Any]:
        return self.rng.choice(self.busy) if self.rng.random() < 0.8 else self.rng.choice(self.markets)

    def _price_change(self, ms: int) -> dict[str, Any]:
        rng, m = self.rng, self._market()
        bid = rng.randint(5, 93)
        changes = []
        sides = (0, 1) if rng.random() < 0.5 else (rng.randint(0, 1),)
        for side in sides:
            b = bid if side == 0 else 100 - bid - 2
            changes.append({
                "asset_id": m["tokens"][side], "price": f"{rng.randint(b - 4, b + 6) / 100:.2f}",
                "size": f"{rng.uniform(0, 5000):.2f}" if rng.random() < 0.85 else "0",
                "side": rng.choice(("BUY", "SELL")), "hash": _hex(rng, 40),
                "best_bid": f"{b / 100:.2f}", "best_ask": f"{(b + 2) / 100:.2f}",
            })
        self.kinds["price_change events"] += 1
        return {"market": m["condition_id"], "price_changes": changes, "timestamp": str(ms),
                "event_type": "price_change"}

    def _book(self, ms: int) -> dict[str, Any]:
        rng, m = self.rng, self._market()
        bid = rng.randint(10, 88)
        return {
            "event_type": "book", "asset_id": m["tokens"][0], "market": m["condition_id"],
            "bids": [{"price": f"{(bid - i) / 100:.2f}", "size": f"{rng.uniform(1, 900):.2f}"} for i in range(10)][::-1],
            "asks": [{"price": f"{(bid + 2 + i) / 100:.2f}", "size": f"{rng.uniform(1, 900):.2f}"}
                     for i in range(10)][::-1],
            "timestamp": str(ms), "hash": "0x" + _hex(rng, 40), "tick_size": "0.01",
            "last_trade_price": f"{(bid + 1) / 100:.2f}",
        }

    def _last_trade(self, ms: int) -> dict[str, Any]:
        rng, m = self.rng, self._market()
        return {
            "asset_id": m["tokens"][rng.randint(0, 1)], "event_type": "last_trade_price", "fee_rate_bps": "0",
            "market": m["condition_id"], "price": f"{rng.randint(5, 95) / 100:.2f}",
            "side": rng.choice(("BUY", "SELL")), "size": f"{rng.uniform(1, 5000):.6f}", "timestamp": str(ms),
            "transaction_hash": "0x" + _hex(rng, 64),
        }

    def _rtds(self, ms: int) -> str:
        rng, m = self.rng, self.rng.choice(self.markets)
        r = rng.random()
        if r < 0.03:
            notional, price = rng.uniform(10_000, 120_000), round(rng.uniform(0.1, 0.9), 3)
            self.whales += 1
            self.kept += 1
        elif r < 0.23:
            notional, price = rng.uniform(1_000, 9_900), round(rng.uniform(0.03, 0.97), 3)
            self.kept += 1
        else:
            notional, price = rng.uniform(1, 990), round(rng.uniform(0.01, 0.99), 3)
        outcome = rng.randint(0, 1)
        payload = {
            "asset": m["tokens"][outcome], "bio": "", "conditionId": m["condition_id"], "eventSlug": m["event_slug"],
            "icon": "https://example.invalid/icon.png", "name": "", "outcome": ("Yes", "No")[outcome],
            "outcomeIndex": outcome, "price": price, "profileImage": "", "proxyWallet": rng.choice(self.wallets),
            "pseudonym": "Bench-Trader", "side": rng.choice(("BUY", "SELL")), "size": round(notional / price, 2),
            "slug": m["slug"], "timestamp": ms // 1000 - 2, "title": m["question"],
            "transactionHash": "0x" + _hex(rng, 64),
        }
        return orjson.dumps({"connection_id": CONNECTION_ID, "payload": payload, "timestamp": ms,
                             "topic": "activity", "type": "orders_matched"}).decode()

    def frame(self, ms: int) -> tuple[str, str]:
        """One ``(feed, frame text)``."""
        rng = self.rng
        r = rng.random()
        if r < 0.85:
            self.kinds["clob price_change frames"] += 1
            k = rng.choice((1, 1, 1, 2, 3))
            objs = [self._price_change(ms) for _ in range(k)]
            return "clob", orjson.dumps(objs[0] if k == 1 and rng.random() < 0.6 else objs).decode()
        if r < 0.90:
            self.kinds["clob book frames"] += 1
            obj = self._book(ms)
            return "clob", orjson.dumps(obj if rng.random() < 0.5 else [obj]).decode()
        if r < 0.95:
            self.kinds["clob last_trade_price frames"] += 1
            return "clob", orjson.dumps(self._last_trade(ms)).decode()
        self.kinds["rtds orders_matched frames"] += 1
        return "rtds", self._rtds(ms)


def generate(path: Path, frames: int, markets: int, seed: int) -> dict[str, Any]:
    """Write the recording; returns a summary of its contents."""
    rng = random.Random(seed)
    market_list, body = build_markets(rng, markets)
    maker = FrameMaker(rng, market_list)
    size = 0
    with open(path, "wb") as out:
        out.write(encode_header(T0))
        out.write(orjson.dumps({"t": T0, "feed": "gamma", "request": GAMMA_REQUEST, "status": 200,
                                "body": body}) + b"\n")
        buf = []
        for i in range(frames):
            t = T0 + 1.0 + i / 500  # ~500 frames/s as recorded (irrelevant at speed 0)
            feed, text = maker.frame(int(t * 1000))
            buf.append(orjson.dumps({"t": round(t, 3), "feed": feed, "frame": text}))
            size += len(text)
            if len(buf) >= 4096:
                out.write(b"\n".join(buf) + b"\n")
                buf.clear()
        if buf:
            out.write(b"\n".join(buf) + b"\n")
    return {"frames": frames, "kinds": dict(maker.kinds), "whales": maker.whales, "kept": maker.kept,
            "avg_frame_bytes": size / max(1, frames), "file_bytes": path.stat().st_size}


# ----------------------------------------------------------------------------- timing the service


async def _service_run(path: Path, mode: str) -> dict[str, Any]:
    """Run the service on the recording until it is replayed and drained; the figures."""
    settings = load_settings(dict(OFFLINE_ENV), env_file=None)
    sinks: dict[str, Any] = {}
    drained = {"trades": 0, "ticks": 0}
    receivers: list[trio.MemoryReceiveChannel[Any]] = []
    if mode == "ingest":
        trades_send, trades_recv = trio.open_memory_channel[Any](1024)
        ticks_send, ticks_recv = trio.open_memory_channel[Any](4096)
        sinks = {"trades_sink": trades_send, "ticks_sink": ticks_send}
        receivers = [trades_recv, ticks_recv]
    svc = build_service(settings, ServiceOptions(seed=1, replay=path, speed=0), **sinks)
    assert svc.replay_state is not None
    replay = svc.replay_state
    stop = trio.Event()
    depth_max: dict[str, int] = {name: 0 for name in svc.inboxes}
    depth_sum: dict[str, int] = {name: 0 for name in svc.inboxes}
    samples = 0
    result: dict[str, Any] = {}
    rss_before = proc_status()["VmRSS"]
    rss_peak = rss_before

    async def drain(recv: trio.MemoryReceiveChannel[Any], key: str) -> None:
        # take everything queued per wake-up, so the drain costs the producer no extra task switches
        try:
            async for _ in recv:
                drained[key] += 1
                while True:
                    try:
                        recv.receive_nowait()
                    except trio.WouldBlock:
                        break
                    drained[key] += 1
        except trio.ClosedResourceError:
            pass  # closed at the end of the run

    async with trio.open_nursery() as nursery:
        for recv, key in zip(receivers, ("trades", "ticks")):
            nursery.start_soon(drain, recv, key)
        cpu0 = cpu_seconds()
        quiet_since: float | None = None
        await nursery.start(functools.partial(run_supervisor, svc.spec, svc.children, registry=svc.registry,
                                              rng=svc.rng, stop=stop))
        while True:
            await trio.sleep(0.01)
            samples += 1
            pending = {name: inbox.pending() for name, inbox in svc.inboxes.items()}
            for name, n in pending.items():
                depth_max[name] = max(depth_max[name], n)
                depth_sum[name] += n
            if samples % 10 == 0:
                rss_peak = max(rss_peak, proc_status()["VmRSS"])
            # (twice in a row: a message handed straight to a blocked receive is not in pending())
            if replay.done.is_set() and not any(pending.values()) and \
                    all(r.statistics().current_buffer_used == 0 for r in receivers):
                if quiet_since is not None:
                    end = quiet_since
                    break
                quiet_since = time.time()
            else:
                quiet_since = None
        cpu1 = cpu_seconds()
        rss_peak = max(rss_peak, proc_status()["VmRSS"])
        assert replay.started_at is not None
        result = {
            "wall": end - replay.started_at,
            "cpu": cpu1 - cpu0,
            "frames": replay.frames_total - 1,  # less the Gamma page
            "rss_before": rss_before / 1024,
            "rss_peak": rss_peak / 1024,
            "ticks": svc.market_state.ticks_total,
            "merged": svc.merge_stats.emitted_total,
            "clob_suppressed": svc.merge_stats.clob_suppressed_total,
            "kept": svc.filter_stats.kept_total,
            "whales": svc.whale_stats.whales_total,
            "broadcasts": svc.hub.seq,
            "by_type": dict(svc.hub.stats.by_type),
            "malformed": svc.rtds_health.malformed_total + sum(h.malformed_total for h in svc.clob_health),
            "drained": dict(drained),
            "depth_max": depth_max,
            "depth_avg": {k: v / max(1, samples) for k, v in depth_sum.items()},
            "crashes": sum(info.crashes for info in svc.registry),
        }
        stop.set()
        for recv in receivers:
            recv.close()
    return result


def run_service(path: Path, mode: str) -> dict[str, Any]:
    gc.collect()
    return trio.run(_service_run, path, mode)


# ----------------------------------------------------------------------------- the asyncio baseline


async def _asyncio_pipeline(path: Path) -> dict[str, Any]:
    """The same stages written plainly with asyncio: coroutines joined by bounded ``asyncio.Queue``s.

    Same recording reader, same parsers and the same domain code as the service (trade
    deduper, market rules, whale data, hub state) — only the runtime differs: no supervision,
    no redelivering inboxes, and ``await queue.put()`` does not yield unless the queue is full.
    """
    import asyncio

    from actors.catalog import parse_events_page
    from actors.directory import MarketDirectory
    from actors.hub import HubState
    from actors.market_rules import MarketRules
    from actors.messages import Broadcast
    from actors.trade_merge import TradeDeduper
    from actors.whale_watcher import is_near_settlement, whale_data
    from protocols.client import iso_utc
    from protocols.polymarket import PriceTick, Trade

    settings = load_settings(dict(OFFLINE_ENV), env_file=None)
    rules = MarketRules.from_settings(settings)
    directory = MarketDirectory()
    deduper = TradeDeduper()
    hub = HubState(settings.ws_ring_size, lag_limit=settings.ws_lag_limit, clock=time.monotonic)
    q_merge: asyncio.Queue[Any] = asyncio.Queue(1024)
    q_filter: asyncio.Queue[Any] = asyncio.Queue(1024)
    q_whale: asyncio.Queue[Any] = asyncio.Queue(1024)
    q_state: asyncio.Queue[Any] = asyncio.Queue(4096)
    q_hub: asyncio.Queue[Any] = asyncio.Queue(4096)
    counts = Counter()
    cache: dict[str, Any] = {}
    threshold, whale, ignore = (settings.trade_notional_threshold, settings.whale_trade_threshold,
                                settings.ignore_price_threshold)
    interval = settings.market_update_interval

    async def producer() -> None:
        reader = RecordingReader(path)
        reader.open()
        try:
            for n, line in enumerate(reader):
                counts["frames"] += 1
                if not isinstance(line, RecordedFrame):
                    directory.upsert(parse_events_page(line.body))
                    continue
                if line.feed == "rtds":
                    trade = parse_rtds_frame(line.frame)
                    if trade.__class__ is Trade:
                        await q_merge.put(trade)
                    continue
                for event in parse_clob_frame(line.frame).events:
                    if event.__class__ is PriceTick:
                        await q_state.put(event)
                    elif event.__class__ is Trade:
                        await q_merge.put(event)
                if n % 64 == 0:
                    await asyncio.sleep(0)
        finally:
            reader.close()

    async def merger() -> None:
        while True:
            trade = await q_merge.get()
            if trade.source == "clob":  # RTDS is up during the replay: CLOB trades would duplicate it
                counts["clob_suppressed"] += 1
            elif not deduper.is_duplicate(trade):
                deduper.remember(trade)
                counts["merged"] += 1
                await q_filter.put(trade)
            q_merge.task_done()

    async def market_filter() -> None:
        while True:
            trade = await q_filter.get()
            await q_state.put(trade)
            if trade.notional >= threshold:
                market = directory.markets.get(trade.condition_id)
                hit = cache.get(trade.condition_id)
                if hit is None or hit[0] is not market:
                    hit = cache[trade.condition_id] = (market, rules.exclusion_for(trade, market))
                if hit[1] is None:
                    counts["kept"] += 1
                    await q_whale.put(trade)
            q_filter.task_done()

    async def whale_watcher() -> None:
        while True:
            trade = await q_whale.get()
            if trade.notional >= whale and not is_near_settlement(trade.price, ignore):
                counts["whales"] += 1
                data = whale_data(trade, directory, whale)
                await q_hub.put(Broadcast("whale_trade", data, market=trade.condition_id, amount=data["amount"],
                                          key=f"whale:{trade.trade_id}"))
            q_whale.task_done()

    async def market_state() -> None:
        loop = asyncio.get_running_loop()
        state: dict[str, dict[str, Any]] = {}
        while True:
            message = await q_state.get()
            v = state.get(message.condition_id)
            if v is None:
                v = state[message.condition_id] = {"price": None, "bid": None, "ask": None, "volume": 0.0,
                                                   "updated": 0.0, "last_emit": -1e18}
            market = directory.markets.get(message.condition_id)
            tokens = market.token_ids if market is not None else ()
            if message.__class__ is PriceTick:
                counts["ticks"] += 1
                if not tokens or message.asset_id == tokens[0]:
                    if message.best_bid is not None:
                        v["bid"] = message.best_bid
                    if message.best_ask is not None:
                        v["ask"] = message.best_ask
                if message.last_price is not None and tokens and message.asset_id == tokens[0]:
                    v["price"] = message.last_price
            else:
                v["volume"] += message.notional
                if tokens and message.asset_id == tokens[0]:
                    v["price"] = message.price
            v["updated"] = max(v["updated"], message.timestamp)
            now = loop.time()
            if now - v["last_emit"] >= interval:
                v["last_emit"] = now
                await q_hub.put(Broadcast("market_update", {
                    "condition_id": message.condition_id, "title": market.question if market else "",
                    "price": v["price"], "volume_24h": round(v["volume"], 2), "timestamp": iso_utc(v["updated"]),
                    "best_bid": v["bid"], "best_ask": v["ask"], "slug": market.slug if market else "",
                    "url": ""}, market=message.condition_id))
            q_state.task_done()

    async def hub_task() -> None:
        while True:
            hub.publish(await q_hub.get())
            q_hub.task_done()

    rss_before = proc_status()["VmRSS"]
    cpu0 = cpu_seconds()
    start = time.time()
    workers = [asyncio.create_task(c()) for c in (merger, market_filter, whale_watcher, market_state, hub_task)]
    await producer()
    for q in (q_merge, q_filter, q_whale, q_state, q_hub):
        await q.join()
    end = time.time()
    cpu1 = cpu_seconds()
    for w in workers:
        w.cancel()
    await asyncio.gather(*workers, return_exceptions=True)
    return {"wall": end - start, "cpu": cpu1 - cpu0, "frames": counts["frames"] - 1, "ticks": counts["ticks"],
            "merged": counts["merged"], "kept": counts["kept"], "whales": counts["whales"], "broadcasts": hub.seq,
            "rss_before": rss_before / 1024, "rss_peak": float("nan")}


def run_asyncio_baseline(path: Path) -> dict[str, Any]:
    import asyncio

    gc.collect()
    return asyncio.run(_asyncio_pipeline(path))


# ----------------------------------------------------------------------------- parse only


def load_frames(path: Path) -> tuple[list[tuple[str, str]], float]:
    """The recording's frames, and the seconds ``RecordingReader`` took to read and decode them."""
    reader = RecordingReader(path)
    reader.open()
    frames: list[tuple[str, str]] = []
    start = time.perf_counter()
    try:
        for line in reader:
            if isinstance(line, RecordedFrame):
                frames.append((line.feed, line.frame))
    finally:
        reader.close()
    return frames, time.perf_counter() - start


def time_parsers(frames: list[tuple[str, str]]) -> dict[str, tuple[int, float]]:
    """Seconds per frame kind (and overall) for the protocol parsers alone, GC paused."""
    by_kind: dict[str, list[str]] = {}
    for feed, text in frames:
        if feed == "rtds":
            kind = "rtds orders_matched"
        elif '"event_type":"price_change"' in text[:4000] and '"event_type":"book"' not in text:
            kind = "clob price_change"
        elif '"event_type":"book"' in text:
            kind = "clob book"
        else:
            kind = "clob last_trade_price"
        by_kind.setdefault(kind, []).append(text)
    out: dict[str, tuple[int, float]] = {}
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        for feed, text in frames:
            if feed == "rtds":
                parse_rtds_frame(text)
            else:
                parse_clob_frame(text)
        out["all"] = (len(frames), time.perf_counter() - start)
        for kind, texts in sorted(by_kind.items()):
            fn = parse_rtds_frame if kind.startswith("rtds") else parse_clob_frame
            start = time.perf_counter()
            for text in texts:
                fn(text)
            out[kind] = (len(texts), time.perf_counter() - start)
    finally:
        gc.enable()
    return out


# ----------------------------------------------------------------------------- profile


class StepCounter(trio.abc.Instrument):
    """Counts trio scheduler passes (one epoll each) and task steps, per task name."""

    def __init__(self) -> None:
        self.steps: Counter[str] = Counter()
        self.io_waits = 0
        self._names: dict[trio.lowlevel.Task, str] = {}

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        name = self._names.get(task)
        if name is None:
            name = task.name.rsplit(".", 1)[-1]
            frame = getattr(task.coro, "cr_frame", None)
            child = frame.f_locals.get("child") if frame is not None else None
            if name == "_incarnation" and child is not None:
                name = "actor " + child.spec.id  # the supervisor's wrapper task of one actor
            self._names[task] = name
        self.steps[name] += 1

    def before_io_wait(self, timeout: float) -> None:
        self.io_waits += 1


def profile(path: Path, top: int) -> str:
    counter = StepCounter()
    gc.collect()
    r = trio.run(_service_run, path, "full", instruments=[counter])
    frames = r["frames"]
    lines = [f"trio scheduling in the full pipeline ({frames / r['wall']:,.0f} frames/s with this instrument): "
             f"{counter.io_waits:,} scheduler passes (each one epoll_wait) = {counter.io_waits / frames:.2f} per frame; "
             f"{sum(counter.steps.values()):,} task steps = {sum(counter.steps.values()) / frames:.2f} per frame:", ""]
    lines.append(table(["task", "steps", "per frame"],
                       [(name, n, n / frames) for name, n in counter.steps.most_common(10)]))
    prof = cProfile.Profile()
    gc.collect()
    prof.enable()
    r = trio.run(_service_run, path, "full")
    prof.disable()
    raw: dict[Any, Any] = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    text, _total = profile_tables(raw, top)
    lines += ["", f"cProfile of the full pipeline: {r['frames']:,} frames in {r['wall']:.1f} s under the profiler "
              f"({r['frames'] / r['wall']:,.0f} frames/s profiled); own time by module:", "", text]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=200_000, help="upstream frames to replay (default 200000)")
    parser.add_argument("--markets", type=int, default=50, help="markets in the Gamma page (default 50)")
    parser.add_argument("--seed", type=int, default=20251010)
    parser.add_argument("--profile", action="store_true", help="also profile the full pipeline (cProfile)")
    parser.add_argument("--profile-top", type=int, default=30, help="functions listed by --profile (default 30)")
    parser.add_argument("--keep", type=Path, default=None, help="also copy the generated recording to this path")
    parser.add_argument("--repeat", type=int, default=3,
                        help="timed runs of each service variant, interleaved; best and median reported (default 3)")
    parser.add_argument("--quick", action="store_true", help="50,000 frames, 2 runs each (a smoke run)")
    args = parser.parse_args(argv)
    if args.quick:
        args.frames = min(args.frames, 50_000)
        args.repeat = min(args.repeat, 2)
    quiet_logging()
    print(machine_line())
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        path = Path(tmp) / "bench.jsonl"
        t = time.perf_counter()
        summary = generate(path, args.frames, args.markets, args.seed)
        print(f"recording: {summary['frames']:,} frames, {summary['file_bytes'] / 1e6:.1f} MB, "
              f"avg frame {summary['avg_frame_bytes']:.0f} B, generated in {time.perf_counter() - t:.1f} s")
        print("  mix: " + ", ".join(f"{k} {v:,}" for k, v in summary["kinds"].items())
              + f"; RTDS trades kept {summary['kept']:,}, whales {summary['whales']:,}")
        if args.keep is not None:
            args.keep.write_bytes(path.read_bytes())

        # interleaved, so that load from elsewhere on the machine hits every variant alike
        runs: dict[str, list[dict[str, Any]]] = {"full": [], "ingest": [], "baseline": []}
        for _ in range(max(1, args.repeat)):
            runs["full"].append(run_service(path, "full"))
            runs["ingest"].append(run_service(path, "ingest"))
            runs["baseline"].append(run_asyncio_baseline(path))
        best = {k: min(v, key=lambda r: r["wall"]) for k, v in runs.items()}
        median_rate = {k: statistics.median(r["frames"] / r["wall"] for r in v) for k, v in runs.items()}
        full, ingest, baseline = best["full"], best["ingest"], best["baseline"]
        frames, read_s = load_frames(path)
        parsed = time_parsers(frames)
        events = full["ticks"]
        n = len(frames)

        print()
        print(f"Pipeline throughput ({n:,} frames, one process, one thread; target >= 50,000 frames/s):")
        print()
        rows = [
            ("recording read + decode (RecordingReader)", n / read_s, "-", 1e6 * read_s / n, "-", "-"),
            ("parsers alone (parse_clob_frame / parse_rtds_frame)", n / parsed["all"][1], "-",
             1e6 * parsed["all"][1] / n, "-", "-"),
        ]
        for key, label in (("ingest", "service: ingest only (replay → parsers → merger → drained)"),
                           ("full", "service: full pipeline (→ filter → whale / market state → hub)"),
                           ("baseline", "baseline: the same stages in plain asyncio (asyncio.Queue)")):
            r = best[key]
            rows.append((label, r["frames"] / r["wall"], median_rate[key], 1e6 * r["wall"] / r["frames"],
                         r["cpu"] / r["wall"] * 100, r["rss_peak"] if key != "baseline" else "-"))
        print(table(["stage", "frames/s (best)", f"median of {max(1, args.repeat)}", "µs/frame (best)", "CPU %",
                     "peak RSS MB"], rows))
        print()
        print("Parsers alone by frame kind:")
        print()
        print(table(["frame kind", "frames", "frames/s", "µs/frame"],
                    [(k, c, c / s, 1e6 * s / c) for k, (c, s) in parsed.items() if k != "all"]))
        print()
        print("Full pipeline run (the best one):")
        print()
        print(table(["what", "value"], [
            ("frames replayed", full["frames"]),
            ("wall s (replay start → every inbox empty)", full["wall"]),
            ("CPU s", full["cpu"]),
            ("frames/s", full["frames"] / full["wall"]),
            ("price ticks into market state", events),
            ("trades out of the merger", full["merged"]),
            ("CLOB trades suppressed (RTDS up)", full["clob_suppressed"]),
            ("trades kept (filter)", full["kept"]),
            ("whales broadcast (whale_stats)", full["whales"]),
            ("hub broadcasts (hub.seq)", full["broadcasts"]),
            ("  of which", ", ".join(f"{k} {v:,}" for k, v in sorted(full["by_type"].items()))),
            ("malformed frames", full["malformed"]),
            ("RSS before start / peak, MB", f"{full['rss_before']:.0f} / {full['rss_peak']:.0f}"),
        ]))
        print()
        print("Inbox depth during the full run (sampled every 10 ms; a full inbox = its consumer is the bottleneck):")
        print()
        print(table(["inbox", "max", "mean"],
                    [(k, full["depth_max"][k], full["depth_avg"][k]) for k in full["depth_max"]]))
        for label, r in (("asyncio baseline", baseline),):
            if (r["kept"], r["whales"]) != (full["kept"], full["whales"]):
                print(f"\nNOTE: the {label} kept {r['kept']} trades and broadcast {r['whales']} whales, "
                      f"the service {full['kept']} / {full['whales']}")
        if summary["whales"] != full["whales"] or summary["kept"] != full["kept"]:
            print(f"\nNOTE: generated {summary['kept']} kept / {summary['whales']} whale trades, "
                  f"the service kept {full['kept']} and broadcast {full['whales']} whales")
        if args.profile:
            print()
            print(profile(path, args.profile_top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
