"""The write-ahead log: a directory of segments, appended to in batches, fsynced on demand.

Writing is split from syncing so the driver pays one fsync per Ready batch: ``append`` writes a
whole batch with one write call, ``sync`` makes everything appended so far durable (the segment
and, after a new segment was started, its directory). A failed write leaves nothing of its batch
behind and the WAL usable; a failed fsync (or a failed cut-back) leaves the disk in an unknown
state, so the WAL refuses further work (``WALBroken``) until it is closed and recovered.

Segments chain forward so that none can go missing unnoticed, the newest included. Starting
segment N+1 (when N is full, has sealed as many records as its subkey may, or at recovery):

1. fsync N;
2. write N+1 (file header, SegmentHeader, the latest snapshot mark and hard state) under
   ``<name>.tmp``, fsync it, fsync the directory;
3. append ``NextSegment(N+1)`` to N and fsync N;
4. rename N+1 to its real name (durable with the next directory fsync).

A crash before 3 is durable leaves N as the newest segment (its torn NextSegment is a torn
tail) and a stale ``.tmp`` file, removed at recovery. A crash after it leaves N+1 under either
name: recovery finishes the rename. So when the newest segment names a successor that exists
under neither name, or an older one names none, segments were lost: ``WALCorrupted``, as is a
gap in the sequence numbers.

Every recovery cuts the newest segment's torn tail, closes it with NextSegment and starts a new
segment: a subkey never seals more than one record after a restart (its nonce count is not
known then), and a rotated data key takes effect at once.

Repair (``open(..., repair=True)``, shoald's ``--repair-raft-log``): corruption in a segment is
cut there, dropping everything from the damaged record on (the rest of that segment and every
later segment), with a warning naming what was dropped; recovery then runs again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from shoal.manager.wal.crypto import Sealing
from shoal.manager.wal.errors import WALBroken, WALCorrupted, WALError, WALWriteError
from shoal.manager.wal.fileops import FileOps
from shoal.manager.wal.records import NextSegment, SegmentHeader, SnapshotMark, WalRecord
from shoal.manager.wal.replay import ReplayedLog, replay, snapshot_marks
from shoal.manager.wal.segments import (
    PENDING_SUFFIX,
    SegmentContents,
    SegmentFile,
    SegmentWriteFailed,
    SegmentWriter,
    list_pending,
    list_segments,
    read_segment,
)
from shoal.raft.types import Entry, HardState

log = logging.getLogger(__name__)

DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024
_PREAMBLE_RECORDS = 3  # SegmentHeader, SnapshotMark, HardState at the start of a segment
_CLOSING_RECORDS = 1  # NextSegment, kept in reserve in every segment's subkey budget

PickBase = Callable[[list[SnapshotMark]], SnapshotMark | None]
"""Given the snapshot marks found in the WAL, the one whose snapshot file is usable (or None)."""


@dataclass
class _Sealed:
    """A segment that is no longer written to, with the highest entry index it holds."""

    segment: SegmentFile
    max_index: int


class WAL:
    def __init__(
        self,
        ops: FileOps,
        directory: str,
        sealing: Sealing,
        writer: SegmentWriter,
        sealed: list[_Sealed],
        *,
        segment_bytes: int,
        metadata: bytes,
        last_index: int,
        hard_state: HardState,
        last_mark: SnapshotMark | None,
    ) -> None:
        self._ops = ops
        self._dir = directory
        self._sealing = sealing
        self._writer: SegmentWriter | None = writer
        self._sealed = sealed
        self._segment_bytes = segment_bytes
        self.metadata = metadata
        self._last_index = last_index
        self._hard_state = hard_state
        self._last_mark = last_mark
        self._dir_dirty = False
        self._broken: str | None = None

    # --- opening ----------------------------------------------------------------------------

    @staticmethod
    def exists(ops: FileOps, directory: str) -> bool:
        """Whether segments exist, damaged or not (``open`` judges them)."""
        return ops.exists(directory) and bool(list_segments(ops, directory, allow_gaps=True))

    @classmethod
    def create(
        cls,
        ops: FileOps,
        directory: str,
        sealing: Sealing,
        *,
        metadata: bytes = b"",
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
    ) -> WAL:
        """A new, empty WAL whose first segment is durable when this returns. (A crash before
        leaves no segment, or one without records, which recovery removes: no WAL.)"""
        ops.makedirs(directory)
        if list_segments(ops, directory):
            raise WALError(f"{directory}: a WAL already exists")
        writer = SegmentWriter.create(ops, directory, 1, 1, sealing, pending=False)
        writer.append([SegmentHeader(1, 1, metadata)])
        writer.sync()
        ops.fsync_dir(directory)
        return cls(
            ops,
            directory,
            sealing,
            writer,
            [],
            segment_bytes=segment_bytes,
            metadata=metadata,
            last_index=0,
            hard_state=HardState(),
            last_mark=None,
        )

    @classmethod
    def open(
        cls,
        ops: FileOps,
        directory: str,
        sealing: Sealing,
        pick_base: PickBase,
        *,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        repair: bool = False,
    ) -> tuple[WAL, ReplayedLog] | None:
        """Recover the WAL in ``directory``: cut a torn tail, refuse corruption (or, with
        ``repair``, cut the log at it), replay the log, start a new segment.

        Returns None when there is no WAL (nothing, or only a first segment whose header never
        reached the disk)."""
        while True:
            try:
                return cls._recover(ops, directory, sealing, pick_base, segment_bytes=segment_bytes)
            except WALCorrupted as exc:
                if not (repair and exc.repairable):
                    raise
                cut_at_damage(ops, directory, exc)

    @classmethod
    def _recover(
        cls, ops: FileOps, directory: str, sealing: Sealing, pick_base: PickBase, *, segment_bytes: int
    ) -> tuple[WAL, ReplayedLog] | None:
        contents = _read_all(ops, directory, sealing)
        if not contents:
            return None
        base = pick_base(snapshot_marks(contents))
        replayed = replay(contents, base)
        last = contents[-1]
        if last.torn is not None:
            torn = last.torn
            log.warning("%s: cutting torn tail at offset %d (%s)", last.segment.path, torn.offset, torn.reason)
        writer = SegmentWriter.reopen(ops, last, sealing)
        sealed = [_Sealed(c.segment, c.max_index) for c in contents[:-1]]
        wal = cls(
            ops,
            directory,
            sealing,
            writer,
            sealed,
            segment_bytes=segment_bytes,
            metadata=replayed.metadata,
            last_index=replayed.last_index,
            hard_state=replayed.hard_state,
            last_mark=replayed.last_mark,
        )
        wal._start_segment(writer)
        wal.sync()
        return wal, replayed

    # --- writing ----------------------------------------------------------------------------

    def append(self, records: Sequence[WalRecord]) -> None:
        """Write ``records`` (entries, hard states, snapshot marks) in one write; not yet durable.

        Order matters: entries before the hard state that may commit them."""
        writer = self._usable_writer()
        if len(records) + _PREAMBLE_RECORDS + _CLOSING_RECORDS > self._sealing.max_records:
            raise ValueError(f"a batch of {len(records)} records does not fit in one segment's subkey budget")
        if writer.size >= self._segment_bytes or writer.sealer.remaining < len(records) + _CLOSING_RECORDS:
            writer = self._start_segment(writer)
        self._write(writer, records)
        for rec in records:
            if isinstance(rec, Entry):
                self._last_index = rec.index
            elif isinstance(rec, HardState):
                self._hard_state = rec
            elif isinstance(rec, SnapshotMark):
                self._last_mark = rec
                if rec.installed:
                    self._last_index = rec.index

    def sync(self) -> None:
        """Make everything appended so far durable."""
        writer = self._usable_writer()
        try:
            writer.sync()
            if self._dir_dirty:
                self._ops.fsync_dir(self._dir)
                self._dir_dirty = False
        except OSError as exc:
            raise self._break(writer.segment.path, f"fsync failed: {exc.strerror or exc}", exc.errno) from exc

    def release_to(self, index: int) -> list[str]:
        """Delete the oldest segments while every entry they hold is at or below ``index``
        (a durable snapshot covers them). The last segment always stays. Oldest first, each
        unlink made durable before the next, so a crash leaves a gap-free run of segments."""
        self._usable_writer()
        removed: list[str] = []
        if not (self._sealed and self._sealed[0].max_index <= index):
            return removed
        self.sync()  # the snapshot mark that makes these segments redundant must be durable first
        while self._sealed and self._sealed[0].max_index <= index:
            path = self._sealed[0].segment.path
            try:
                self._ops.unlink(path)
                self._ops.fsync_dir(self._dir)
            except OSError as exc:
                raise self._break(path, f"removing segment failed: {exc.strerror or exc}", exc.errno) from exc
            self._sealed.pop(0)
            removed.append(path)
        return removed

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    @property
    def segment_paths(self) -> list[str]:
        paths = [s.segment.path for s in self._sealed]
        if self._writer is not None:
            paths.append(self._writer.segment.path)
        return paths

    # --- internals --------------------------------------------------------------------------

    def _carried_state(self) -> list[WalRecord]:
        """What a new segment repeats so the log can be read from it once older ones are gone."""
        records: list[WalRecord] = []
        if self._last_mark is not None:
            records.append(SnapshotMark(self._last_mark.index, self._last_mark.term))
        if not self._hard_state.is_empty():
            records.append(self._hard_state)
        return records

    def _usable_writer(self) -> SegmentWriter:
        if self._broken is not None:
            raise WALBroken(f"{self._dir}: WAL unusable after an earlier failure ({self._broken}); recover it")
        if self._writer is None:
            raise WALBroken(f"{self._dir}: WAL is closed")
        return self._writer

    def _break(self, path: str, why: str, errno: int | None) -> WALWriteError:
        self._broken = why
        return WALWriteError(path, why, errno)

    def _write(self, writer: SegmentWriter, records: Sequence[WalRecord]) -> None:
        try:
            writer.append(records)
        except SegmentWriteFailed as exc:
            why = f"write failed: {exc.cause.strerror or exc.cause}"
            if not exc.rolled_back:
                raise self._break(writer.segment.path, why, exc.cause.errno) from exc
            raise WALWriteError(writer.segment.path, why, exc.cause.errno) from exc

    def _start_segment(self, old: SegmentWriter) -> SegmentWriter:
        """Close ``old`` and start the next segment in the crash-safe order of the module doc."""
        seq, first_index = old.segment.seq + 1, self._last_index + 1
        preamble: list[WalRecord] = [SegmentHeader(seq, first_index, self.metadata), *self._carried_state()]
        new: SegmentWriter | None = None
        try:
            old.sync()
            new = SegmentWriter.create(self._ops, self._dir, seq, first_index, self._sealing, pending=True)
            new.append(preamble)
            new.sync()
            self._ops.fsync_dir(self._dir)  # the pending name, and any earlier rename
            old.append([NextSegment(seq)])
            old.sync()
            new.publish()
        except (OSError, SegmentWriteFailed) as exc:
            cause = exc.cause if isinstance(exc, SegmentWriteFailed) else exc
            if new is not None:
                new.close()
            why = f"starting segment {seq} failed: {cause.strerror or cause}"
            raise self._break(old.segment.path, why, cause.errno) from exc
        self._dir_dirty = True
        self._sealed.append(_Sealed(old.segment, old.max_index))
        self._writer = new
        old.close()
        return new


def _read_all(ops: FileOps, directory: str, sealing: Sealing) -> list[SegmentContents]:
    """Read every segment, finish a segment switch that was cut short, check the chain."""
    if not ops.exists(directory):
        return []
    segments = list_segments(ops, directory)
    contents = [read_segment(ops, seg, sealing, final=i == len(segments) - 1) for i, seg in enumerate(segments)]
    while contents and (closing := contents[-1].next_segment) is not None:
        contents.append(_publish_successor(ops, directory, contents[-1].segment, *closing, sealing))
    for older in contents[:-1]:
        if older.torn is not None:
            why = f"{older.torn.reason}, in a segment that is not the newest"
            raise WALCorrupted(older.segment.path, older.torn.offset, why)
        if older.next_segment is None:
            why = "the segment does not end with the record naming its successor: its end was cut off"
            raise WALCorrupted(older.segment.path, older.valid_end, why)
    for stale in list_pending(ops, directory):
        log.warning("%s: removing a segment whose start was cut short by a crash", stale.path)
        ops.unlink(stale.path)
        ops.fsync_dir(directory)
    if contents and not contents[-1].records:
        empty = contents[-1].segment.path
        if len(contents) > 1:
            raise WALCorrupted(empty, 0, "the newest segment has lost its header")
        log.warning("%s: removing a segment whose header never reached the disk", empty)
        ops.unlink(empty)
        ops.fsync_dir(directory)
        contents.pop()
    return contents


def _publish_successor(
    ops: FileOps, directory: str, last: SegmentFile, offset: int, successor: NextSegment, sealing: Sealing
) -> SegmentContents:
    """The newest segment names a successor: it was written under its pending name, fsynced,
    and the crash came before its rename was durable. Finish the rename."""
    pending = next((p for p in list_pending(ops, directory) if p.seq == successor.seq), None)
    if pending is None:
        why = f"segment {successor.seq} is missing: this segment names it as its successor"
        raise WALCorrupted(last.path, offset, why)
    published = SegmentFile(pending.seq, pending.first_index, pending.path.removesuffix(PENDING_SUFFIX))
    ops.rename(pending.path, published.path)
    ops.fsync_dir(directory)
    log.warning("%s: finished starting this segment (a crash came before its name was durable)", published.path)
    return read_segment(ops, published, sealing, final=True)


def cut_at_damage(ops: FileOps, directory: str, damage: WALCorrupted) -> None:
    """Repair: drop everything from ``damage`` on (the rest of its segment and all later
    segments). Raises ``damage`` again when it is not in a segment or nothing is left to cut."""
    segments = list_segments(ops, directory, allow_gaps=True) if ops.exists(directory) else []
    target = next((s for s in segments if s.path == damage.path), None)
    if target is None:
        raise damage
    later = [s for s in segments if s.seq > target.seq]
    size = len(ops.read_file(target.path))
    if not later and damage.offset >= size:
        raise damage
    for segment in reversed(later):  # newest first, each durable: a crash midway leaves no gap
        ops.unlink(segment.path)
        ops.fsync_dir(directory)
    if damage.offset == 0:
        ops.unlink(target.path)
    else:
        fd = ops.open_append(target.path)
        try:
            ops.truncate(fd, damage.offset)
            ops.fsync(fd)
        finally:
            ops.close(fd)
    ops.fsync_dir(directory)
    dropped = ", ".join(s.path for s in later) or "none"
    log.warning(
        "repairing the raft log: %s cut at offset %d (%s): %d bytes dropped; later segments removed: %s",
        target.path,
        damage.offset,
        damage.why,
        size - damage.offset,
        dropped,
    )
