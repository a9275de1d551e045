"""Large MySQL writes spread over two connections (``write_connections``): the plan, the
all-or-again error handling, and the real thing on MariaDB."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncmy.errors
import pytest

from storage import WriteBatch, open_store
from storage._mysql import SPREAD_MIN_ROWS, _split, _write_aio, connect_settings

from ._data import market_row, trade_row
from .conftest import mysql_url

SQL = {"markets": "M", "trades": "T"}


def _rows(n: int) -> list[tuple[int]]:
    return [(i,) for i in range(n)]


def test_a_large_batch_of_trades_is_spread_evenly_and_the_rest_goes_with_the_first_part() -> None:
    trades = _rows(5 * SPREAD_MIN_ROWS + 1)
    parts = _split([("markets", _rows(3)), ("trades", trades)], SQL, connections=2)
    assert len(parts) == 2
    assert parts[0][0] == ("M", _rows(3))
    first = [r for sql, rows in parts[0] if sql == "T" for r in rows]
    second = [r for sql, rows in parts[1] for r in rows]
    assert all(sql == "T" for sql, _ in parts[1])
    assert first + second == trades  # every row once, in order
    assert abs(len(first) - len(second)) <= 1


@pytest.mark.parametrize(("trades", "connections", "expected"), [
    (2 * SPREAD_MIN_ROWS - 1, 2, 1),  # too few to be worth two transactions
    (2 * SPREAD_MIN_ROWS, 2, 2),
    (10 * SPREAD_MIN_ROWS, 1, 1),     # write_connections=1: always one transaction
    (10 * SPREAD_MIN_ROWS, 3, 3),
    (0, 2, 1),
])
def test_how_many_parts(trades: int, connections: int, expected: int) -> None:
    parts = _split([("markets", _rows(1)), ("trades", _rows(trades))], SQL, connections=connections)
    assert len(parts) == expected
    assert sum(len(rows) for part in parts for sql, rows in part if sql == "T") == trades


# -- the error handling, against a stand-in pool ---------------------------------------------------


class _Cursor:
    def __init__(self, conn: _Conn) -> None:
        self.conn = conn

    async def executemany(self, sql: str, rows: Any) -> None:
        await asyncio.sleep(0)  # both parts are under way before either fails
        pool = self.conn.pool
        failure = pool.failures.get(sql)
        if failure is not None and pool.in_use > 1:
            raise failure
        self.conn.statements.append((sql, rows))

    async def close(self) -> None:
        pass


class _Conn:
    def __init__(self, pool: _Pool) -> None:
        self.pool = pool
        self.statements: list[tuple[str, Any]] = []

    def cursor(self) -> _Cursor:
        return _Cursor(self)

    async def commit(self) -> None:
        self.pool.committed.append(self.statements)

    def close(self) -> None:  # synchronous, as asyncmy's
        self.pool.closed_connections += 1


class _Pool:
    """Hands out connections; ``failures`` by statement, raised while two are in use."""

    def __init__(self, failures: dict[str, BaseException]) -> None:
        self.failures = failures
        self.in_use = 0
        self.committed: list[list[tuple[str, Any]]] = []
        self.closed_connections = 0

    def acquire(self) -> Any:
        pool = self

        class _Acquire:
            async def __aenter__(self) -> _Conn:
                pool.in_use += 1
                return _Conn(pool)

            async def __aexit__(self, *exc: object) -> None:
                await asyncio.sleep(0)
                pool.in_use -= 1

        return _Acquire()


def _parts() -> list[list[tuple[str, Any]]]:
    return [[("M", [1]), ("A", [2])], [("B", [3])]]


def test_a_deadlock_between_the_parts_writes_the_batch_again_on_one_connection() -> None:
    pool = _Pool({"A": asyncmy.errors.OperationalError(1213, "Deadlock found"),
                  "B": asyncmy.errors.OperationalError(1213, "Deadlock found")})
    asyncio.run(_write_aio(pool, _parts()))
    assert pool.committed == [[("M", [1]), ("A", [2]), ("B", [3])]]  # all of it, in order, once
    assert pool.closed_connections == 2


def test_one_part_failing_raises_once_both_have_ended_and_the_other_is_committed() -> None:
    lost = asyncmy.errors.OperationalError(2013, "Lost connection to server during query")
    pool = _Pool({"B": lost})
    with pytest.raises(asyncmy.errors.OperationalError) as caught:
        asyncio.run(_write_aio(pool, _parts()))
    assert caught.value is lost
    assert pool.committed == [[("M", [1]), ("A", [2])]]  # the writer writes the whole batch again
    assert pool.in_use == 0


def test_a_real_error_wins_over_a_deadlock_in_the_other_part() -> None:
    refused = asyncmy.errors.DataError(1406, "Data too long")
    pool = _Pool({"A": asyncmy.errors.OperationalError(1213, "Deadlock found"), "B": refused})
    with pytest.raises(asyncmy.errors.DataError):
        asyncio.run(_write_aio(pool, _parts()))
    assert pool.committed == []


# -- MariaDB --------------------------------------------------------------------------------------


def test_write_connections_option() -> None:
    assert connect_settings(mysql_url("x"), 10).write_connections == 2
    assert connect_settings(mysql_url("x", query="?write_connections=1"), 10).write_connections == 1
    with pytest.raises(ValueError, match="write_connections='0'"):
        connect_settings(mysql_url("x", query="?write_connections=0"), 10)


@pytest.mark.parametrize("connections", [1, 2])
async def test_a_spread_batch_is_stored_once_and_writing_it_again_changes_nothing(
        mysql_database: str, connections: int) -> None:
    rows = [trade_row(i, whale=i % 7 == 0, market=i % 30) for i in range(3 * SPREAD_MIN_ROWS)]
    batch = WriteBatch(markets=[market_row(1)], trades=rows)
    async with open_store(mysql_url(mysql_database, query=f"?write_connections={connections}")) as store:
        await store.migrate()
        await store.write(batch)
        await store.write(batch)
        assert await store.count("trades") == len(rows)
        assert await store.count("markets") == 1
        assert await store.keys("trades") == {r.trade_id for r in rows}
        whales = await store.recent_whales(10_000)
        assert {w.trade_id for w in whales} == {r.trade_id for r in rows if r.is_whale}
