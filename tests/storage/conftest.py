"""Storage fixtures: the same tests against SQLite and a real MariaDB.

MariaDB must answer at 127.0.0.1:3306 as root with an empty password (``scripts/ensure-mariadb.sh``,
which ``test.sh`` runs); when it does not, the MariaDB tests FAIL, they are never skipped.  Each
MariaDB test gets a fresh database ``pmi_test_<random>``, dropped afterwards.  These tests use
real time: a MockClock would also drive asyncmy's timers against a real socket.
"""

from __future__ import annotations

import secrets
import socket
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncmy
import pytest
import trio
import trio_asyncio

from config import DatabaseUrl, parse_database_url
from tests._logs import capture_logs

MARIADB_HOST = "127.0.0.1"
MARIADB_PORT = 3306
ROOT = Path(__file__).resolve().parents[2]


def _reachable() -> bool:
    try:
        with socket.create_connection((MARIADB_HOST, MARIADB_PORT), timeout=2):
            return True
    except OSError:
        return False


def ensure_mariadb() -> None:
    """Fail the test unless MariaDB answers (starting it with ``scripts/ensure-mariadb.sh`` first)."""
    if _reachable():
        return
    script = ROOT / "scripts" / "ensure-mariadb.sh"
    result = subprocess.run([str(script)], capture_output=True, text=True, timeout=300, check=False)
    if result.returncode != 0 or not _reachable():
        pytest.fail(f"MariaDB is required at {MARIADB_HOST}:{MARIADB_PORT} (root, empty password) and is not "
                    f"reachable; {script.name} said: {result.stderr.strip()[-500:]}", pytrace=False)


@pytest.fixture(scope="session")
def mariadb() -> tuple[str, int]:
    """``(host, port)`` of the test MariaDB (the test fails if there is none)."""
    ensure_mariadb()
    return MARIADB_HOST, MARIADB_PORT


async def _admin_aio(sql: str) -> None:
    conn = await asyncmy.connect(host=MARIADB_HOST, port=MARIADB_PORT, user="root", password="", autocommit=True)
    try:
        async with conn.cursor() as cur:
            await cur.execute(sql)
    finally:
        conn.close()


async def admin(sql: str) -> None:
    """Run one statement as root on the test MariaDB (no database selected)."""
    async with trio_asyncio.open_loop() as loop:
        await trio_asyncio.aio_as_trio(_admin_aio, loop=loop)(sql)


def mysql_url(database: str, *, port: int = MARIADB_PORT, query: str = "") -> DatabaseUrl:
    return parse_database_url(f"mysql://root@{MARIADB_HOST}:{port}/{database}{query}")


@pytest.fixture
async def mysql_database(mariadb: tuple[str, int]) -> AsyncIterator[str]:
    """A fresh, empty MariaDB database (dropped after the test)."""
    name = f"pmi_test_{secrets.token_hex(6)}"
    await admin(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    try:
        yield name
    finally:
        with trio.CancelScope(shield=True):
            await admin(f"DROP DATABASE IF EXISTS {name}")


@pytest.fixture(params=["sqlite", "mariadb"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[DatabaseUrl]:
    """The database under test: a SQLite file, or a fresh MariaDB database."""
    if request.param == "sqlite":
        yield DatabaseUrl(kind="sqlite", path=str(tmp_path / "store.db"))
        return
    await trio.to_thread.run_sync(ensure_mariadb)
    name = f"pmi_test_{secrets.token_hex(6)}"
    await admin(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    try:
        yield mysql_url(name)
    finally:
        with trio.CancelScope(shield=True):
            await admin(f"DROP DATABASE IF EXISTS {name}")


@pytest.fixture
def log_records() -> Iterator[list[dict[str, Any]]]:
    with capture_logs() as records:
        yield records


def messages(records: list[dict[str, Any]], predicate: Callable[[str], bool]) -> list[str]:
    return [r["message"] for r in records if predicate(r["message"])]
