"""The local journal: append-only JSON lines, replayed in order, then removed."""

from __future__ import annotations

from pathlib import Path

import orjson

from storage import Journal, row_from_json, row_to_json

from ._data import market_row, model_forecast, swarm_forecast, trade_row


def test_rows_round_trip_through_json() -> None:
    for row in (trade_row(1, whale=True), market_row(2, last_price=None), model_forecast(3, ok=False),
                swarm_forecast(4)):
        assert row_from_json(orjson.loads(orjson.dumps(row_to_json(row)))) == row


async def test_append_read_advance_remove(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl")
    assert not journal.pending
    rows = [trade_row(i) for i in range(10)] + [market_row(1)]
    written = await journal.append([(row, 100.0 + i) for i, row in enumerate(rows)])
    assert written == journal.size == journal.path.stat().st_size
    assert journal.rows == 11 and journal.pending and journal.oldest_at == 100.0

    first = await journal.read(4)
    assert first.rows == rows[:4] and (first.first_at, first.last_at) == (100.0, 103.0)
    assert await journal.read(4) == first  # nothing moves until advanced
    journal.advance(first)
    assert journal.rows == 7 and journal.oldest_at == 103.0
    assert not await journal.remove_if_replayed()

    # appends while replaying land after what is being replayed
    await journal.append([(trade_row(99), 200.0)])
    rest = await journal.read(100)
    assert rest.rows == rows[4:] + [trade_row(99)]
    journal.advance(rest)
    assert journal.rows == 0 and not journal.pending
    assert await journal.remove_if_replayed()
    assert not journal.path.exists() and journal.size == 0
    assert (await journal.read(10)).rows == []


async def test_an_earlier_runs_journal_is_counted_and_a_cut_line_skipped(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    first = Journal(path)
    await first.append([(trade_row(i), 1.0) for i in range(3)])
    with path.open("ab") as f:  # a crash in the middle of an append
        f.write(b'{"t": "trades", "trade_id": "cut sh')

    again = Journal(path)
    await again.scan()
    assert again.rows == 4 and again.oldest_at == 1.0
    await again.append([(trade_row(7), 2.0)])  # terminates the cut line first
    chunk = await again.read(100)
    assert chunk.rows == [trade_row(0), trade_row(1), trade_row(2), trade_row(7)]
    assert chunk.skipped == 1
    again.advance(chunk)
    assert again.rows == 0 and again.corrupt_lines == 1
    assert await again.remove_if_replayed()


async def test_compact_drops_the_replayed_head(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl")
    await journal.append([(trade_row(i), float(i)) for i in range(6)])
    journal.advance(await journal.read(4))
    await journal.compact()
    again = Journal(journal.path)
    chunk = await again.read(100)
    assert chunk.rows == [trade_row(4), trade_row(5)]
    assert again.rows == 2
