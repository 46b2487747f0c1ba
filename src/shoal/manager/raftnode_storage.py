"""The storage a RaftNode drives: the core's read-side ``Storage`` plus the write side of a Ready.

``MemoryLog`` wraps the core's MemoryStorage (tests, and a member that keeps nothing on disk);
``DiskLog`` wraps the WAL-backed DiskStorage of ``shoal.manager.wal``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Protocol

from shoal.manager.wal.storage import DiskStorage
from shoal.raft.storage import MemoryStorage
from shoal.raft.types import ConfState, Entry, HardState, Snapshot, Storage


class RaftLogStorage(Storage, Protocol):
    durable: bool
    """True when ``save``/``sync`` touch a disk: the driver then runs them off the event loop."""

    def save(self, hard_state: HardState | None, entries: Sequence[Entry], snapshot: Snapshot | None) -> None:
        """Write what a Ready asks to persist (snapshot first, then entries, then hard state)."""
        ...

    def sync(self) -> None:
        """Make everything saved so far durable (fsync)."""
        ...

    def create_snapshot(self, index: int, conf_state: ConfState, data: bytes) -> Snapshot:
        """Record (durably) a snapshot of the state machine as of applied ``index``."""
        ...

    def compact(self, index: int) -> None:
        """Drop log entries up to and including ``index`` (a snapshot must cover them)."""
        ...

    def is_empty(self) -> bool:
        """Nothing was ever stored: a brand-new member."""
        ...


class _BackedLog:
    """The read side and snapshot calls both logs delegate to the storage they wrap."""

    storage: MemoryStorage | DiskStorage

    def initial_state(self) -> tuple[HardState, ConfState]:
        return self.storage.initial_state()

    def entries(self, lo: int, hi: int, max_size: int | None = None) -> list[Entry]:
        return self.storage.entries(lo, hi, max_size)

    def term(self, index: int) -> int:
        return self.storage.term(index)

    def first_index(self) -> int:
        return self.storage.first_index()

    def last_index(self) -> int:
        return self.storage.last_index()

    def snapshot(self) -> Snapshot:
        return self.storage.snapshot()

    def create_snapshot(self, index: int, conf_state: ConfState, data: bytes) -> Snapshot:
        return self.storage.create_snapshot(index, conf_state, data)

    def compact(self, index: int) -> None:
        self.storage.compact(index)

    def is_empty(self) -> bool:
        # Not just "no WAL yet": a member killed after its WAL was created but before its first Ready
        # was written has recorded nothing, and must bootstrap (or join) again on restart.
        hard_state, _ = self.storage.initial_state()
        return hard_state.is_empty() and self.storage.last_index() == 0 and self.storage.snapshot().is_empty()


class MemoryLog(_BackedLog):
    """MemoryStorage with the write side the driver needs; nothing survives the process."""

    durable = False

    def __init__(self, storage: MemoryStorage | None = None) -> None:
        self.storage: MemoryStorage = storage or MemoryStorage()

    def save(self, hard_state: HardState | None, entries: Sequence[Entry], snapshot: Snapshot | None) -> None:
        if snapshot is not None and not snapshot.is_empty():
            self.storage.apply_snapshot(snapshot)
        self.storage.append(entries)
        if hard_state is not None:
            self.storage.set_hard_state(hard_state)

    def sync(self) -> None:
        return None


class DiskLog(_BackedLog):
    """The WAL-backed DiskStorage (shoal.manager.wal) in the shape the driver wants."""

    durable = True

    def __init__(self, storage: DiskStorage) -> None:
        self.storage: DiskStorage = storage

    @classmethod
    def open(cls, data_root: str | os.PathLike[str], *, metadata: bytes = b"", repair: bool = False) -> DiskLog:
        """``repair`` (shoald's ``--repair-raft-log``) cuts a damaged WAL at the damage instead
        of refusing to start; everything after the damage is lost."""
        return cls(DiskStorage.open(data_root, metadata=metadata, repair=repair))

    def save(self, hard_state: HardState | None, entries: Sequence[Entry], snapshot: Snapshot | None) -> None:
        self.storage.save(hard_state, entries, snapshot)

    def sync(self) -> None:
        self.storage.sync()

    def close(self) -> None:
        self.storage.close()
