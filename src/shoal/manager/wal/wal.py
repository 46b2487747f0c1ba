"""The write-ahead log: a directory of segments, appended to in batches, fsynced on demand.

Writing is split from syncing so the driver pays one fsync per Ready batch: ``append`` writes a
whole batch with one write call, ``sync`` makes everything appended so far durable (the segment
and, after a new segment was started, its directory). A failed write leaves nothing of its batch
behind and the WAL usable; a failed fsync (or a failed cut-back) leaves the disk in an unknown
state, so the WAL refuses further work (``WALBroken``) until it is closed and recovered.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from shoal.manager.wal.crypto import RecordSealer
from shoal.manager.wal.errors import WALBroken, WALError, WALWriteError
from shoal.manager.wal.fileops import FileOps
from shoal.manager.wal.records import SegmentHeader, SnapshotMark, WalRecord
from shoal.manager.wal.replay import ReplayedLog, replay, snapshot_marks
from shoal.manager.wal.segments import (
    SegmentContents,
    SegmentFile,
    SegmentWriteFailed,
    SegmentWriter,
    frame_records,
    list_segments,
    read_segment,
)
from shoal.raft.types import Entry, HardState

log = logging.getLogger(__name__)

DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024

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
        sealer: RecordSealer,
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
        self._sealer = sealer
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
        return ops.exists(directory) and bool(list_segments(ops, directory))

    @classmethod
    def create(
        cls,
        ops: FileOps,
        directory: str,
        sealer: RecordSealer,
        *,
        metadata: bytes = b"",
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
    ) -> WAL:
        """A new, empty WAL whose first segment is durable when this returns."""
        ops.makedirs(directory)
        if list_segments(ops, directory):
            raise WALError(f"{directory}: a WAL already exists")
        writer = SegmentWriter.create(ops, directory, 1, 1)
        writer.append(frame_records([SegmentHeader(1, 1, metadata)], sealer, 0), 0)
        writer.sync()
        ops.fsync_dir(directory)
        return cls(
            ops,
            directory,
            sealer,
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
        sealer: RecordSealer,
        pick_base: PickBase,
        *,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
    ) -> tuple[WAL, ReplayedLog] | None:
        """Recover the WAL in ``directory``: cut a torn tail, refuse corruption, replay the log.

        Returns None when there is no WAL (nothing, or only a first segment whose header never
        reached the disk)."""
        contents = _read_all(ops, directory, sealer)
        if not contents:
            return None
        base = pick_base(snapshot_marks(contents))
        replayed = replay(contents, base)
        last = contents[-1]
        if last.torn is not None:
            torn = last.torn
            log.warning("%s: cutting torn tail at offset %d (%s)", last.segment.path, torn.offset, torn.reason)
        writer = SegmentWriter.reopen(ops, last)
        ops.fsync_dir(directory)  # the last segment's name may not have been durable yet either
        sealed = [_Sealed(c.segment, c.max_index) for c in contents[:-1]]
        wal = cls(
            ops,
            directory,
            sealer,
            writer,
            sealed,
            segment_bytes=segment_bytes,
            metadata=replayed.metadata,
            last_index=replayed.last_index,
            hard_state=replayed.hard_state,
            last_mark=replayed.last_mark,
        )
        wal._restate()
        return wal, replayed

    # --- writing ----------------------------------------------------------------------------

    def append(self, records: Sequence[WalRecord]) -> None:
        """Write ``records`` (entries, hard states, snapshot marks) in one write; not yet durable.

        Order matters: entries before the hard state that may commit them."""
        writer = self._usable_writer()
        if writer.size >= self._segment_bytes:
            writer = self._start_segment(writer)
        max_index = 0
        for rec in records:
            if isinstance(rec, Entry):
                max_index = max(max_index, rec.index)
        self._write(writer, frame_records(records, self._sealer, writer.synced_size), max_index)
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

    def _restate(self) -> None:
        """Append the recovered hard state and latest snapshot mark to the last segment, durably.

        Releasing old segments relies on the newer ones repeating these (each segment starts
        with them), but a torn tail may have cut them off the last segment's start."""
        records = self._carried_state()
        if records:
            self.append(records)
            self.sync()

    def _carried_state(self) -> list[WalRecord]:
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

    def _write(self, writer: SegmentWriter, blob: bytes, max_index: int) -> None:
        try:
            writer.append(blob, max_index)
        except SegmentWriteFailed as exc:
            why = f"write failed: {exc.cause.strerror or exc.cause}"
            if not exc.rolled_back:
                raise self._break(writer.segment.path, why, exc.cause.errno) from exc
            raise WALWriteError(writer.segment.path, why, exc.cause.errno) from exc

    def _start_segment(self, old: SegmentWriter) -> SegmentWriter:
        """Seal the full segment (fsynced, so only the last one can ever be torn) and start the
        next with a header, the latest snapshot mark and hard state, so the log can be read from
        it once the older segments are released."""
        seq, first_index = old.segment.seq + 1, self._last_index + 1
        try:
            old.sync()
            if self._dir_dirty:  # the previous new segment's name first, so no gap can appear
                self._ops.fsync_dir(self._dir)
                self._dir_dirty = False
            new = SegmentWriter.create(self._ops, self._dir, seq, first_index)
        except OSError as exc:
            raise self._break(old.segment.path, f"starting segment {seq} failed: {exc}", exc.errno) from exc
        self._dir_dirty = True
        header: list[WalRecord] = [SegmentHeader(seq, first_index, self.metadata), *self._carried_state()]
        self._sealed.append(_Sealed(old.segment, old.max_index))
        self._writer = new
        old.close()
        try:
            new.append(frame_records(header, self._sealer, 0), 0)
        except SegmentWriteFailed as exc:
            raise self._break(new.segment.path, f"writing segment header failed: {exc.cause}", exc.cause.errno) from exc
        return new


def _read_all(ops: FileOps, directory: str, sealer: RecordSealer) -> list[SegmentContents]:
    """Read every segment; an empty last segment (created, header never written) is removed."""
    if not ops.exists(directory):
        return []
    segments = list_segments(ops, directory)
    contents = [read_segment(ops, seg, sealer, final=i == len(segments) - 1) for i, seg in enumerate(segments)]
    if contents and not contents[-1].records:
        empty = contents.pop()
        log.warning("%s: removing a segment whose header never reached the disk", empty.segment.path)
        ops.unlink(empty.segment.path)
        ops.fsync_dir(directory)
    return contents
