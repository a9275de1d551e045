"""The committed sample recording ``samples/nobel-peace-prize-2025.jsonl.gz``.

It must be exactly the distinct trades of the real Nobel Peace Prize CSV, in the recording
format the replay reads, with a Gamma page describing every market, and it must be what
``tools/make_sample.py`` builds today (byte for byte).
"""

from __future__ import annotations

import csv
import gzip
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from protocols.polymarket import Trade, parse_events_page, parse_rtds_frame, trade_from_activity
from protocols.recording import FORMAT, VERSION, RecordedFrame, RecordedResponse, read_recording

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "samples" / "nobel-peace-prize-2025.jsonl.gz"
TOOL = REPO / "tools" / "make_sample.py"
CSV_PATH = (REPO / ".." / "shared" / "data" / "real-trades" / "nobel-peace-prize-2025-trades.csv").resolve()
EVENT_SLUG = "nobel-peace-prize-winner-2025"
REBUILD = f"{sys.executable} tools/make_sample.py"


def require_csv() -> None:
    """Fail (never skip): the CSV is always present in CI, and without it nothing here is checked."""
    if not CSV_PATH.is_file():
        pytest.fail(
            f"the real-trades CSV the sample is built from is missing: {CSV_PATH}\n"
            "It ships with the shared data next to the repository (../shared/data/real-trades/) and is "
            "always present in CI; without it the committed sample cannot be checked.",
            pytrace=False,
        )


@pytest.fixture(scope="module")
def csv_rows() -> list[dict[str, str]]:
    """The CSV's distinct rows (deduplicated on the full row)."""
    require_csv()
    with open(CSV_PATH, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        distinct = {tuple(row.values()): row for row in reader}
    return list(distinct.values())


@pytest.fixture(scope="module")
def recording() -> list[Any]:
    assert SAMPLE.is_file(), f"{SAMPLE} is missing; rebuild it with: {REBUILD}"
    return read_recording(SAMPLE)


def test_the_source_csv_is_present() -> None:
    require_csv()


def test_header_names_the_format_and_starts_at_the_gamma_page(recording: list[Any]) -> None:
    with gzip.open(SAMPLE, "rb") as f:
        header = orjson.loads(f.readline())
    assert header == {"format": FORMAT, "version": VERSION, "started_at": recording[0].t}


def test_lines_are_in_arrival_order_gamma_first_then_the_empty_frame(recording: list[Any]) -> None:
    times = [line.t for line in recording]
    assert times == sorted(times)
    assert isinstance(recording[0], RecordedResponse) and recording[0].feed == "gamma"
    assert isinstance(recording[1], RecordedFrame) and recording[1].feed == "rtds" and recording[1].frame == ""
    frames = Counter(line.frame for line in recording if isinstance(line, RecordedFrame) and not line.frame.startswith("{"))
    assert frames[""] == 1
    assert frames["PONG"] >= 10
    assert set(frames) == {"", "PONG"}
    assert {line.feed for line in recording} == {"gamma", "rtds"}


def test_the_gamma_page_describes_every_market_of_the_csv(recording: list[Any], csv_rows: list[dict[str, str]]) -> None:
    responses = [line for line in recording if isinstance(line, RecordedResponse)]
    assert len(responses) == 1
    (gamma,) = responses
    assert (gamma.feed, gamma.status) == ("gamma", 200)
    assert gamma.request.startswith("/events?")
    first_trade = min(int(r["timestamp"]) for r in csv_rows)
    assert gamma.t == first_trade + 1.0      # 1 s before the first trade frame arrives (block time + 2 s)

    markets = parse_events_page(gamma.body)
    by_id = {m.condition_id: m for m in markets}
    assert len(by_id) == len(markets)
    assert set(by_id) == {r["conditionId"] for r in csv_rows}
    for m in markets:
        assert m.outcomes == ("Yes", "No")
        assert len(m.token_ids) == 2 and len(set(m.token_ids)) == 2
        assert all(t.isdigit() for t in m.token_ids)
        assert len(m.outcome_prices) == 2 and abs(sum(m.outcome_prices) - 1.0) < 1e-9
        assert m.event_slug == EVENT_SLUG
        assert m.event_title == "Nobel Peace Prize Winner 2025"
        assert m.active and not m.closed
        assert m.volume_24h > 0
        assert {"politics", "nobel peace prize", "world"} <= set(m.tags)
    for r in csv_rows:   # every traded token sits at its outcome's index
        m = by_id[r["conditionId"]]
        assert m.token_ids[int(r["outcomeIndex"])] == r["asset"]
        assert m.outcomes[int(r["outcomeIndex"])] == r["outcome"]
        assert m.question == r["title"] and m.slug == r["slug"]


def test_every_rtds_frame_parses(recording: list[Any]) -> None:
    kinds: Counter[str] = Counter()
    for line in recording:
        if not isinstance(line, RecordedFrame):
            continue
        parsed = parse_rtds_frame(line.frame)
        if parsed is None:
            kinds["keepalive"] += 1
            continue
        assert isinstance(parsed, Trade), line.frame
        kinds[parsed.source] += 1
        envelope = orjson.loads(line.frame)
        assert list(envelope) == ["connection_id", "payload", "timestamp", "topic", "type"]
        assert envelope["timestamp"] == round(line.t * 1000)
        delay = {"rtds.orders_matched": 2.0, "rtds.trades": 2.3}[parsed.source]
        assert line.t == pytest.approx(envelope["payload"]["timestamp"] + delay, abs=1e-6)
        assert "profileImageOptimized" not in envelope["payload"]
    assert kinds["rtds.orders_matched"] == kinds["rtds.trades"] > 0


def test_the_sample_is_exactly_the_distinct_csv_trades(recording: list[Any], csv_rows: list[dict[str, str]]) -> None:
    expected = set()
    for r in csv_rows:
        payload: dict[str, Any] = dict(r)
        payload["price"] = float(r["price"])
        payload["size"] = float(r["size"])
        payload["timestamp"] = int(r["timestamp"])
        payload["outcomeIndex"] = int(r["outcomeIndex"])
        expected.add(trade_from_activity(payload, "csv").trade_id)
    assert len(expected) == len(csv_rows)

    by_source: dict[str, list[str]] = {"rtds.orders_matched": [], "rtds.trades": []}
    for line in recording:
        if isinstance(line, RecordedFrame):
            parsed = parse_rtds_frame(line.frame)
            if isinstance(parsed, Trade):
                by_source[parsed.source].append(parsed.trade_id)
    matched = by_source["rtds.orders_matched"]
    assert len(matched) == len(set(matched)) == len(csv_rows)
    assert set(matched) == expected
    assert sorted(by_source["rtds.trades"]) == sorted(matched)


def test_rebuilding_gives_the_committed_bytes(tmp_path: Path, csv_rows: list[dict[str, str]]) -> None:
    out = tmp_path / "rebuilt.jsonl.gz"
    result = subprocess.run(
        [sys.executable, str(TOOL), "--csv", str(CSV_PATH), "--out", str(out)],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"{len(csv_rows):,} distinct trades" in result.stdout
    assert gzip.decompress(out.read_bytes()) == gzip.decompress(SAMPLE.read_bytes()), (
        f"the committed sample is stale; rebuild it with: {REBUILD}")
    assert out.read_bytes() == SAMPLE.read_bytes(), (
        "same content but different gzip bytes (a different zlib build?); rebuild with: " + REBUILD)
