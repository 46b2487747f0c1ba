"""Snapshot files: a plaintext file header (fileheader.py: key id, salt, the snapshot's index)
then one sealed record, bound to this file's subkey and offset (crypto.py); written so that a
crash never leaves a half-written file under a real name.

Writing: ``<index>-<term>.snap.tmp`` is written and fsynced, renamed to ``<index>-<term>.snap``,
and the directory is fsynced. A snapshot only counts once the WAL holds a mark for it (the WAL
is the commit point), so on recovery the newest file that both has a mark and reads back intact
is used; damaged files are skipped with a warning, and the WAL replay then proves whether the
older snapshot still suffices (it does not if the segments it needed were released).
"""

from __future__ import annotations

import logging
import os
import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass

import msgpack

from shoal.manager.wal.crypto import AuthenticationFailed, Sealing, UnknownKey
from shoal.manager.wal.errors import WALCorrupted, WALWriteError, WrongDataKey
from shoal.manager.wal.fileheader import SNAPSHOT_FILE, decode_file_header, encode_file_header
from shoal.manager.wal.fileops import FileOps, write_all
from shoal.manager.wal.framing import encode_record, scan
from shoal.manager.wal.records import SnapshotMark
from shoal.raft.types import Snapshot, SnapshotMetadata, conf_state_from_wire, conf_state_to_wire

log = logging.getLogger(__name__)

_NAME = re.compile(r"^([0-9a-f]{16})-([0-9a-f]{16})\.snap$")
_TEMP_SUFFIX = ".tmp"
_HEAD = struct.Struct("<QQI")


def snapshot_name(index: int, term: int) -> str:
    return f"{index:016x}-{term:016x}.snap"


@dataclass(frozen=True, slots=True)
class SnapshotFile:
    index: int
    term: int
    path: str


def encode_snapshot(snapshot: Snapshot) -> bytes:
    meta = snapshot.metadata
    conf: bytes = msgpack.packb(conf_state_to_wire(meta.conf_state), use_bin_type=True)
    return _HEAD.pack(meta.index, meta.term, len(conf)) + conf + snapshot.data


def decode_snapshot(data: bytes) -> Snapshot:
    """Raises ValueError on bytes that ``encode_snapshot`` did not produce."""
    try:
        index, term, conf_len = _HEAD.unpack_from(data)
        conf_end = _HEAD.size + conf_len
        if conf_end > len(data):
            raise ValueError("conf state runs past the end")
        conf = conf_state_from_wire(msgpack.unpackb(data[_HEAD.size : conf_end], raw=False))
    except (struct.error, KeyError, TypeError, msgpack.UnpackException) as exc:
        raise ValueError(f"malformed snapshot: {exc}") from None
    return Snapshot(SnapshotMetadata(index, term, conf), data[conf_end:])


class SnapshotFiles:
    def __init__(self, ops: FileOps, directory: str, sealing: Sealing) -> None:
        self._ops = ops
        self._dir = directory
        self._sealing = sealing
        ops.makedirs(directory)

    def files(self) -> list[SnapshotFile]:
        """The snapshot files present, oldest first."""
        found = []
        for name in self._ops.listdir(self._dir):
            match = _NAME.match(name)
            if match:
                found.append(SnapshotFile(int(match[1], 16), int(match[2], 16), os.path.join(self._dir, name)))
        return sorted(found, key=lambda f: (f.index, f.term))

    def save(self, snapshot: Snapshot) -> str:
        """Write ``snapshot`` durably under its final name (temp file, fsync, rename, dir fsync)."""
        meta = snapshot.metadata
        path = os.path.join(self._dir, snapshot_name(meta.index, meta.term))
        temp = path + _TEMP_SUFFIX
        sealer = self._sealing.new_file(meta.index)
        head = encode_record(encode_file_header(SNAPSHOT_FILE, sealer.keying), 0)
        blob = head + encode_record(sealer.seal(encode_snapshot(snapshot), len(head)), 0)
        try:
            fd = self._ops.open_truncated(temp)
            try:
                write_all(self._ops, fd, blob)
                self._ops.fsync(fd)
            finally:
                self._ops.close(fd)
            self._ops.rename(temp, path)
            self._ops.fsync_dir(self._dir)
        except OSError as exc:
            self._discard(temp)
            raise WALWriteError(path, f"writing snapshot failed: {exc.strerror or exc}", exc.errno) from exc
        return path

    def _discard(self, temp: str) -> None:
        """Best effort: a leftover temp file is harmless (pruned later) but wastes space."""
        try:
            if self._ops.exists(temp):
                self._ops.unlink(temp)
        except OSError:
            pass

    def load(self, file: SnapshotFile) -> Snapshot:
        """Read one file back; raises ``WALCorrupted`` or ``WrongDataKey``."""
        scanned = scan(self._ops.read_file(file.path), path=file.path, final=True)
        if scanned.torn is not None or len(scanned.frames) != 2:
            why = scanned.torn.reason if scanned.torn else f"{len(scanned.frames)} records instead of 2"
            raise self._damaged(file, scanned.valid_end, f"damaged snapshot file: {why}")
        head, frame = scanned.frames
        try:
            keying = decode_file_header(head.payload, SNAPSHOT_FILE)
            if keying.file_id != file.index:
                raise ValueError(f"file header says snapshot {keying.file_id}, name says {file.index}")
            snapshot = decode_snapshot(self._sealing.existing_file(keying).open(frame.payload, frame.offset))
        except UnknownKey as exc:
            raise WrongDataKey(file.path, frame.offset, str(exc)) from None
        except AuthenticationFailed as exc:
            raise self._damaged(file, frame.offset, f"cannot decrypt snapshot: {exc}") from None
        except ValueError as exc:
            raise self._damaged(file, frame.offset, str(exc)) from None
        meta = snapshot.metadata
        if (meta.index, meta.term) != (file.index, file.term):
            why = f"holds snapshot {meta.index}/{meta.term}, name says {file.index}/{file.term}"
            raise self._damaged(file, frame.offset, why)
        return snapshot

    @staticmethod
    def _damaged(file: SnapshotFile, offset: int, why: str) -> WALCorrupted:
        # Not repairable by cutting the log: recovery skips the file and falls back to an older one.
        return WALCorrupted(file.path, offset, why, repairable=False)

    def newest_usable(self, marks: Iterable[SnapshotMark]) -> Snapshot | None:
        """The newest snapshot that the WAL marked durable and that reads back intact."""
        marked = {(m.index, m.term) for m in marks}
        for file in reversed(self.files()):
            if (file.index, file.term) not in marked:
                continue
            try:
                return self.load(file)
            except WALCorrupted as exc:
                log.warning("skipping unusable snapshot: %s", exc)
        return None

    def prune(self, current: SnapshotMetadata, keep_old: int) -> list[str]:
        """Delete leftover temp files, snapshots newer than ``current`` (never marked, so never
        used) and all but ``keep_old`` of the older ones. Best effort: failures are logged."""
        removed = []
        older = []
        for file in self.files():
            if (file.index, file.term) == (current.index, current.term):
                continue
            if file.index < current.index:
                older.append(file)
            else:
                removed.append(file.path)
        if keep_old < len(older):
            removed.extend(f.path for f in older[: len(older) - keep_old])
        removed.extend(os.path.join(self._dir, n) for n in self._ops.listdir(self._dir) if n.endswith(_TEMP_SUFFIX))
        try:
            for path in removed:
                self._ops.unlink(path)
            if removed:
                self._ops.fsync_dir(self._dir)
        except OSError as exc:
            # Nothing depends on old snapshots being gone: retry at the next snapshot.
            log.warning("pruning snapshots in %s failed: %s", self._dir, exc)
        return removed
