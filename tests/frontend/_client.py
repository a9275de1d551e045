"""A real WebSocket client for end-to-end tests, and the independent whale computation."""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path
from typing import Any

import orjson
import trio

from protocols.polymarket import trade_from_activity
from tests.fakes import open_ws_client

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "nobel-peace-prize-2025.jsonl.gz"
NOBEL_CSV = ROOT.parent / "shared" / "data" / "real-trades" / "nobel-peace-prize-2025-trades.csv"

_DB_DIR = Path(tempfile.mkdtemp(prefix="pmi-test-"))

OFFLINE_ENV = {
    "DATABASE_URL": f"sqlite:///{_DB_DIR / 'insights.db'}", "DB_JOURNAL_PATH": str(_DB_DIR / "journal.jsonl"),
    "POLYMARKET_RTDS_URL": "ws://127.0.0.1:9", "POLYMARKET_WS_URL": "ws://127.0.0.1:9",
    "GAMMA_API_URL": "http://127.0.0.1:9", "DATA_API_URL": "http://127.0.0.1:9",
    "OPENROUTER_BASE_URL": "http://127.0.0.1:9", "STATUS_LOG_INTERVAL": "0",
    "WS_SERVER_HOST": "127.0.0.1", "WS_SERVER_PORT": "0", "HTTP_HOST": "127.0.0.1", "HTTP_PORT": "0",
    # the sample has few $10k trades away from 0/1: lower thresholds give the test 29 whales
    # (and 66 more that the price filter must hold back)
    "WHALE_TRADE_THRESHOLD": "1000", "IGNORE_PRICE_THRESHOLD": "0.01",
}


def expected_whales(whale: float = 1_000, keep: float = 1_000, ignore: float = 0.01) -> list[str]:
    """Trade ids of the whales a client must receive for the Nobel sample, in replay order,
    computed from the CSV alone: distinct rows, notional >= both thresholds, price not within
    ``ignore`` of 0 or 1 (the sample's markets are politics: none is excluded)."""
    assert NOBEL_CSV.is_file(), f"{NOBEL_CSV} is missing (it ships in shared/)"
    rows: dict[tuple[str, ...], dict[str, str]] = {}
    with open(NOBEL_CSV, newline="") as f:
        for row in csv.DictReader(f):
            rows[tuple(row.values())] = row
    picked = []
    for row in rows.values():
        size, price = float(row["size"]), float(row["price"])
        notional = size * price
        if notional >= max(whale, keep) and ignore < price < 1 - ignore:
            picked.append(row)
    picked.sort(key=lambda r: (int(r["timestamp"]), r["transactionHash"], r["asset"], r["proxyWallet"]))
    return [trade_from_activity({**r, "price": float(r["price"]), "size": float(r["size"]),
                                 "timestamp": int(r["timestamp"]), "outcomeIndex": int(r["outcomeIndex"])},
                                "data_api").trade_id for r in picked]


class Client:
    """Collects every frame; tracks the last broadcast seq for resuming."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.last_seq = 0
        self.connections = 0

    def whales(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == "whale_trade"]

    async def session(self, url: str, *, requests: list[dict[str, Any]] | None = None,
                      until: Any = None, timeout: float = 30.0) -> str:
        """One connection: send ``requests``, read until ``until(self)`` or the server closes."""
        self.connections += 1
        with trio.fail_after(timeout):
            async with open_ws_client(url) as ws:
                for request in requests or []:
                    await ws.send_message(orjson.dumps(request).decode())
                while until is None or not until(self):
                    try:
                        text = await ws.get_message()
                    except Exception as exc:  # noqa: BLE001 - a closed connection ends the session
                        return type(exc).__name__
                    message = orjson.loads(text)
                    items = message["data"] if message["type"] == "batch" else [message]
                    for item in items:
                        self.messages.append(item)
                        if "seq" in item:
                            assert item["seq"] > self.last_seq, f"seq went backwards: {item['seq']} after {self.last_seq}"
                            self.last_seq = item["seq"]
        return "done"
