"""Errors of the durable raft storage: every one names the file, the offset and why."""

from __future__ import annotations


class WALError(Exception):
    """Base class of every error the wal package raises on purpose."""


class WALCorrupted(WALError):
    """Stored data is damaged in a way recovery must not paper over (it is not a torn tail)."""

    def __init__(self, path: str, offset: int, why: str) -> None:
        super().__init__(f"{path}: offset {offset}: {why}")
        self.path = path
        self.offset = offset
        self.why = why


class WrongDataKey(WALError):
    """The data was sealed with a data key this manager does not hold."""

    def __init__(self, path: str, offset: int, why: str) -> None:
        super().__init__(f"{path}: offset {offset}: {why}")
        self.path = path
        self.offset = offset
        self.why = why


class WALWriteError(WALError):
    """A write or fsync failed (disk full, I/O error); nothing of the failed batch is durable."""

    def __init__(self, path: str, why: str, errno: int | None = None) -> None:
        super().__init__(f"{path}: {why}")
        self.path = path
        self.errno = errno


class WALBroken(WALError):
    """An earlier failure left the on-disk state unknown; close and recover before writing again."""
