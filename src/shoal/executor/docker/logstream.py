"""Container logs: GET /containers/{id}/logs?timestamps=1 → LogLine values.

Without a TTY the engine sends stdcopy frames, one log entry per frame: `<RFC3339Nano> <text>`.
With a TTY it sends one raw stream of such entries, all counted as stdout. The parsing is pure, so it
is unit tested without an engine."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterable, AsyncIterator
from datetime import UTC, datetime
from typing import Any

from shoal.base.clock import parse_rfc3339
from shoal.executor.base import STDERR, STDOUT, LogLine
from shoal.executor.docker.engine import EngineClient, EngineNotFound, iter_chunks
from shoal.executor.docker.stdcopy import FrameDecoder, LineSplitter, Stream
from shoal.executor.errors import ContainerNotFound


def parse_entry(stream: int, entry: bytes) -> LogLine:
    """`<timestamp> <text>`; an entry without a readable timestamp keeps its text and gets epoch 0,
    so no output is ever dropped."""
    stamp, sep, text = entry.partition(b" ")
    try:
        moment = parse_rfc3339(stamp.decode("ascii")) if sep else None
    except (UnicodeDecodeError, ValueError):
        moment = None
    if moment is None:
        moment, text = datetime.fromtimestamp(0, UTC), entry
    if not text.endswith(b"\n"):
        text += b"\n"
    return LogLine(stream=stream, timestamp=moment, data=text)


async def log_lines(chunks: AsyncIterable[bytes], *, tty: bool) -> AsyncIterator[LogLine]:
    if tty:
        splitter = LineSplitter()
        async for chunk in chunks:
            for raw in splitter.feed(chunk):
                yield parse_entry(STDOUT, raw)
        rest = splitter.flush()
        if rest:
            yield parse_entry(STDOUT, rest)
        return
    decoder = FrameDecoder()
    order = TimestampOrder()
    async for chunk in chunks:
        batch = [
            parse_entry(STDERR if stream is Stream.STDERR else STDOUT, payload)
            for stream, payload in decoder.feed(chunk)
        ]
        for entry in order.sorted(batch):
            yield entry


class TimestampOrder:
    """Keeps stdout and stderr lines in time order. The engine stamps each stream's lines as it reads
    them but writes the two streams to its log under one lock, so now and then a line lands just
    before a slightly older one of the other stream. Each received batch is sorted; a line that
    still comes out older than one already given (a batch boundary fell in between) is given the
    previous timestamp, so timestamps never go back."""

    def __init__(self) -> None:
        self._last: datetime | None = None

    def sorted(self, batch: list[LogLine]) -> list[LogLine]:
        ordered: list[LogLine] = []
        for line in sorted(batch, key=lambda entry: entry.timestamp):
            if self._last is not None and line.timestamp < self._last:
                line = dataclasses.replace(line, timestamp=self._last)
            self._last = line.timestamp
            ordered.append(line)
        return ordered


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def logs_params(*, follow: bool, tail: int | None, since: datetime | None) -> dict[str, Any]:
    params: dict[str, Any] = {
        "stdout": True,
        "stderr": True,
        "timestamps": True,
        "follow": follow,
        "tail": "all" if tail is None else max(0, tail),
    }
    if since is not None:
        params["since"] = unix_timestamp(since)
    return params


def unix_timestamp(moment: datetime) -> str:
    """`seconds.nanoseconds`, exactly: a float would round and could skip the very entry `since` names."""
    elapsed = moment.astimezone(UTC) - EPOCH
    seconds = elapsed.days * 86_400 + elapsed.seconds
    return f"{seconds}.{elapsed.microseconds:06d}000"


async def stream_logs(
    engine: EngineClient,
    container: str,
    *,
    follow: bool,
    tail: int | None,
    since: datetime | None,
) -> AsyncIterator[LogLine]:
    """Shared by Controller.logs and Executor.logs (by id). A TTY container's output is one raw stream."""
    try:
        inspect = await engine.call("GET", f"/containers/{container}/json")
    except EngineNotFound:
        raise ContainerNotFound(container) from None
    tty = bool((inspect.get("Config") or {}).get("Tty"))
    params = logs_params(follow=follow, tail=tail, since=since)
    async with engine.stream("GET", f"/containers/{inspect['Id']}/logs", params=params) as response:
        async for line in log_lines(iter_chunks(response), tty=tty):
            yield line
