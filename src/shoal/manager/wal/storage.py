"""``DiskStorage``: the raft ``Storage`` port over an in-memory copy of the log, made durable by
the WAL and snapshot files under ``<data root>/raft/``.

How a driver uses it, per Ready::

    storage.save(ready.hard_state, ready.entries, ready.snapshot)   # writes, no fsync
    if ready.must_sync:
        storage.sync()                                              # one fsync for the batch
    send(ready.messages)                                            # only now

and from time to time ``create_snapshot(applied, conf_state, data)`` then ``compact(i)``.

Threads: ``save``/``sync``/``create_snapshot``/``compact`` are serialised by one lock, so they may
run in a worker thread (``asyncio.to_thread``). The read methods take only a second, short lock
around the in-memory log, never held across disk I/O, so the event loop can read while a worker
waits for an fsync.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from shoal.manager.wal.crypto import MAX_RECORDS_PER_SUBKEY, SNAPSHOT_DOMAIN, WAL_DOMAIN, KeyRing, Sealing
from shoal.manager.wal.errors import WALCorrupted
from shoal.manager.wal.fileops import FileOps, OsFileOps
from shoal.manager.wal.keys import KeyFileError, KeyWrapper, load_keys, load_or_create_keys
from shoal.manager.wal.records import SnapshotMark, WalRecord
from shoal.manager.wal.snapshots import SnapshotFiles
from shoal.manager.wal.wal import DEFAULT_SEGMENT_BYTES, WAL
from shoal.raft.errors import SnapOutOfDate, Unavailable
from shoal.raft.storage import MemoryStorage
from shoal.raft.types import ConfState, Entry, HardState, Snapshot, SnapshotMetadata

WAL_CREATED_MARKER = "wal-created"
"""An empty file beside ``wal/``, made durable once the first segment is: without it, a WAL whose
every segment was deleted would read as no WAL, and the node would start afresh, forgetting its
votes. (A missing newest segment among others is caught by the segment chain, see wal.py.)"""


@dataclass(frozen=True, slots=True)
class RaftPaths:
    root: str
    wal: str
    snap: str
    keys: str

    @classmethod
    def under(cls, data_root: str | os.PathLike[str]) -> RaftPaths:
        root = os.path.join(os.fspath(data_root), "raft")
        return cls(root, os.path.join(root, "wal"), os.path.join(root, "snap"), os.path.join(root, "keys"))


class DiskStorage:
    def __init__(
        self,
        paths: RaftPaths,
        wal: WAL,
        snapshots: SnapshotFiles,
        memory: MemoryStorage,
        *,
        is_new: bool,
        keep_old_snapshots: int,
    ) -> None:
        self.paths = paths
        self.is_new = is_new
        """True when nothing was ever saved (no entries, hard state or snapshot): the driver
        bootstraps or joins instead of restarting."""
        self._wal = wal
        self._snapshots = snapshots
        self._memory = memory
        self._keep_old = keep_old_snapshots
        self._lock = threading.Lock()  # the write side, held across disk I/O
        self._memory_lock = threading.Lock()  # the in-memory log, held for microseconds
        self._prune_after_sync = False

    @classmethod
    def open(
        cls,
        data_root: str | os.PathLike[str],
        *,
        keys: KeyRing | None = None,
        key_wrapper: KeyWrapper | None = None,
        file_ops: FileOps | None = None,
        metadata: bytes = b"",
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        keep_old_snapshots: int = 0,
        repair: bool = False,
        records_per_segment: int = MAX_RECORDS_PER_SUBKEY,
    ) -> DiskStorage:
        """Recover the raft state under ``data_root`` (or create it empty, stamped with
        ``metadata``, e.g. the local member). Raises ``WALCorrupted``, ``WALFormatError``,
        ``WrongDataKey`` or ``KeyFileError`` rather than start from damaged state; with
        ``repair`` (shoald's ``--repair-raft-log``), cuts the WAL at corruption instead, with a
        warning, losing everything after it. ``records_per_segment`` bounds how many records
        one segment's subkey seals (lowered only by tests)."""
        ops = file_ops or OsFileOps()
        paths = RaftPaths.under(data_root)
        ops.makedirs(paths.root)
        if keys is None:
            keys = _load_keys(ops, paths, key_wrapper)
        snapshots = SnapshotFiles(ops, paths.snap, Sealing(keys, SNAPSHOT_DOMAIN))
        wal_sealing = Sealing(keys, WAL_DOMAIN, max_records=records_per_segment)
        chosen: list[Snapshot] = []

        def pick_base(marks: list[SnapshotMark]) -> SnapshotMark | None:
            snapshot = snapshots.newest_usable(marks)
            if snapshot is None:
                return None
            chosen.append(snapshot)
            return SnapshotMark(snapshot.metadata.index, snapshot.metadata.term)

        opened = WAL.open(ops, paths.wal, wal_sealing, pick_base, segment_bytes=segment_bytes, repair=repair)
        memory = MemoryStorage()
        marker = os.path.join(paths.root, WAL_CREATED_MARKER)
        if opened is None:
            if snapshots.files():
                raise WALCorrupted(paths.wal, 0, "no WAL segments, but snapshot files exist", repairable=False)
            if ops.exists(marker):
                why = f"every WAL segment is missing, but {marker} says a WAL was created here"
                raise WALCorrupted(paths.wal, 0, why, repairable=False)
            wal = WAL.create(ops, paths.wal, wal_sealing, metadata=metadata, segment_bytes=segment_bytes)
            # The new directories' own names must be durable too, or a power cut could take
            # the whole WAL, and the votes in it, away.
            _mark_wal_created(ops, marker)
            ops.fsync_dir(os.path.dirname(paths.root))
            return cls(paths, wal, snapshots, memory, is_new=True, keep_old_snapshots=keep_old_snapshots)
        wal, replayed = opened
        if not ops.exists(marker):  # a crash came between the first segment and its marker
            _mark_wal_created(ops, marker)
        if chosen:
            memory.apply_snapshot(chosen[0])
        memory.append(replayed.entries)
        memory.set_hard_state(replayed.hard_state)
        empty = not replayed.entries and replayed.hard_state.is_empty() and not chosen
        return cls(paths, wal, snapshots, memory, is_new=empty, keep_old_snapshots=keep_old_snapshots)

    @staticmethod
    def exists(data_root: str | os.PathLike[str], *, file_ops: FileOps | None = None) -> bool:
        """Whether a WAL exists under ``data_root`` (so ``open`` would restart, not create)."""
        return WAL.exists(file_ops or OsFileOps(), RaftPaths.under(data_root).wal)

    @property
    def metadata(self) -> bytes:
        return self._wal.metadata

    # --- raft Storage port ------------------------------------------------------------------

    def initial_state(self) -> tuple[HardState, ConfState]:
        with self._memory_lock:
            return self._memory.initial_state()

    def entries(self, lo: int, hi: int, max_size: int | None = None) -> list[Entry]:
        with self._memory_lock:
            return self._memory.entries(lo, hi, max_size)

    def term(self, index: int) -> int:
        with self._memory_lock:
            return self._memory.term(index)

    def first_index(self) -> int:
        with self._memory_lock:
            return self._memory.first_index()

    def last_index(self) -> int:
        with self._memory_lock:
            return self._memory.last_index()

    def snapshot(self) -> Snapshot:
        with self._memory_lock:
            return self._memory.snapshot()

    # --- write side -------------------------------------------------------------------------

    def save(
        self,
        hard_state: HardState | None = None,
        entries: Sequence[Entry] = (),
        snapshot: Snapshot | None = None,
    ) -> None:
        """Write one Ready's state: an installed snapshot (its file is made durable here; the
        WAL mark that commits it becomes durable with ``sync``), entries (replacing any
        conflicting suffix) and the hard state, in one WAL write. Nothing is fsynced yet."""
        with self._lock:
            records: list[WalRecord] = []
            first_new = self._memory.first_index()
            if snapshot is not None and not snapshot.is_empty():
                meta = snapshot.metadata
                if meta.index <= self._memory.snapshot().metadata.index:
                    current = self._memory.snapshot().metadata.index
                    raise SnapOutOfDate(f"snapshot {meta.index} is not newer than {current}")
                first_new = meta.index + 1
                self._snapshots.save(snapshot)
                records.append(SnapshotMark(meta.index, meta.term, installed=True))
            installing = bool(records)
            new_entries = [e for e in entries if e.index >= first_new]
            self._check_appendable(new_entries, first_new, installing=installing)
            records.extend(new_entries)
            if hard_state is not None:
                if new_entries:
                    last = new_entries[-1].index
                else:
                    last = first_new - 1 if installing else self._memory.last_index()
                if hard_state.commit > last:
                    # Recovery refuses a commit past the log, so never write one.
                    raise Unavailable(f"hard state commits {hard_state.commit}, past the last index {last}")
                records.append(hard_state)
            if records:
                self._wal.append(records)
            with self._memory_lock:
                if snapshot is not None and not snapshot.is_empty():
                    self._memory.apply_snapshot(snapshot)
                    self._prune_after_sync = True
                self._memory.append(new_entries)
                if hard_state is not None:
                    self._memory.set_hard_state(hard_state)

    def sync(self) -> None:
        """Make everything saved so far durable (one fsync, plus the directory after a new
        segment). Call before sending messages that depend on the saved state."""
        with self._lock:
            self._wal.sync()
            if self._prune_after_sync:
                self._snapshots.prune(self._memory.snapshot().metadata, self._keep_old)
                self._prune_after_sync = False

    def create_snapshot(self, index: int, conf_state: ConfState, data: bytes) -> Snapshot:
        """Durably record a snapshot of the state machine as of ``index`` (applied, hence
        committed). Entries stay until ``compact``."""
        with self._lock:
            current = self._memory.snapshot().metadata.index
            if index <= current:
                raise SnapOutOfDate(f"snapshot {index} is not newer than {current}")
            commit = self._memory.initial_state()[0].commit
            if index > commit:
                raise Unavailable(f"snapshot index {index} is past the commit index {commit}")
            snapshot = Snapshot(SnapshotMetadata(index, self._memory.term(index), conf_state), data)
            self._snapshots.save(snapshot)
            self._wal.append([SnapshotMark(index, snapshot.metadata.term)])
            self._wal.sync()
            with self._memory_lock:
                self._memory.create_snapshot(index, conf_state, data)
            self._snapshots.prune(snapshot.metadata, self._keep_old)
            self._prune_after_sync = False
            return snapshot

    def compact(self, index: int) -> None:
        """Forget entries up to ``index`` (at most the snapshot's index) in memory and delete
        the WAL segments that hold nothing newer."""
        with self._lock:
            snapshot_index = self._memory.snapshot().metadata.index
            if index > snapshot_index:
                raise Unavailable(f"cannot compact to {index}, past the latest snapshot at {snapshot_index}")
            if index >= self._memory.first_index():
                with self._memory_lock:
                    self._memory.compact(index)
            self._wal.release_to(index)

    def close(self) -> None:
        with self._lock:
            self._wal.close()

    @property
    def wal_segments(self) -> list[str]:
        return self._wal.segment_paths

    def _check_appendable(self, entries: Sequence[Entry], first_new: int, *, installing: bool) -> None:
        """Refuse a batch that would leave a gap: the WAL must never hold one."""
        if not entries:
            return
        last = first_new - 1 if installing else self._memory.last_index()
        if entries[0].index > last + 1:
            raise Unavailable(f"entry {entries[0].index} would leave a gap after the last index {last}")
        for before, after in itertools.pairwise(entries):
            if after.index != before.index + 1:
                raise ValueError(f"entries not contiguous: {before.index} then {after.index}")


def _mark_wal_created(ops: FileOps, marker: str) -> None:
    """Durably (file and name) leave ``marker``; it also makes the ``wal/`` name durable."""
    fd = ops.open_truncated(marker)
    try:
        ops.fsync(fd)
    finally:
        ops.close(fd)
    ops.fsync_dir(os.path.dirname(marker))


def _load_keys(ops: FileOps, paths: RaftPaths, wrapper: KeyWrapper | None) -> KeyRing:
    keys = load_keys(ops, paths.keys, wrapper)
    if keys is not None:
        return keys
    if WAL.exists(ops, paths.wal):
        raise KeyFileError(f"{paths.keys}: the data key file is missing, but a WAL exists in {paths.wal}")
    return load_or_create_keys(ops, paths.keys, wrapper)
