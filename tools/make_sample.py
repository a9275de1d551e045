"""Build the committed recorded feed ``samples/nobel-peace-prize-2025.jsonl.gz`` from real trades.

Usage (from the repository root)::

    .venv/bin/python tools/make_sample.py [--csv PATH] [--out PATH]

Input: the Data API ``/trades`` CSV of the 2025 Nobel Peace Prize event
(``../shared/data/real-trades/nobel-peace-prize-2025-trades.csv`` by default).  The CSV repeats
rows (rows 1000-4999 are the same 500 rows eight times), so trades are deduplicated on the full
row first.

Output: a recording in the format of ``protocols/recording.py`` (JSON lines, gzip because the name
ends in ``.gz``; a header line, then one line per frame/response in arrival order ``t``):

1. one Gamma ``/events`` response, 1 s before the first trade arrives, with one event holding one
   market per distinct ``conditionId`` (built from the CSV; tags, ids and descriptions are
   illustrative, see ``samples/README.md``);
2. one empty-string RTDS frame (the real server's first frame after subscribing);
3. per distinct trade, sorted by (timestamp, transactionHash, asset, proxyWallet): the RTDS
   ``orders_matched`` frame at ``timestamp + 2.0`` s and the ``trades`` frame (same payload) at
   ``timestamp + 2.3`` s, as the real server sends them (measured latencies, protocol §2.2);
4. a ``PONG`` keepalive frame after every 100th trade.

The output is deterministic: no wall clock, no randomness, gzip ``mtime`` 0 and no file name
in the gzip header, so the same CSV always gives the same bytes (with the same zlib).

Only the standard library and orjson: this runs without the project's other dependencies and
imports nothing from the project or its tests.
"""

from __future__ import annotations

import argparse
import base64
import csv
import gzip
import hashlib
import io
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CSV = REPO_ROOT / ".." / "shared" / "data" / "real-trades" / "nobel-peace-prize-2025-trades.csv"
DEFAULT_OUT = REPO_ROOT / "samples" / "nobel-peace-prize-2025.jsonl.gz"

#: the recording format (must match protocols/recording.py)
FORMAT = "polymarket-insights-recording"
VERSION = 1

#: the Gamma request the catalog makes for the first page of active events
GAMMA_REQUEST = "/events?active=true&closed=false&limit=100&offset=0"

#: arrival delays after the block time, in ms (protocol §2.2: orders_matched ~2 s, trades 0.2-0.4 s later)
ORDERS_MATCHED_DELAY_MS = 2000
TRADES_DELAY_MS = 2300
#: the Gamma page arrives this long before the first trade frame
GAMMA_LEAD_MS = 1000
#: the empty first frame arrives this long after the Gamma page
EMPTY_FRAME_AFTER_GAMMA_MS = 500
#: a PONG after every this many trades (not after the last one)
PONG_EVERY = 100
#: the PONG arrives this long after the ``trades`` frame of the trade it follows
PONG_AFTER_MS = 100

#: RTDS ``activity`` payload fields, in the (alphabetical) order the real server sends them
RTDS_PAYLOAD_FIELDS = (
    "asset", "bio", "conditionId", "eventSlug", "icon", "name", "outcome", "outcomeIndex", "price",
    "profileImage", "proxyWallet", "pseudonym", "side", "size", "slug", "timestamp", "title",
    "transactionHash",
)
REQUIRED_COLUMNS = frozenset(RTDS_PAYLOAD_FIELDS)

#: one fixed connection id, shaped like the real ones (base64 of 13 bytes, e.g. ``gXseIO-NQWeIKEhJwA==``)
CONNECTION_ID = base64.urlsafe_b64encode(hashlib.sha256(b"polymarket-insights nobel sample").digest()[:13]).decode()

EVENT_TITLE = "Nobel Peace Prize Winner 2025"
EVENT_END_DATE = "2025-10-10T00:00:00Z"
#: illustrative tags in the real Gamma shape (only "Politics" = id 2 is meant to look like the real id)
EVENT_TAGS = (
    {"id": "2", "label": "Politics", "slug": "politics"},
    {"id": "100343", "label": "Nobel Peace Prize", "slug": "nobel-peace-prize"},
    {"id": "101970", "label": "World", "slug": "world"},
)
OUTCOMES = ("Yes", "No")


class SampleError(Exception):
    """Bad input; the message is shown to the operator."""


# ---------------------------------------------------------------------------- reading the CSV


def read_distinct_rows(path: Path) -> tuple[list[dict[str, str]], int]:
    """The CSV's distinct rows (deduplicated on the full row, first occurrence kept) and the total row count."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise SampleError(f"{path}: empty CSV")
            missing = REQUIRED_COLUMNS - set(header)
            if missing:
                raise SampleError(f"{path}: missing columns {', '.join(sorted(missing))}")
            total = 0
            distinct: dict[tuple[str, ...], None] = {}
            for row in reader:
                if not row:
                    continue
                total += 1
                distinct[tuple(row)] = None
    except FileNotFoundError:
        raise SampleError(f"{path}: no such file (pass --csv PATH)") from None
    rows = []
    for values in distinct:
        if len(values) != len(header):
            raise SampleError(f"{path}: a row has {len(values)} fields, the header {len(header)}")
        rows.append(dict(zip(header, values, strict=True)))
    return rows, total


def json_number(text: str) -> int | float:
    """A CSV number as the JSON number the real server sends: integral values as ints
    (a JS server writes ``5000``, not ``5000.0``), others as floats."""
    value = Decimal(text.strip())
    if not value.is_finite():
        raise SampleError(f"not a finite number: {text!r}")
    if value == value.to_integral_value():
        return int(value)
    return float(text)


def sort_key(row: dict[str, str]) -> tuple[Any, ...]:
    return (int(row["timestamp"]), row["transactionHash"], row["asset"], row["proxyWallet"], tuple(row.values()))


def rtds_payload(row: dict[str, str]) -> dict[str, Any]:
    """The RTDS ``activity`` payload of a CSV row: the real field set and order, real JSON types."""
    payload: dict[str, Any] = {}
    for key in RTDS_PAYLOAD_FIELDS:
        value: Any = row[key]
        if key in ("price", "size"):
            value = json_number(value)
        elif key in ("timestamp", "outcomeIndex"):
            value = int(value)
        payload[key] = value
    return payload


# ---------------------------------------------------------------------------- Gamma


def decimal_text(value: Decimal) -> str:
    """A decimal as plain text without exponent or trailing zeros (``0.0010`` → ``0.001``)."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def placeholder_token_id(condition_id: str, outcome: str) -> str:
    """A deterministic stand-in token id (a uint256 in decimal, like real ones) for an outcome
    that never traded in the CSV."""
    return str(int(hashlib.sha256(f"placeholder|{condition_id}|{outcome}".encode()).hexdigest(), 16))


def numeric_id(text: str, modulo: int) -> str:
    return str(int(hashlib.sha256(text.encode()).hexdigest(), 16) % modulo)


def build_markets(rows: Sequence[dict[str, str]]) -> tuple[list[dict[str, Any]], list[tuple[str, str, str]]]:
    """One Gamma Market per distinct condition id (``rows`` sorted by arrival), and the
    placeholders made as ``(condition id, question, outcome)``."""
    by_condition: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_condition.setdefault(row["conditionId"], []).append(row)
    markets: list[tuple[Decimal, str, dict[str, Any]]] = []
    placeholders: list[tuple[str, str, str]] = []
    for condition_id, trades in by_condition.items():
        first = trades[0]
        for key in ("title", "slug", "icon", "eventSlug"):
            if any(t[key] != first[key] for t in trades):
                raise SampleError(f"market {condition_id}: rows disagree on {key}")
        tokens: dict[str, str] = {}
        last_price: dict[str, Decimal] = {}
        for t in trades:
            outcome = t["outcome"]
            if outcome not in OUTCOMES:
                raise SampleError(f"market {condition_id}: outcome {outcome!r} is not Yes/No")
            if tokens.setdefault(outcome, t["asset"]) != t["asset"]:
                raise SampleError(f"market {condition_id}: two token ids for {outcome}")
            last_price[outcome] = Decimal(t["price"])
        if tokens.get("Yes") == tokens.get("No") and "Yes" in tokens:
            raise SampleError(f"market {condition_id}: Yes and No have the same token id")
        token_ids = []
        for outcome in OUTCOMES:
            if outcome not in tokens:
                placeholders.append((condition_id, first["title"], outcome))
                tokens[outcome] = placeholder_token_id(condition_id, outcome)
            token_ids.append(tokens[outcome])
        yes = last_price["Yes"] if "Yes" in last_price else Decimal(1) - last_price["No"]
        prices = [decimal_text(yes), decimal_text(Decimal(1) - yes)]
        volume = sum((Decimal(t["size"]) * Decimal(t["price"]) for t in trades), Decimal(0))
        volume = volume.quantize(Decimal("0.000001"))
        question = first["title"]
        market = {
            "id": numeric_id(condition_id, 1_000_000),
            "question": question,
            "conditionId": condition_id,
            "slug": first["slug"],
            "description": f'This market resolves to "Yes" if {_subject(question)} is announced as the winner '
                           'of the 2025 Nobel Peace Prize by the Norwegian Nobel Committee; otherwise "No".',
            "category": None,
            "icon": first["icon"],
            "endDate": EVENT_END_DATE,
            "endDateIso": EVENT_END_DATE[:10],
            "outcomes": _encoded(OUTCOMES),
            "outcomePrices": _encoded(prices),
            "clobTokenIds": _encoded(token_ids),
            "volume": decimal_text(volume),
            "volumeNum": float(volume),
            "volume24hr": float(volume),
            "active": True,
            "closed": False,
            "archived": False,
            "acceptingOrders": True,
            "enableOrderBook": True,
        }
        markets.append((volume, condition_id, market))
    markets.sort(key=lambda m: (-m[0], m[1]))
    return [m for _, _, m in markets], placeholders


def _encoded(items: Sequence[str]) -> str:
    """A JSON-encoded string array spelled like Gamma's (``["a", "b"]``, a space after commas)."""
    return "[" + ", ".join(orjson.dumps(i).decode() for i in items) + "]"


def _subject(question: str) -> str:
    """``Will X win the Nobel Peace Prize in 2025?`` → ``X`` (else the whole question)."""
    text = " ".join(question.split())
    prefix, suffix = "Will ", " win the Nobel Peace Prize in 2025?"
    if text.startswith(prefix) and text.endswith(suffix):
        return text[len(prefix):-len(suffix)]
    return text


def build_event(event_slug: str, markets: list[dict[str, Any]]) -> dict[str, Any]:
    volume = sum((Decimal(m["volume"]) for m in markets), Decimal(0))
    return {
        "id": numeric_id(event_slug, 100_000),
        "ticker": event_slug,
        "slug": event_slug,
        "title": EVENT_TITLE,
        "description": "Which person or organization will be awarded the 2025 Nobel Peace Prize? "
                       "Each market resolves per the Norwegian Nobel Committee's announcement.",
        "endDate": EVENT_END_DATE,
        "active": True,
        "closed": False,
        "archived": False,
        "volume": float(volume),
        "volume24hr": float(volume),
        "category": None,
        "tags": [dict(t) for t in EVENT_TAGS],
        "markets": markets,
    }


# ---------------------------------------------------------------------------- the recording


def frame_line(ms: int, frame: str) -> bytes:
    return orjson.dumps({"t": ms / 1000, "feed": "rtds", "frame": frame}) + b"\n"


def build(csv_path: Path) -> tuple[bytes, dict[str, Any]]:
    """The uncompressed recording and a summary of what went into it."""
    rows, total_rows = read_distinct_rows(csv_path)
    if not rows:
        raise SampleError(f"{csv_path}: no trades")
    rows.sort(key=sort_key)
    event_slugs = {r["eventSlug"] for r in rows}
    if len(event_slugs) != 1:
        raise SampleError(f"{csv_path}: expected one eventSlug, found {sorted(event_slugs)}")
    event_slug = event_slugs.pop()
    markets, placeholders = build_markets(rows)
    body = orjson.dumps([build_event(event_slug, markets)]).decode()

    first_ts, last_ts = int(rows[0]["timestamp"]), int(rows[-1]["timestamp"])
    gamma_ms = first_ts * 1000 + ORDERS_MATCHED_DELAY_MS - GAMMA_LEAD_MS
    lines: list[tuple[int, int, bytes]] = []

    def add(ms: int, line: bytes) -> None:
        lines.append((ms, len(lines), line))

    add(gamma_ms, orjson.dumps({"t": gamma_ms / 1000, "feed": "gamma", "request": GAMMA_REQUEST,
                                "status": 200, "body": body}) + b"\n")
    add(gamma_ms + EMPTY_FRAME_AFTER_GAMMA_MS, frame_line(gamma_ms + EMPTY_FRAME_AFTER_GAMMA_MS, ""))
    pongs = 0
    for i, row in enumerate(rows, 1):
        payload = rtds_payload(row)
        base = payload["timestamp"] * 1000
        for kind, delay in (("orders_matched", ORDERS_MATCHED_DELAY_MS), ("trades", TRADES_DELAY_MS)):
            ms = base + delay
            envelope = {"connection_id": CONNECTION_ID, "payload": payload, "timestamp": ms,
                        "topic": "activity", "type": kind}
            add(ms, frame_line(ms, orjson.dumps(envelope).decode()))
        if i % PONG_EVERY == 0 and i < len(rows):
            ms = base + TRADES_DELAY_MS + PONG_AFTER_MS
            add(ms, frame_line(ms, "PONG"))
            pongs += 1
    lines.sort(key=lambda item: (item[0], item[1]))

    out = io.BytesIO()
    out.write(orjson.dumps({"format": FORMAT, "version": VERSION, "started_at": gamma_ms / 1000}) + b"\n")
    for _, _, line in lines:
        out.write(line)
    summary = {
        "csv_rows": total_rows,
        "distinct_trades": len(rows),
        "markets": len(markets),
        "placeholders": placeholders,
        "first_trade": first_ts,
        "last_trade": last_ts,
        "trade_span_s": last_ts - first_ts,
        "recording_span_s": (lines[-1][0] - gamma_ms) / 1000,
        "lines": len(lines),
        "pongs": pongs,
    }
    return out.getvalue(), summary


def write_gzip(path: Path, data: bytes) -> None:
    """Gzip ``data`` into ``path`` reproducibly (mtime 0, no name in the header), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz:
            gz.write(data)
    os.replace(tmp, path)


def _utc(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV,
                        help="the Nobel Peace Prize trades CSV (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="the recording to write; gzip when it ends in .gz (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        data, s = build(args.csv)
    except SampleError as exc:
        print(f"make_sample: {exc}", file=sys.stderr)
        return 1
    if str(args.out).endswith(".gz"):
        write_gzip(args.out, data)
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_bytes(data)
    span = s["recording_span_s"]
    print(f"{args.out}: {args.out.stat().st_size:,} bytes ({len(data):,} uncompressed), {s['lines']:,} lines")
    print(f"  {s['csv_rows']:,} CSV rows -> {s['distinct_trades']:,} distinct trades in {s['markets']} markets")
    print(f"  trades {_utc(s['first_trade'])} .. {_utc(s['last_trade'])} ({s['trade_span_s']:,} s); "
          f"replay at speed 1 takes {span:,.1f} s, at --speed 150 {span / 150:.0f} s")
    for condition_id, question, outcome in s["placeholders"]:
        print(f"  placeholder {outcome} token id (never traded): {question} ({condition_id})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
