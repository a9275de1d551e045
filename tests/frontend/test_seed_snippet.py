"""The seed README's frontend snippet, run in Node, receives live messages unchanged."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import trio

from actors import ServiceOptions

from ._client import SAMPLE
from .test_e2e import service, url

SNIPPET = Path(__file__).with_name("seed_snippet.mjs")


async def test_seed_snippet_in_node_receives_whales_and_market_updates() -> None:
    node = shutil.which("node")
    assert node is not None, "Node.js is required for this test (the python-svc machine ships it)"
    async with service(ServiceOptions(seed=9, replay=SAMPLE, speed=3000)) as svc:
        with trio.fail_after(60):
            result = await trio.run_process([node, "--experimental-websocket", str(SNIPPET), url(svc)],
                                            capture_stdout=True, capture_stderr=True, check=False)
    assert result.returncode == 0, result.stderr.decode()
    lines = result.stdout.decode().splitlines()
    whales = [orjson.loads(line.split(" ", 1)[1]) for line in lines if line.startswith("大額交易:")]
    updates = [orjson.loads(line.split(" ", 1)[1]) for line in lines if line.startswith("市場更新:")]
    assert len(whales) >= 2 and len(updates) >= 2
    assert {"market", "side", "amount", "price", "timestamp"} <= set(whales[0])
    assert {"condition_id", "title", "price", "volume_24h", "timestamp"} <= set(updates[0])
