"""Benchmark the Polymarket parsers against baselines, on one core.

Rows of the real Nobel Peace Prize 2025 trades CSV are wrapped as RTDS
``activity`` envelopes (a synthetic frame is used if the file is missing), and a
CLOB frame mix is generated from the same assets: arrays of 1-3 events (a lone
event is sent as a bare object half the time), ~80 % new-schema ``price_change``
(1-2 changes each), the rest ``book`` (10 levels a side) / ``last_trade_price`` /
``best_bid_ask``.

Rows, measured in the same run:

* ``rtds: parse_rtds_frame``       - our RTDS path (orjson, validation, sha1 ids, Trade).
* ``clob: parse_clob_frame``       - our CLOB path on the mix above.
* ``baseline: json.loads + dict``  - stdlib decode + the same field extraction into a
  tuple, no validation, no ids (what a naive consumer does).
* ``cattrs: orjson converter``     - ``cattrs.preconf.orjson.make_converter().loads``
  into attrs envelope/payload classes, then the same ids + Trade as ours.
* ``floor: orjson.loads only``     - decode cost alone, for reference.

Usage::

    .venv/bin/python bench/bench_parse.py [--frames N] [--repeat R] [--csv PATH]
"""

from __future__ import annotations

import argparse
import csv
import gc
import json
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import attrs
import cattrs.preconf.orjson
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from protocols.polymarket import Trade, parse_clob_frame, parse_rtds_frame, trade_keys  # noqa: E402

DEFAULT_CSV = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real-trades" / "nobel-peace-prize-2025-trades.csv"

SYNTHETIC_PAYLOAD: dict[str, Any] = {
    "asset": "72551024098258542594534683942523606143014690620243023298497729957846870197074",
    "bio": "",
    "conditionId": "0x1d8720896546460a48d4f7fd5b3f0705a8d427921222de498d1cd334d4890c52",
    "eventSlug": "highest-temperature-in-wellington-on-august-19-2026",
    "icon": "https://x.jpg",
    "name": "PPMT",
    "outcome": "No",
    "outcomeIndex": 1,
    "price": 0.26,
    "profileImage": "",
    "proxyWallet": "0x510F4963b66B1B18505faaB74b0bB943D1dDa43C",
    "pseudonym": "Rowdy-Tenement",
    "side": "BUY",
    "size": 2.7027,
    "slug": "highest-temperature-in-wellington-on-august-19-2026-10c",
    "timestamp": 1787102287,
    "title": "Will the highest temperature in Wellington be 10C on August 19?",
    "transactionHash": "0xb6acf6859bc84216f4b3e2567fb392a2eae19d275340ad96ea17218ccfec27b7",
}


# --- input frames ----------------------------------------------------------------------------


def load_payloads(path: Path) -> tuple[list[dict[str, Any]], str]:
    """RTDS-typed payloads from the CSV (numbers as numbers), or one synthetic payload."""
    if not path.is_file():
        return [SYNTHETIC_PAYLOAD], f"synthetic frame ({path} missing)"
    payloads = []
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            p: dict[str, Any] = dict(row)
            try:
                p["size"] = float(row["size"])
                p["price"] = float(row["price"])
                p["timestamp"] = int(row["timestamp"])
                p["outcomeIndex"] = int(row["outcomeIndex"]) if row.get("outcomeIndex") else 999
            except (KeyError, ValueError):
                continue
            payloads.append(p)
    if not payloads:
        return [SYNTHETIC_PAYLOAD], f"synthetic frame ({path} had no usable rows)"
    return payloads, f"{path.name}: {len(payloads)} rows"


def rtds_frames(payloads: list[dict[str, Any]], n: int) -> list[str]:
    distinct = []
    for i, p in enumerate(payloads):
        distinct.append(
            orjson.dumps(
                {
                    "connection_id": "gXseIO-NQWeIKEhJwA==",
                    "payload": p,
                    "timestamp": p["timestamp"] * 1000 + 53,
                    "topic": "activity",
                    "type": "orders_matched" if i % 3 == 0 else "trades",
                }
            ).decode()
        )
    return [distinct[i % len(distinct)] for i in range(n)]


def clob_frames(payloads: list[dict[str, Any]], n: int, rng: random.Random) -> list[str]:
    assets = sorted({(p["conditionId"], p["asset"]) for p in payloads})
    distinct_count = min(n, 5000)
    ts = 1760085586000

    def price() -> str:
        return f"{rng.randint(1, 99) / 100:.2f}"

    def event() -> dict[str, Any]:
        market, asset = rng.choice(assets)
        r = rng.random()
        stamp = str(ts + rng.randint(0, 10_000_000))
        if r < 0.80:
            changes = []
            for _ in range(rng.choice((1, 1, 2))):
                bid = rng.randint(1, 98)
                changes.append(
                    {
                        "asset_id": asset,
                        "price": price(),
                        "size": f"{rng.uniform(0, 5000):.2f}",
                        "side": rng.choice(("BUY", "SELL")),
                        "hash": f"{rng.getrandbits(160):040x}",
                        "best_bid": f"{bid / 100:.2f}",
                        "best_ask": f"{(bid + 1) / 100:.2f}",
                    }
                )
            return {"market": market, "price_changes": changes, "timestamp": stamp, "event_type": "price_change"}
        if r < 0.88:
            levels = lambda: [{"price": price(), "size": f"{rng.uniform(1, 900):.2f}"} for _ in range(10)]  # noqa: E731
            return {
                "event_type": "book",
                "asset_id": asset,
                "market": market,
                "bids": levels(),
                "asks": levels(),
                "timestamp": stamp,
                "hash": f"0x{rng.getrandbits(160):040x}",
                "tick_size": "0.01",
                "last_trade_price": price(),
            }
        if r < 0.95:
            return {
                "asset_id": asset,
                "event_type": "last_trade_price",
                "fee_rate_bps": "0",
                "market": market,
                "price": price(),
                "side": rng.choice(("BUY", "SELL")),
                "size": f"{rng.uniform(1, 5000):.6f}",
                "timestamp": stamp,
                "transaction_hash": f"0x{rng.getrandbits(256):064x}",
            }
        bid = rng.randint(1, 97)
        return {
            "event_type": "best_bid_ask",
            "market": market,
            "asset_id": asset,
            "best_bid": f"{bid / 100:.2f}",
            "best_ask": f"{(bid + 2) / 100:.2f}",
            "spread": "0.02",
            "timestamp": stamp,
        }

    distinct = []
    for _ in range(distinct_count):
        k = rng.choice((1, 1, 2, 3))
        events = [event() for _ in range(k)]
        distinct.append(orjson.dumps(events[0] if k == 1 and rng.random() < 0.5 else events).decode())
    return [distinct[i % len(distinct)] for i in range(n)]


# --- baselines -------------------------------------------------------------------------------


def json_baseline(frame: str) -> tuple[Any, ...] | None:
    """stdlib json + dict access: the same fields as Trade, no validation, no ids."""
    obj = json.loads(frame)
    if obj.get("topic") != "activity" or obj.get("type") not in ("trades", "orders_matched"):
        return None
    p = obj["payload"]
    price = float(p["price"])
    size = float(p["size"])
    return (
        p["conditionId"],
        p["asset"],
        p["side"],
        p.get("outcome", ""),
        p.get("outcomeIndex"),
        price,
        size,
        size * price,
        float(p["timestamp"]),
        p.get("transactionHash", ""),
        p.get("proxyWallet", ""),
        p.get("name") or p.get("pseudonym") or "",
        p.get("title", ""),
        p.get("slug", ""),
        p.get("eventSlug", ""),
    )


@attrs.define
class _CattrsPayload:
    asset: str
    conditionId: str  # noqa: N815 - wire names
    price: float
    size: float
    side: str
    timestamp: int
    proxyWallet: str = ""  # noqa: N815
    transactionHash: str = ""  # noqa: N815
    outcome: str = ""
    outcomeIndex: int | None = None  # noqa: N815
    name: str = ""
    pseudonym: str = ""
    title: str = ""
    slug: str = ""
    eventSlug: str = ""  # noqa: N815


@attrs.define
class _CattrsEnvelope:
    topic: str
    type: str
    payload: _CattrsPayload
    timestamp: int = 0
    connection_id: str = ""


_converter = cattrs.preconf.orjson.make_converter()


def cattrs_variant(frame: str) -> Trade | None:
    env = _converter.loads(frame, _CattrsEnvelope)
    if env.topic != "activity" or env.type not in ("trades", "orders_matched"):
        return None
    p = env.payload
    ts = float(p.timestamp)
    trade_id, fill_key = trade_keys(p.transactionHash, p.asset, p.proxyWallet, p.side, p.size, p.price, ts)
    oi = None if p.outcomeIndex == 999 else p.outcomeIndex
    return Trade(
        trade_id, fill_key, p.conditionId, p.asset, p.side, p.outcome, oi, p.price, p.size, p.size * p.price, ts,
        p.transactionHash, p.proxyWallet, p.name or p.pseudonym, p.title, p.slug, p.eventSlug,
        "rtds.trades" if env.type == "trades" else "rtds.orders_matched",
    )


# --- timing ----------------------------------------------------------------------------------


def time_pass(fn: Callable[[Any], Any], frames: list[str]) -> float:
    """Seconds for one pass of ``fn`` over ``frames`` (GC paused, as timeit does)."""
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        for frame in frames:
            fn(frame)
        return time.perf_counter() - start
    finally:
        gc.enable()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=30_000, help="frames per variant per pass (default 30000)")
    parser.add_argument("--repeat", type=int, default=5, help="timed passes per variant; best and median reported (default 5)")
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV, help="real trades CSV to build frames from")
    args = parser.parse_args()

    payloads, origin = load_payloads(args.csv)
    rtds = rtds_frames(payloads, args.frames)
    clob = clob_frames(payloads, args.frames, random.Random(20251010))

    # sanity: every variant does real work on these frames
    assert all(isinstance(parse_rtds_frame(f), Trade) for f in rtds[:2000])
    sample = [parse_clob_frame(f) for f in clob[:5000]]
    assert not any(r.malformed for r in sample)
    events_per_frame = sum(len(r.events) for r in sample) / len(sample)
    ours, theirs = parse_rtds_frame(rtds[0]), cattrs_variant(rtds[0])
    assert ours is not None and theirs is not None and ours.trade_id == theirs.trade_id
    assert json_baseline(rtds[0]) is not None

    variants: list[tuple[str, Callable[[Any], Any], list[str]]] = [
        ("rtds: parse_rtds_frame", parse_rtds_frame, rtds),
        ("clob: parse_clob_frame (mix)", parse_clob_frame, clob),
        ("baseline: json.loads + dict", json_baseline, rtds),
        ("cattrs: orjson converter", cattrs_variant, rtds),
        ("floor: orjson.loads only", orjson.loads, rtds),
    ]
    for _, fn, frames in variants:  # warm-up
        for f in frames[:2000]:
            fn(f)

    print(
        f"Python {platform.python_version()} | orjson {version('orjson')} | cattrs {version('cattrs')} | "
        f"attrs {version('attrs')} | {platform.machine()}"
    )
    print(f"input: {origin}; {args.frames} frames per variant per pass, {args.repeat} interleaved passes")
    avg_rtds = sum(len(f) for f in rtds) / len(rtds)
    avg_clob = sum(len(f) for f in clob) / len(clob)
    print(f"avg frame: RTDS {avg_rtds:.0f} B; CLOB {avg_clob:.0f} B, {events_per_frame:.2f} events/frame")
    print()
    # Passes are interleaved round-robin so that load from other processes hits every
    # variant alike; the best pass is reported (the least disturbed), with the median.
    times: dict[str, list[float]] = {name: [] for name, _, _ in variants}
    for _ in range(args.repeat):
        for name, fn, frames in variants:
            times[name].append(time_pass(fn, frames))
    print(f"{'variant':<32} {'frames/s':>12} {'us/frame':>10} {'median us':>10}")
    print("-" * 67)
    for name, _, frames in variants:
        best = min(times[name])
        median = statistics.median(times[name])
        print(
            f"{name:<32} {len(frames) / best:>12,.0f} {best / len(frames) * 1e6:>10.2f} "
            f"{median / len(frames) * 1e6:>10.2f}"
        )


if __name__ == "__main__":
    main()
