from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shoal.executor.base import STDERR, STDOUT, LogLine
from shoal.executor.process.logfile import (
    LineJoiner,
    Record,
    follow_lines,
    format_record,
    lines_from,
    parse_record,
    read_lines,
    select,
)

T0 = datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)


def rec(data: bytes, stream: int = STDOUT, partial: bool = False, at: datetime = T0) -> bytes:
    return format_record(Record(stream, at, partial, data))


def test_record_format_is_cri() -> None:
    assert rec(b"hello world") == b"2026-01-01T12:00:00.123456000Z stdout F hello world\n"
    assert rec(b"x", STDERR, partial=True).split(b" ")[1:3] == [b"stderr", b"P"]


def test_parse_round_trip_keeps_spaces_and_empty_lines() -> None:
    for data in (b"a b  c", b"", b" leading"):
        record = parse_record(rec(data))
        assert record is not None and record.data == data and record.timestamp == T0


def test_garbage_is_skipped() -> None:
    assert parse_record(b"not a record") is None
    assert parse_record(b"2026-01-01T00:00:00Z stdin F x") is None


def test_partials_join_per_stream() -> None:
    raw = [rec(b"ab", partial=True), rec(b"err", STDERR), rec(b"cd")]
    lines = list(lines_from(raw))
    assert [(line.stream, line.data) for line in lines] == [(STDERR, b"err\n"), (STDOUT, b"abcd\n")]


def test_joiner_stamps_a_joined_line_with_its_first_chunk() -> None:
    joiner = LineJoiner()
    assert joiner.feed(Record(STDOUT, T0, True, b"a")) is None
    line = joiner.feed(Record(STDOUT, T0 + timedelta(seconds=1), False, b"b"))
    assert line == LogLine(STDOUT, T0, b"ab\n")


def test_select_tail_and_since() -> None:
    lines = [LogLine(STDOUT, T0 + timedelta(seconds=i), f"{i}\n".encode()) for i in range(5)]
    assert select(lines, tail=2, since=None) == lines[3:]
    assert select(lines, tail=0, since=None) == []
    assert select(lines, tail=None, since=T0 + timedelta(seconds=3)) == lines[3:]
    assert select(lines, tail=1, since=T0) == lines[4:]


def test_read_lines_takes_the_rotated_file_first_and_skips_an_unfinished_record(tmp_path: Path) -> None:
    log = tmp_path / "log"
    (tmp_path / "log.1").write_bytes(rec(b"old"))
    log.write_bytes(rec(b"new") + b"2026-01-01T12:00:00Z stdout F half-writ")
    assert [line.data for line in read_lines(log)] == [b"old\n", b"new\n"]


async def test_follow_yields_history_then_new_lines_until_finished(tmp_path: Path) -> None:
    log = tmp_path / "log"
    log.write_bytes(rec(b"one"))
    done = False
    seen: list[bytes] = []

    async def reader() -> None:
        async for line in follow_lines(log, tail=None, since=None, finished=lambda: done, poll_interval=0.01):
            seen.append(line.data)

    task = asyncio.create_task(reader())
    while seen != [b"one\n"]:
        await asyncio.sleep(0.01)
    with open(log, "ab") as f:
        f.write(rec(b"tw", partial=True))
        f.flush()
        f.write(rec(b"o"))
    while len(seen) < 2:
        await asyncio.sleep(0.01)
    done = True
    await asyncio.wait_for(task, 5)
    assert seen == [b"one\n", b"two\n"]


async def test_follow_crosses_a_rotation(tmp_path: Path) -> None:
    log = tmp_path / "log"
    log.write_bytes(rec(b"a"))
    seen: list[bytes] = []
    state = {"done": False}

    async def reader() -> None:
        async for line in follow_lines(log, tail=None, since=None, finished=lambda: state["done"], poll_interval=0.01):
            seen.append(line.data)

    task = asyncio.create_task(reader())
    while not seen:
        await asyncio.sleep(0.01)
    with open(log, "ab") as f:
        f.write(rec(b"b"))
    log.rename(tmp_path / "log.1")
    log.write_bytes(rec(b"c"))
    while len(seen) < 3:
        await asyncio.sleep(0.01)
    state["done"] = True
    await asyncio.wait_for(task, 5)
    assert seen == [b"a\n", b"b\n", b"c\n"]


async def test_follow_completes_a_line_that_was_partial_when_history_ended(tmp_path: Path) -> None:
    log = tmp_path / "log"
    log.write_bytes(rec(b"start-", partial=True))
    state = {"done": False}
    seen: list[bytes] = []

    async def reader() -> None:
        async for line in follow_lines(log, tail=None, since=None, finished=lambda: state["done"], poll_interval=0.01):
            seen.append(line.data)

    task = asyncio.create_task(reader())
    await asyncio.sleep(0.05)
    with open(log, "ab") as f:
        f.write(rec(b"end"))
    while not seen:
        await asyncio.sleep(0.01)
    state["done"] = True
    await asyncio.wait_for(task, 5)
    assert seen == [b"start-end\n"]
