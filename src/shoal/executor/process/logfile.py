"""Task log files as the shim writes them, in the CRI log format containerd uses:
`<RFC 3339 nano timestamp> <stdout|stderr> <F|P> <bytes>\\n`, F ending a line, P a chunk of a longer one.
The file rotates once to `log.1` at the size limit. This module reads them back as LogLines."""

from __future__ import annotations

import asyncio
import os
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from shoal.base.clock import parse_rfc3339, rfc3339
from shoal.executor.base import STDERR, STDOUT, LogLine

_STREAMS = {b"stdout": STDOUT, b"stderr": STDERR}
_NAMES = {STDOUT: b"stdout", STDERR: b"stderr"}


@dataclass(frozen=True)
class Record:
    stream: int
    timestamp: datetime
    partial: bool
    data: bytes  # without the record's own newline


def format_record(record: Record) -> bytes:
    tag = b"P" if record.partial else b"F"
    stamp = rfc3339(record.timestamp).encode()
    return b" ".join((stamp, _NAMES[record.stream], tag, record.data)) + b"\n"


def parse_record(raw: bytes) -> Record | None:
    """One record line (its newline stripped or not); None if it is not one."""
    raw = raw.removesuffix(b"\n")
    parts = raw.split(b" ", 3)
    if len(parts) < 3 or parts[1] not in _STREAMS or parts[2] not in (b"F", b"P"):
        return None
    try:
        stamp = parse_rfc3339(parts[0].decode())
    except ValueError:
        return None
    data = parts[3] if len(parts) == 4 else b""
    return Record(_STREAMS[parts[1]], stamp, parts[2] == b"P", data)


class LineJoiner:
    """Joins partial records of a stream into whole LogLines (each ending in b"\\n")."""

    def __init__(self) -> None:
        self._pending: dict[int, tuple[datetime, bytearray]] = {}

    def feed(self, record: Record) -> LogLine | None:
        start, buf = self._pending.pop(record.stream, (record.timestamp, bytearray()))
        buf += record.data
        if record.partial:
            self._pending[record.stream] = (start, buf)
            return None
        return LogLine(record.stream, start, bytes(buf) + b"\n")


def lines_from(raw_lines: Iterable[bytes], joiner: LineJoiner | None = None) -> Iterator[LogLine]:
    joiner = joiner or LineJoiner()
    for raw in raw_lines:
        record = parse_record(raw)
        if record is not None and (line := joiner.feed(record)) is not None:
            yield line


def select(lines: Iterable[LogLine], *, tail: int | None, since: datetime | None) -> list[LogLine]:
    """Docker's filters: lines at or after `since`, then the last `tail` of them (None: all)."""
    chosen: Iterable[LogLine] = lines
    if since is not None:
        chosen = (line for line in chosen if line.timestamp >= since)
    if tail is None:
        return list(chosen)
    if tail <= 0:
        return []
    return list(deque(chosen, maxlen=tail))


def _complete_lines(content: bytes) -> list[bytes]:
    """Whole records only: a last line still being written is left for later."""
    return content[: content.rfind(b"\n") + 1].splitlines(keepends=True)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""


def read_lines(log_path: Path) -> list[LogLine]:
    """Everything kept: the rotated file first, then the current one."""
    rotated = Path(f"{log_path}.1")
    return list(lines_from([*_complete_lines(_read(rotated)), *_complete_lines(_read(log_path))]))


async def follow_lines(
    log_path: Path,
    *,
    tail: int | None,
    since: datetime | None,
    finished: Callable[[], bool],
    poll_interval: float = 0.1,
) -> AsyncIterator[LogLine]:
    """What is kept (filtered), then new lines as they are written, until `finished()` says the
    writer is done and the file has nothing more. Follows a rotation to log.1 by inode."""
    fd = _open_or_none(log_path)
    try:
        current = _read_fd(fd) if fd is not None else b""
        position = current.rfind(b"\n") + 1
        inode = os.fstat(fd).st_ino if fd is not None else None
        joiner = LineJoiner()  # shared, so a line still being written when history ends is completed
        kept = [*_complete_lines(_read(Path(f"{log_path}.1"))), *_complete_lines(current)]
        for line in select(list(lines_from(kept, joiner)), tail=tail, since=since):
            yield line
        pending = b""
        while True:
            done = finished()  # asked before draining, so the writer's last lines are never missed
            if fd is None:
                fd = _open_or_none(log_path)
                position = 0
                inode = os.fstat(fd).st_ino if fd is not None else None
            if fd is not None:
                chunk = os.pread(fd, 1 << 16, position)
                while chunk:
                    position += len(chunk)
                    pending += chunk
                    *complete, pending = pending.split(b"\n")
                    for line in lines_from((c + b"\n" for c in complete), joiner):
                        if since is None or line.timestamp >= since:
                            yield line
                    chunk = os.pread(fd, 1 << 16, position)
                if _inode(log_path) != inode:  # rotated: the old file is complete, go on with the new one
                    os.close(fd)
                    fd = None
                    pending = b""
                    continue
            if done:
                break
            await asyncio.sleep(poll_interval)
    finally:
        if fd is not None:
            os.close(fd)


def _read_fd(fd: int) -> bytes:
    return os.pread(fd, os.fstat(fd).st_size, 0)


def _open_or_none(path: Path) -> int | None:
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return None
