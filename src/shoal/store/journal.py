"""A local, fsynced journal behind the Proposer protocol: a single node's durable log until it runs as
a one-member Raft group. Records are `length | crc32 | index | payload`; a torn tail (crash mid-write)
is cut off on open, anything else that fails its checksum is refused.

Compaction writes the store's snapshot (temp file, fsync, rename, fsync dir) and starts a new journal."""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

from shoal.api import errors
from shoal.store.proposer import ApplyFn

_HEADER = struct.Struct(">IIQ")  # payload length, crc32 of (index + payload), index
COMPACT_EVERY = 10_000


class JournalCorrupted(Exception):
    pass


class LocalJournal:
    def __init__(self, directory: Path) -> None:
        self._dir = directory
        self._dir.mkdir(parents=True, exist_ok=True)
        self._snapshot_fn: Callable[[], bytes] | None = None
        self._apply: ApplyFn | None = None
        self._fd = -1
        self._index = 0
        self._records_since_snapshot = 0

    @property
    def journal_path(self) -> Path:
        return self._dir / "journal"

    @property
    def snapshot_path(self) -> Path:
        return self._dir / "snapshot"

    def set_apply(self, apply: ApplyFn) -> None:
        self._apply = apply

    def is_leader(self) -> bool:
        return True

    def open(self, snapshot: Callable[[], bytes], restore: Callable[[bytes], None]) -> None:
        """Restore the snapshot, replay the journal into the store, cut a torn tail. `snapshot` and
        `restore` are the store's, used for compaction and on open."""
        assert self._apply is not None, "set_apply first"
        self._snapshot_fn = snapshot
        if self.snapshot_path.exists():
            data = self.snapshot_path.read_bytes()
            restore(data)
            self._index = _snapshot_index(data)
        good_length = self._replay()
        self._fd = os.open(self.journal_path, os.O_WRONLY | os.O_CREAT, 0o600)
        os.ftruncate(self._fd, good_length)
        os.lseek(self._fd, good_length, os.SEEK_SET)
        os.fsync(self._fd)

    def _replay(self) -> int:
        if not self.journal_path.exists():
            return 0
        data = self.journal_path.read_bytes()
        offset = 0
        while offset < len(data):
            record = _read_record(data, offset)
            if record is None:
                if _only_torn_tail(data, offset):
                    break
                raise JournalCorrupted(f"{self.journal_path}: bad record at offset {offset}")
            index, payload, end = record
            if index > self._index:
                assert self._apply is not None
                self._apply(index, payload)
                self._index = index
                self._records_since_snapshot += 1
            offset = end
        return offset

    async def propose(self, payload: bytes) -> int:
        if self._fd < 0:
            raise errors.Unavailable("store journal is not open")
        index = self._index + 1
        body = struct.pack(">Q", index) + payload
        record = _HEADER.pack(len(payload), zlib.crc32(body), index) + payload
        os.write(self._fd, record)
        os.fsync(self._fd)
        self._index = index
        assert self._apply is not None
        self._apply(index, payload)
        self._records_since_snapshot += 1
        if self._records_since_snapshot >= COMPACT_EVERY:
            self.compact()
        return index

    def compact(self) -> None:
        """Snapshot the store and empty the journal; a crash at any step leaves a recoverable pair."""
        assert self._snapshot_fn is not None, "open first"
        data = self._snapshot_fn()
        tmp = self._dir / "snapshot.tmp"
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.snapshot_path)
        _fsync_dir(self._dir)
        # Records up to the snapshot's index are skipped on replay, so truncating last is safe.
        os.ftruncate(self._fd, 0)
        os.lseek(self._fd, 0, os.SEEK_SET)
        os.fsync(self._fd)
        self._records_since_snapshot = 0

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _read_record(data: bytes, offset: int) -> tuple[int, bytes, int] | None:
    if offset + _HEADER.size > len(data):
        return None
    length, crc, index = _HEADER.unpack_from(data, offset)
    start = offset + _HEADER.size
    end = start + length
    if end > len(data):
        return None
    payload = data[start:end]
    if zlib.crc32(struct.pack(">Q", index) + payload) != crc:
        return None
    return index, payload, end


def _only_torn_tail(data: bytes, offset: int) -> bool:
    """A bad record is a torn tail only if nothing valid follows it: a crash can tear only the last
    write. Scan forward for any later record that checks out."""
    later = range(offset + 1, len(data) - _HEADER.size + 1)
    return all(_read_record(data, start) is None for start in later)


def _snapshot_index(data: bytes) -> int:
    return int(json.loads(data)["index"])


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
