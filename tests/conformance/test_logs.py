"""Logs: streams kept apart, timestamps, tail, since, follow."""

from __future__ import annotations

from shoal.executor.base import STDERR, STDOUT, LogLine

from .conftest import Harness, within


async def test_stdout_and_stderr_are_kept_apart(harness: Harness) -> None:
    controller, _ = await harness.finished("echo out1; echo err1 >&2; echo out2; echo err2 >&2")
    lines = [line async for line in controller.logs()]
    assert [line.data for line in lines if line.stream == STDOUT] == [b"out1\n", b"out2\n"]
    assert [line.data for line in lines if line.stream == STDERR] == [b"err1\n", b"err2\n"]
    stamps = [line.timestamp for line in lines]
    assert all(stamp.tzinfo is not None for stamp in stamps)
    assert stamps == sorted(stamps)


async def test_tail_and_since(harness: Harness) -> None:
    controller, _ = await harness.finished("for i in 1 2 3 4 5; do echo line$i; done")
    tail = [line.data async for line in controller.logs(tail=2)]
    assert tail == [b"line4\n", b"line5\n"]
    assert [line async for line in controller.logs(tail=0)] == []
    everything = [line async for line in controller.logs()]
    since = everything[2].timestamp
    later = [line.data async for line in controller.logs(since=since)]
    assert later[-1] == b"line5\n"
    assert b"line1\n" not in later or everything[0].timestamp >= since


async def test_a_last_line_without_newline_is_kept(harness: Harness) -> None:
    controller, _ = await harness.finished("printf 'partial'")
    assert [line.data async for line in controller.logs()] == [b"partial\n"]


async def test_follow_streams_until_the_task_exits(harness: Harness) -> None:
    controller = await harness.started("for i in 1 2 3; do echo tick$i; sleep 0.2; done; echo bye >&2")

    async def collect() -> list[LogLine]:
        return [line async for line in controller.logs(follow=True)]

    lines = await within(collect())
    assert [line.data for line in lines] == [b"tick1\n", b"tick2\n", b"tick3\n", b"bye\n"]
    assert lines[-1].stream == STDERR


async def test_logs_by_container_id(harness: Harness) -> None:
    _, status = await harness.finished("echo via-executor")
    lines = [line.data async for line in harness.executor.logs(status.container_id)]
    assert lines == [b"via-executor\n"]
