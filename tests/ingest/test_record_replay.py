"""Record the live feeds to a file, replay it through the same parsers; replay the sample."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import trio

from actors import ServiceOptions
from protocols.polymarket import trade_from_activity
from protocols.recording import RecordedFrame, RecordedResponse, read_recording
from tests.fakes import make_gamma_event, make_gamma_market, make_trade, open_fake_polymarket, rtds_payload_from_trade

from ._service import fake_env, now_s, running_service

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "nobel-peace-prize-2025.jsonl.gz"
NOBEL_CSV = ROOT.parent / "shared" / "data" / "real-trades" / "nobel-peace-prize-2025-trades.csv"


def nobel_trade_ids() -> set[str]:
    """Independently: the distinct trades of the CSV, by the project's trade identity."""
    assert NOBEL_CSV.is_file(), f"{NOBEL_CSV} is missing (it ships in shared/)"
    ids = set()
    with open(NOBEL_CSV, newline="") as f:
        for row in csv.DictReader(f):
            payload = {**row, "price": float(row["price"]), "size": float(row["size"]),
                       "timestamp": int(row["timestamp"]), "outcomeIndex": int(row["outcomeIndex"])}
            ids.add(trade_from_activity(payload, "data_api").trade_id)
    return ids


async def test_record_then_replay_gives_the_same_trades(tmp_path: Path) -> None:
    path = tmp_path / "session.jsonl.gz"
    now = now_s()
    market = make_gamma_market("0x" + "cd" * 32, "Recorded market?", "recorded", ["81", "82"])
    trades = [make_trade(size=3000.0, price=0.4, conditionId=market["conditionId"], asset="81", timestamp=now + i)
              for i in range(4)]
    async with open_fake_polymarket() as fake:
        fake.gamma.set_events([make_gamma_event("rec", "Rec", [market])])
        async with running_service(fake_env(fake), ServiceOptions(seed=2, record=path)) as run:
            await fake.rtds.wait_subscribed()
            for trade in trades:
                await fake.rtds.send_trade(rtds_payload_from_trade(trade), ("orders_matched", "trades"))
            await fake.rtds.send_raw("{truncated")
            live = await run.collect_until(lambda got: len(got) >= 4)
            with trio.fail_after(10):
                while run.service.recorder is not None and run.service.recorder.lines_total < 9:
                    await trio.sleep(0.05)
    lines = read_recording(path)
    assert any(isinstance(x, RecordedResponse) and x.feed == "gamma" for x in lines)
    assert any(isinstance(x, RecordedResponse) and x.feed == "data_api" for x in lines)
    assert sum(1 for x in lines if isinstance(x, RecordedFrame) and x.feed == "rtds" and "activity" in x.frame) == 8
    assert all(a.t <= b.t for a, b in zip(lines, lines[1:])), "arrival order"

    env = fake_env(fake, POLYMARKET_RTDS_URL="ws://127.0.0.1:9", GAMMA_API_URL="http://127.0.0.1:9",
                   DATA_API_URL="http://127.0.0.1:9", POLYMARKET_WS_URL="ws://127.0.0.1:9")
    async with running_service(env, ServiceOptions(seed=3, replay=path, speed=0)) as run:
        replayed = await run.collect_until(lambda got: len(got) >= 4)
        with trio.fail_after(10):
            await run.service.replay_state.done.wait()  # type: ignore[union-attr]
        replayed = await run.settle(0.3)
        assert run.service.directory.get(market["conditionId"]) is not None, "Gamma came from the file"
        assert run.service.rtds_health.malformed_total == 1
        recorded_rtds = sum(1 for x in lines if isinstance(x, RecordedFrame) and x.feed == "rtds")
        assert run.service.rtds_health.frames_total == recorded_rtds
    assert [t.trade_id for t in replayed] == [t.trade_id for t in live]


async def test_replaying_the_sample_yields_every_distinct_nobel_trade_once() -> None:
    env = {"POLYMARKET_RTDS_URL": "ws://127.0.0.1:9", "POLYMARKET_WS_URL": "ws://127.0.0.1:9",
           "GAMMA_API_URL": "http://127.0.0.1:9", "DATA_API_URL": "http://127.0.0.1:9", "STATUS_LOG_INTERVAL": "0",
           "WS_SERVER_PORT": "0", "HTTP_PORT": "0"}
    async with running_service(env, ServiceOptions(seed=4, replay=SAMPLE, speed=0)) as run:
        with trio.fail_after(60):
            await run.service.replay_state.done.wait()  # type: ignore[union-attr]
        got = await run.settle(0.5)
        assert len(run.service.directory) == 20
    ids = [t.trade_id for t in got]
    assert len(ids) == len(set(ids)) == 1500
    assert set(ids) == nobel_trade_ids()


def test_start_sh_style_offline_replay_exits_when_done(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), "--replay", str(SAMPLE), "--speed", "0", "--exit-when-done"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "STATUS_LOG_INTERVAL": "0", "POLYMARKET_RTDS_URL": "ws://127.0.0.1:9",
             "POLYMARKET_WS_URL": "ws://127.0.0.1:9", "GAMMA_API_URL": "http://127.0.0.1:9",
             "DATA_API_URL": "http://127.0.0.1:9", "WS_SERVER_PORT": "0", "HTTP_PORT": "0"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "replay finished: 3016 frames" in result.stderr
