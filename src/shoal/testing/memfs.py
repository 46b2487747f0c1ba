"""An in-memory file system that knows what was fsynced: the fault layer of the WAL's tests.

It implements ``FileOps`` and models the POSIX durability rules the WAL relies on:
file contents are durable once the file is fsynced; a file's creation, rename or unlink is
durable once its directory is fsynced (directories themselves are durable when made).

Faults:
- ``crash("process")``: the process dies, the kernel keeps everything (nothing is lost);
- ``crash("power")``: everything not fsynced is lost;
- ``crash("torn", rng)``: a power cut during write-back: per file, a random part of the unsynced
  bytes survives (a prefix, or random 512-byte sectors with the others zeroed), and each
  directory keeps either its fsynced or its latest entries;
- ``write_budget``: bytes that may still be written; past it, writes stop short and then raise
  ENOSPC (disk full at byte N);
- ``fail_fsync``: fsync raises EIO.
No production module imports this.
"""

from __future__ import annotations

import errno
import os
import random
from dataclasses import dataclass, field
from typing import Literal

CrashKind = Literal["process", "power", "torn"]
_SECTOR = 512


@dataclass(eq=False)
class _Inode:
    data: bytearray = field(default_factory=bytearray)
    durable: bytes = b""


class MemoryFS:
    def __init__(self) -> None:
        self._dirs: dict[str, dict[str, _Inode]] = {}
        self._durable_dirs: dict[str, dict[str, _Inode]] = {}
        self._fds: dict[int, _Inode] = {}
        self._next_fd = 3
        self.write_budget: int | None = None
        self.fail_fsync = False
        self.fsyncs = 0
        self.dir_fsyncs = 0

    # --- helpers --------------------------------------------------------------------------

    def _split(self, path: str) -> tuple[dict[str, _Inode], str, str]:
        path = os.path.normpath(path)
        directory, name = os.path.split(path)
        entries = self._dirs.get(directory)
        if entries is None:
            raise FileNotFoundError(errno.ENOENT, "no such directory", directory)
        return entries, directory, name

    def _lookup(self, path: str) -> _Inode:
        entries, _, name = self._split(path)
        inode = entries.get(name)
        if inode is None:
            raise FileNotFoundError(errno.ENOENT, "no such file", path)
        return inode

    def _open(self, inode: _Inode) -> int:
        fd = self._next_fd
        self._next_fd += 1
        self._fds[fd] = inode
        return fd

    def _inode(self, fd: int) -> _Inode:
        inode = self._fds.get(fd)
        if inode is None:
            raise OSError(errno.EBADF, "bad file descriptor")
        return inode

    # --- FileOps --------------------------------------------------------------------------

    def makedirs(self, path: str) -> None:
        path = os.path.normpath(path)
        while path not in self._dirs:
            self._dirs[path] = {}
            self._durable_dirs[path] = {}
            parent = os.path.dirname(path)
            if parent == path:
                break
            path = parent

    def listdir(self, path: str) -> list[str]:
        entries = self._dirs.get(os.path.normpath(path))
        if entries is None:
            raise FileNotFoundError(errno.ENOENT, "no such directory", path)
        return sorted(entries)

    def exists(self, path: str) -> bool:
        path = os.path.normpath(path)
        if path in self._dirs:
            return True
        entries = self._dirs.get(os.path.dirname(path))
        return entries is not None and os.path.basename(path) in entries

    def read_file(self, path: str) -> bytes:
        return bytes(self._lookup(path).data)

    def open_append(self, path: str) -> int:
        entries, _, name = self._split(path)
        inode = entries.setdefault(name, _Inode())
        return self._open(inode)

    def open_truncated(self, path: str) -> int:
        fd = self.open_append(path)
        self._fds[fd].data.clear()
        return fd

    def write(self, fd: int, data: bytes) -> int:
        inode = self._inode(fd)
        count = len(data)
        if self.write_budget is not None:
            if self.write_budget <= 0 and count:
                raise OSError(errno.ENOSPC, "No space left on device")
            count = min(count, self.write_budget)
            self.write_budget -= count
        inode.data += data[:count]
        return count

    def fsync(self, fd: int) -> None:
        inode = self._inode(fd)
        if self.fail_fsync:
            raise OSError(errno.EIO, "Input/output error")
        inode.durable = bytes(inode.data)
        self.fsyncs += 1

    def truncate(self, fd: int, size: int) -> None:
        inode = self._inode(fd)
        if size <= len(inode.data):
            del inode.data[size:]
        else:
            inode.data += bytes(size - len(inode.data))

    def size(self, fd: int) -> int:
        return len(self._inode(fd).data)

    def close(self, fd: int) -> None:
        self._inode(fd)
        del self._fds[fd]

    def rename(self, src: str, dst: str) -> None:
        src_entries, _, src_name = self._split(src)
        dst_entries, _, dst_name = self._split(dst)
        inode = src_entries.pop(src_name, None)
        if inode is None:
            raise FileNotFoundError(errno.ENOENT, "no such file", src)
        dst_entries[dst_name] = inode

    def unlink(self, path: str) -> None:
        entries, _, name = self._split(path)
        if entries.pop(name, None) is None:
            raise FileNotFoundError(errno.ENOENT, "no such file", path)

    def fsync_dir(self, path: str) -> None:
        path = os.path.normpath(path)
        if path not in self._dirs:
            raise FileNotFoundError(errno.ENOENT, "no such directory", path)
        if self.fail_fsync:
            raise OSError(errno.EIO, "Input/output error")
        self._durable_dirs[path] = dict(self._dirs[path])
        self.dir_fsyncs += 1

    # --- faults ---------------------------------------------------------------------------

    def crash(self, kind: CrashKind = "power", rng: random.Random | None = None) -> None:
        """Stop the world as ``kind`` says; afterwards every open handle is gone."""
        self._fds.clear()
        self.write_budget = None
        self.fail_fsync = False
        if kind == "process":
            return
        rng = rng or random.Random(0)
        for directory in self._dirs:
            if kind == "power" or rng.random() < 0.5:
                self._dirs[directory] = dict(self._durable_dirs[directory])
            self._durable_dirs[directory] = dict(self._dirs[directory])
        for inode in {id(i): i for entries in self._dirs.values() for i in entries.values()}.values():
            surviving = inode.durable if kind == "power" else _torn_contents(inode, rng)
            inode.data = bytearray(surviving)
            inode.durable = surviving

    def file_bytes(self, path: str) -> bytes:
        return self.read_file(path)

    def set_file_bytes(self, path: str, data: bytes) -> None:
        """Replace a file's contents, durably (for tests that damage files on purpose)."""
        inode = self._lookup(path)
        inode.data = bytearray(data)
        inode.durable = bytes(data)


def _torn_contents(inode: _Inode, rng: random.Random) -> bytes:
    data, durable = bytes(inode.data), inode.durable
    if not data.startswith(durable):
        return data if rng.random() < 0.5 else durable
    tail = data[len(durable) :]
    if not tail:
        return durable
    if rng.random() < 0.5:
        return durable + tail[: rng.randint(0, len(tail))]
    kept = bytearray(tail[: rng.randint(0, len(tail))])
    start = len(durable)
    sector = (start // _SECTOR) * _SECTOR
    while sector < start + len(kept):
        if rng.random() < 0.3:
            lo, hi = max(sector, start) - start, min(sector + _SECTOR, start + len(kept)) - start
            kept[lo:hi] = bytes(hi - lo)
        sector += _SECTOR
    return durable + bytes(kept)
