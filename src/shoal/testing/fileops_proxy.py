"""A FileOps that forwards every call to another one, through one hook: the base of the fault
wrappers (stalled fsyncs, power cuts) that the raft tests put between a WAL and its file system."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from shoal.manager.wal.fileops import FileOps

T = TypeVar("T")


class FileOpsProxy:
    """Forwards to ``inner``. Subclasses override ``_call`` (every call) or single methods."""

    def __init__(self, inner: FileOps) -> None:
        self.inner = inner

    def _call(self, name: str, mutating: bool, fn: Callable[[], T]) -> T:
        """Run one forwarded call; ``mutating`` calls change what a crash could keep or lose."""
        return fn()

    def makedirs(self, path: str) -> None:
        self._call("makedirs", True, lambda: self.inner.makedirs(path))

    def listdir(self, path: str) -> list[str]:
        return self._call("listdir", False, lambda: self.inner.listdir(path))

    def exists(self, path: str) -> bool:
        return self._call("exists", False, lambda: self.inner.exists(path))

    def read_file(self, path: str) -> bytes:
        return self._call("read_file", False, lambda: self.inner.read_file(path))

    def open_append(self, path: str) -> int:
        return self._call("open_append", True, lambda: self.inner.open_append(path))

    def open_truncated(self, path: str) -> int:
        return self._call("open_truncated", True, lambda: self.inner.open_truncated(path))

    def write(self, fd: int, data: bytes) -> int:
        return self._call("write", True, lambda: self.inner.write(fd, data))

    def fsync(self, fd: int) -> None:
        self._call("fsync", True, lambda: self.inner.fsync(fd))

    def truncate(self, fd: int, size: int) -> None:
        self._call("truncate", True, lambda: self.inner.truncate(fd, size))

    def size(self, fd: int) -> int:
        return self._call("size", False, lambda: self.inner.size(fd))

    def close(self, fd: int) -> None:
        self._call("close", False, lambda: self.inner.close(fd))

    def rename(self, src: str, dst: str) -> None:
        self._call("rename", True, lambda: self.inner.rename(src, dst))

    def unlink(self, path: str) -> None:
        self._call("unlink", True, lambda: self.inner.unlink(path))

    def fsync_dir(self, path: str) -> None:
        self._call("fsync_dir", True, lambda: self.inner.fsync_dir(path))
