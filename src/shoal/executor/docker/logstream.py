"""GET /containers/{id}/logs?timestamps=1 → LogLine values.

Without a TTY the engine sends stdcopy frames, one log entry per frame: `<RFC3339Nano> <text>`.
With a TTY it sends one raw stream of such entries, all counted as stdout. Pure parsing plus one
async adapter, so it is unit tested without an engine."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from datetime import UTC, datetime

from shoal.base.clock import parse_rfc3339
from shoal.executor.base import STDERR, STDOUT, LogLine
from shoal.executor.docker.stdcopy import FrameDecoder, LineSplitter, Stream


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
            for line in splitter.feed(chunk):
                yield parse_entry(STDOUT, line)
        rest = splitter.flush()
        if rest:
            yield parse_entry(STDOUT, rest)
        return
    decoder = FrameDecoder()
    async for chunk in chunks:
        for stream, payload in decoder.feed(chunk):
            yield parse_entry(STDERR if stream is Stream.STDERR else STDOUT, payload)
