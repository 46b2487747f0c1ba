"""The few file-system calls the storage makes, behind a Protocol.

Production uses ``OsFileOps`` (plain ``os`` calls). Tests hand in
``shoal.testing.memfs.MemoryFS``, which remembers what was fsynced and can simulate a crash
(lose what was not), a full disk or a failing fsync, so every durability claim of the WAL can
be checked without real power cuts.
Paths are plain strings; files are small integer handles, as with ``os.open``.
"""

from __future__ import annotations

import os
from typing import Protocol


class FileOps(Protocol):
    def makedirs(self, path: str) -> None:
        """Create ``path`` (and parents) with mode 0700 if missing."""
        ...

    def listdir(self, path: str) -> list[str]: ...

    def exists(self, path: str) -> bool: ...

    def read_file(self, path: str) -> bytes: ...

    def open_append(self, path: str) -> int:
        """Open for appending, creating the file (mode 0600) if missing."""
        ...

    def open_truncated(self, path: str) -> int:
        """Open for writing from empty, creating the file (mode 0600) if missing."""
        ...

    def write(self, fd: int, data: bytes) -> int:
        """Write like ``os.write``: may write fewer bytes; raises OSError (ENOSPC, EIO, ...)."""
        ...

    def fsync(self, fd: int) -> None: ...

    def truncate(self, fd: int, size: int) -> None: ...

    def size(self, fd: int) -> int: ...

    def close(self, fd: int) -> None: ...

    def rename(self, src: str, dst: str) -> None: ...

    def unlink(self, path: str) -> None: ...

    def fsync_dir(self, path: str) -> None:
        """Make creations, renames and unlinks inside directory ``path`` durable."""
        ...


def write_all(ops: FileOps, fd: int, data: bytes) -> None:
    """Write every byte of ``data`` (``write`` may be partial), raising OSError on failure."""
    offset = 0
    while offset < len(data):
        written = ops.write(fd, data[offset:])  # a full slice of bytes is the object itself
        if written <= 0:
            raise OSError(f"write returned {written}")
        offset += written


class OsFileOps:
    """The real thing."""

    def makedirs(self, path: str) -> None:
        os.makedirs(path, mode=0o700, exist_ok=True)

    def listdir(self, path: str) -> list[str]:
        return os.listdir(path)

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def read_file(self, path: str) -> bytes:
        with open(path, "rb") as f:
            return f.read()

    def open_append(self, path: str) -> int:
        return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def open_truncated(self, path: str) -> int:
        return os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def write(self, fd: int, data: bytes) -> int:
        return os.write(fd, data)

    def fsync(self, fd: int) -> None:
        os.fsync(fd)

    def truncate(self, fd: int, size: int) -> None:
        os.ftruncate(fd, size)

    def size(self, fd: int) -> int:
        return os.fstat(fd).st_size

    def close(self, fd: int) -> None:
        os.close(fd)

    def rename(self, src: str, dst: str) -> None:
        os.rename(src, dst)

    def unlink(self, path: str) -> None:
        os.unlink(path)

    def fsync_dir(self, path: str) -> None:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
