"""Helpers shared by the benchmarks (not a benchmark itself)."""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: Every upstream endpoint points at the discard port of 127.0.0.1 (nothing leaves the machine);
#: the WebSocket and HTTP ports are picked by the kernel; no periodic status lines.
OFFLINE_ENV: dict[str, str] = {
    "POLYMARKET_RTDS_URL": "ws://127.0.0.1:9",
    "POLYMARKET_WS_URL": "ws://127.0.0.1:9",
    "GAMMA_API_URL": "http://127.0.0.1:9",
    "DATA_API_URL": "http://127.0.0.1:9",
    "OPENROUTER_BASE_URL": "http://127.0.0.1:9",
    "STATUS_LOG_INTERVAL": "0",
    "WS_SERVER_HOST": "127.0.0.1",
    "WS_SERVER_PORT": "0",
    "HTTP_HOST": "127.0.0.1",
    "HTTP_PORT": "0",
    "BACKFILL_LOOKBACK_MINUTES": "0",
    "LOG_LEVEL": "warning",
}


#: A realistic whale_trade (the README's example); ``sent_at`` is put first at send time.
WHALE: dict[str, Any] = {
    "market": "Will María Corina Machado win the Nobel Peace Prize in 2025?",
    "side": "YES", "amount": 24150.5, "price": 0.71, "timestamp": "2025-10-10T08:41:12Z", "action": "BUY",
    "outcome": "Yes", "size": 34014.8,
    "condition_id": "0x1d8720896546460a48d4f7fd5b3f0705a8d427921222de498d1cd334d4890c52",
    "asset_id": "72551024098258542594534683942523606143014690620243023298497729957846870197074",
    "slug": "will-mara-corina-machado-win-the-nobel-peace-prize-in-2025",
    "event_slug": "nobel-peace-prize-winner-2025",
    "url": "https://polymarket.com/event/nobel-peace-prize-winner-2025",
    "wallet": "0x510F4963b66B1B18505faaB74b0bB943D1dDa43C", "trader": "Rowdy-Tenement",
    "transaction_hash": "0xb6acf6859bc84216f4b3e2567fb392a2eae19d275340ad96ea17218ccfec27b7",
    "trade_id": "", "tier": "big_whale",
}


def quiet_logging() -> None:
    """Loguru at WARNING on stderr (the service logs every whale at INFO)."""
    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level="WARNING", format="{time:HH:mm:ss.SSS} {level} {extra} {message}")


def proc_status(pid: int | None = None) -> dict[str, int]:
    """VmRSS / VmHWM (kB) of a process from /proc (0 when the process is gone)."""
    path = f"/proc/{pid if pid is not None else 'self'}/status"
    out = {"VmRSS": 0, "VmHWM": 0}
    try:
        with open(path) as fh:
            for line in fh:
                key = line.split(":", 1)[0]
                if key in out:
                    out[key] = int(line.split()[1])
    except OSError:
        pass
    return out


def tcp_kernel_mb() -> float:
    """Memory the kernel holds in TCP socket buffers, machine-wide (``/proc/net/sockstat`` ``mem``, pages)."""
    try:
        with open("/proc/net/sockstat") as fh:
            for line in fh:
                if line.startswith("TCP:"):
                    fields = line.split()
                    return int(fields[fields.index("mem") + 1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        pass
    return float("nan")


def rss_mb(pid: int | None = None) -> float:
    return proc_status(pid)["VmRSS"] / 1024


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU seconds of a process (0 when it is gone)."""
    if pid is None:
        t = os.times()
        return t.user + t.system
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks
    except (OSError, IndexError, ValueError):
        return 0.0


def machine_line() -> str:
    from importlib.metadata import PackageNotFoundError, version

    def v(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "-"

    try:
        import subprocess

        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=5).stdout.strip() or "?"
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        commit += "+changes" if dirty else ""
    except (OSError, subprocess.SubprocessError):
        commit = "?"
    return (f"{time.strftime('%Y-%m-%d %H:%M')} | commit {commit} | Python {platform.python_version()} | nproc {os.cpu_count()} | "
            f"trio {v('trio')} | trio-websocket {v('trio-websocket')} | wsproto {v('wsproto')} | "
            f"websockets {v('websockets')} | orjson {v('orjson')}")


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], *, left: int = 1) -> str:
    """A Markdown table; the first ``left`` columns are left-aligned, the rest right-aligned."""
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) if i < left else c.rjust(w)
                                 for i, (c, w) in enumerate(zip(row, widths))) + " |"

    sep = "|" + "|".join(":" + "-" * (w + 1) if i < left else "-" * (w + 1) + ":"
                         for i, w in enumerate(widths)) + "|"
    return "\n".join([line(cells[0]), sep] + [line(r) for r in cells[1:]])


def _fmt(value: object) -> str:
    if isinstance(value, float):
        if value != value:
            return "-"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def package_of(filename: str) -> str:
    """A readable place for a profiled function: project module, trio module, or package."""
    if filename.startswith("~") or filename.startswith("<"):
        return "C builtins (orjson, epoll, dict, deque ...)"
    parts = Path(filename).parts
    if "site-packages" in parts:
        rest = parts[parts.index("site-packages") + 1:]
        if rest[0] == "trio":
            return "/".join(rest)
        return rest[0].split(".")[0]
    try:
        rel = Path(filename).resolve().relative_to(ROOT)
        return "/".join(rel.parts)
    except ValueError:
        return "stdlib " + Path(filename).name


def profile_tables(raw: dict[Any, Any], top: int, *, exclude: Sequence[str] = ()) -> tuple[str, float]:
    """Own time by module and the top functions of a ``pstats.Stats(...).stats`` dict.

    Functions whose name contains one of ``exclude`` (e.g. the idle ``epoll.poll``) are left
    out of the tables and of the total.  Returns the text and the total own seconds counted.
    """
    from collections import Counter

    items = [(k, v) for k, v in raw.items() if not any(e in k[2] for e in exclude)]
    total = sum(v[2] for _, v in items) or 1e-9
    by_pkg: Counter[str] = Counter()
    for (filename, _line, _name), v in items:
        by_pkg[package_of(filename)] += v[2]
    lines = [table(["module", "own s", "share"],
                   [(k, v, f"{100 * v / total:.1f} %") for k, v in by_pkg.most_common(20)]), ""]
    lines.append(f"top {top} functions by own time (a coroutine's 'calls' counts each resumption):")
    lines.append("")
    rows = sorted(items, key=lambda kv: kv[1][2], reverse=True)[:top]
    lines.append(table(["function", "calls", "own s", "cum s", "own share"],
                       [(f"{package_of(f)}:{line} {name}", nc, tt, ct, f"{100 * tt / total:.1f} %")
                        for (f, line, name), (_cc, nc, tt, ct, _callers) in rows]))
    return "\n".join(lines), total
