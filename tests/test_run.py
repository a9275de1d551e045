"""The command line as an operator meets it: help, config check, bad settings, signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: never reach out to the real Polymarket or OpenRouter from a test: port 9 on loopback refuses
LOOPBACK_ENDPOINTS = {"POLYMARKET_WS_URL": "ws://127.0.0.1:9/ws/market", "POLYMARKET_RTDS_URL": "ws://127.0.0.1:9",
                      "GAMMA_API_URL": "http://127.0.0.1:9", "DATA_API_URL": "http://127.0.0.1:9",
                      "OPENROUTER_BASE_URL": "http://127.0.0.1:9", "WS_SERVER_PORT": "0", "HTTP_PORT": "0"}


def run_py(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
           timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "run.py"), *args], capture_output=True, text=True,
                          env=_env(env), cwd=cwd or ROOT, timeout=timeout)


def _env(extra: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.isupper() or k in ("PATH", "HOME", "LANG", "TMPDIR")}
    env.update(LOOPBACK_ENDPOINTS)
    env.update(extra or {})
    return env


def test_help_lists_the_flags() -> None:
    result = run_py("--help")
    assert result.returncode == 0
    for flag in ("--check-config", "--chaos"):
        assert flag in result.stdout


def test_check_config_prints_masked_settings(tmp_path: Path) -> None:
    result = run_py("--check-config", env={"OPENROUTER_API_KEY": "sk-or-v1-secret",
                                           "DATABASE_URL": "mysql://u:pw-secret@h:3306/db"}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "WHALE_TRADE_THRESHOLD" in result.stdout and "10000" in result.stdout
    assert "mysql://u:***@h:3306/db" in result.stdout
    assert "sk-or-v1-secret" not in result.stdout and "pw-secret" not in result.stdout


def test_check_config_reads_dotenv_in_working_directory(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("WHALE_TRADE_THRESHOLD=12345\n")
    result = run_py("--check-config", cwd=tmp_path)
    assert result.returncode == 0
    assert "12345" in result.stdout


def test_bad_setting_exits_2_with_one_line() -> None:
    result = run_py(env={"WHALE_TRADE_THRESHOLD": "abc"})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "WHALE_TRADE_THRESHOLD" in lines[0] and "expected a number" in lines[0]
    assert "Traceback" not in result.stderr


def test_unimportable_filter_hook_exits_2_with_one_line() -> None:
    result = run_py(env={"MARKET_FILTER_HOOK": "no_such_module:should_ignore_market"})
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "MARKET_FILTER_HOOK" in result.stderr


def test_bad_argument_exits_2() -> None:
    result = run_py("--chaos", "-1")
    assert result.returncode == 2


def _start(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(ROOT / "run.py"), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
                            env=_env({"STATUS_LOG_INTERVAL": "0.2", **(env or {})}))


def _wait_for(proc: subprocess.Popen[str], needle: str, lines: list[str], limit: float = 20) -> None:
    assert proc.stdout is not None
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if needle in line:
            return
    raise AssertionError(f"{needle!r} not seen in output:\n{''.join(lines)}")


def test_sigterm_stops_in_order_and_exits_0(tmp_path: Path) -> None:
    proc = _start(tmp_path)
    lines: list[str] = []
    try:
        _wait_for(proc, "status:", lines)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    finally:
        proc.kill()
    lines.append(out)
    text = "".join(lines)
    assert proc.returncode == 0, text
    assert "received SIGTERM" in text and "stopped cleanly" in text


async def test_second_signal_forces_exit() -> None:
    # in-process, so an actor that ignores the stop request can be added to the tree
    import trio

    import run
    from actors import ServiceOptions
    from config import load_settings
    from supervision import ChildSpec

    stubborn_started = trio.Event()

    async def stubborn(ctx, *, task_status=trio.TASK_STATUS_IGNORED):  # type: ignore[no-untyped-def]
        task_status.started()
        stubborn_started.set()
        await trio.sleep(3600)  # ignores the stop request; shutdown=None waits for it forever

    settings = load_settings({"STATUS_LOG_INTERVAL": "0", **LOOPBACK_ENDPOINTS}, env_file=None)
    spec = ChildSpec(id="stubborn", run=stubborn, shutdown=None)
    async with trio.open_nursery() as nursery:
        async def signal_twice() -> None:
            await stubborn_started.wait()
            os.kill(os.getpid(), signal.SIGINT)
            await trio.sleep(0.2)
            os.kill(os.getpid(), signal.SIGTERM)

        nursery.start_soon(signal_twice)
        with trio.fail_after(10):
            code = await run.serve(settings, ServiceOptions(), extra_children=[spec])
    assert code == 130


def test_chaos_mode_kills_and_restarts(tmp_path: Path) -> None:
    proc = _start(tmp_path, "--chaos", "600", "--seed", "3")
    lines: list[str] = []
    try:
        _wait_for(proc, "chaos: killed", lines)
        _wait_for(proc, "restarting", lines)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, "".join(lines) + out


def test_invalid_database_url_options_exit_2_with_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-ca.pem"
    for query, expected in ((f"ssl_ca={missing}", str(missing)), ("ssl=maybe", "ssl='maybe'"),
                            ("bogus=1", "unknown option 'bogus'")):
        result = run_py("--check-config", env={"DATABASE_URL": f"mysql://u:pw-secret@127.0.0.1:3306/db?{query}"})
        assert result.returncode == 2, result
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "invalid DATABASE_URL" in lines[0] and expected in lines[0], lines
        assert "pw-secret" not in result.stderr


def test_an_invalid_alerts_file_exits_2_with_one_line_naming_the_place(tmp_path: Path) -> None:
    bad = tmp_path / "alerts.toml"
    bad.write_text("[[outlets]]\nkind = 'discord'\nurl = 'https://discord.example/api/webhooks/1/secret-tok'\n"
                   "min_amount = 'lots'\n")
    result = run_py("--check-config", env={"ALERTS_FILE": str(bad)})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0] == (
        f"configuration error: invalid ALERTS_FILE: {bad}: outlets[1].min_amount: expected a number, got 'lots'")
    half = run_py("--check-config", env={"TELEGRAM_BOT_TOKEN": "123:tok"})
    assert half.returncode == 2 and "TELEGRAM_CHAT_ID" in half.stderr and "123:tok" not in half.stderr
