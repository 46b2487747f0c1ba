"""WAL segment files: naming, listing, reading one back, and appending to the last one.

A segment is named ``<seq:016x>-<first index:016x>.wal``; sequence numbers have no gaps, and
only the last segment is ever written to. Every segment starts with a ``SegmentHeader`` record.
Before a new segment is started, the previous one is fsynced, so any damage in a segment that is
not the last is corruption, never a torn write.
"""

from __future__ import annotations

import errno as errno_codes
import itertools
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from shoal.manager.wal.crypto import AuthenticationFailed, RecordSealer, UnknownKey
from shoal.manager.wal.errors import WALCorrupted, WrongDataKey
from shoal.manager.wal.fileops import FileOps, write_all
from shoal.manager.wal.framing import TornTail, encode_record, scan
from shoal.manager.wal.records import SegmentHeader, WalRecord, decode_record
from shoal.manager.wal.records import encode_record as encode_payload
from shoal.raft.types import Entry

_NAME = re.compile(r"^([0-9a-f]{16})-([0-9a-f]{16})\.wal$")


def segment_name(seq: int, first_index: int) -> str:
    return f"{seq:016x}-{first_index:016x}.wal"


@dataclass(frozen=True, slots=True)
class SegmentFile:
    seq: int
    first_index: int
    path: str


def list_segments(ops: FileOps, directory: str) -> list[SegmentFile]:
    """The segments in ``directory`` by sequence number; a gap in the sequence is corruption."""
    found = []
    for name in ops.listdir(directory):
        match = _NAME.match(name)
        if match:
            found.append(SegmentFile(int(match[1], 16), int(match[2], 16), os.path.join(directory, name)))
    found.sort(key=lambda seg: seg.seq)
    for before, after in itertools.pairwise(found):
        if after.seq != before.seq + 1:
            raise WALCorrupted(
                after.path, 0, f"segment {before.seq + 1} is missing (found {before.seq}, then {after.seq})"
            )
    return found


@dataclass
class SegmentContents:
    segment: SegmentFile
    records: list[tuple[int, WalRecord]] = field(default_factory=list)
    valid_end: int = 0
    torn: TornTail | None = None

    @property
    def max_index(self) -> int:
        return max((rec.index for _, rec in self.records if isinstance(rec, Entry)), default=0)


def read_segment(ops: FileOps, segment: SegmentFile, sealer: RecordSealer, *, final: bool) -> SegmentContents:
    """Every record of ``segment``; a torn tail is reported (only allowed when ``final``)."""
    path = segment.path
    scanned = scan(ops.read_file(path), path=path, final=final)
    contents = SegmentContents(segment, valid_end=scanned.valid_end, torn=scanned.torn)
    for frame in scanned.frames:
        try:
            record = decode_record(sealer.open(frame.payload))
        except UnknownKey as exc:
            raise WrongDataKey(path, frame.offset, str(exc)) from None
        except AuthenticationFailed as exc:
            raise WALCorrupted(path, frame.offset, f"cannot decrypt record: {exc}") from None
        except ValueError as exc:
            raise WALCorrupted(path, frame.offset, f"undecodable record: {exc}") from None
        is_first = not contents.records
        if is_first != isinstance(record, SegmentHeader):
            why = "segment does not start with its header" if is_first else "segment header in mid-segment"
            raise WALCorrupted(path, frame.offset, why)
        if isinstance(record, SegmentHeader) and record.seq != segment.seq:
            why = f"header says segment {record.seq}, name says {segment.seq}"
            raise WALCorrupted(path, frame.offset, why)
        contents.records.append((frame.offset, record))
    return contents


def frame_records(records: Sequence[WalRecord], sealer: RecordSealer, durable_offset: int) -> bytes:
    """Seal and frame ``records`` into one buffer, written with a single write call."""
    return b"".join(encode_record(sealer.seal(encode_payload(rec)), durable_offset) for rec in records)


class SegmentWriteFailed(Exception):
    """A write failed; ``rolled_back`` says whether the file was cut back to its previous end."""

    def __init__(self, cause: OSError, *, rolled_back: bool) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.rolled_back = rolled_back


class SegmentWriter:
    """Appends to the last segment. Tracks how far it is written and how far fsynced."""

    def __init__(self, ops: FileOps, segment: SegmentFile, fd: int, size: int, max_index: int) -> None:
        self.ops = ops
        self.segment = segment
        self._fd = fd
        self.size = size
        self.synced_size = size
        self.max_index = max_index

    @classmethod
    def reopen(cls, ops: FileOps, contents: SegmentContents) -> SegmentWriter:
        """Open a recovered last segment for appending, cutting off its torn tail. It is fsynced
        either way: what recovery read may only have been in the page cache (the process died,
        the machine did not), and new records must never become durable before it."""
        fd = ops.open_append(contents.segment.path)
        try:
            if ops.size(fd) != contents.valid_end:
                ops.truncate(fd, contents.valid_end)
            ops.fsync(fd)
        except BaseException:
            ops.close(fd)
            raise
        return cls(ops, contents.segment, fd, contents.valid_end, contents.max_index)

    @classmethod
    def create(cls, ops: FileOps, directory: str, seq: int, first_index: int) -> SegmentWriter:
        """A new, empty segment; its directory entry is durable after the next ``fsync_dir``."""
        path = os.path.join(directory, segment_name(seq, first_index))
        if ops.exists(path):
            raise FileExistsError(errno_codes.EEXIST, "segment already exists", path)
        fd = ops.open_truncated(path)
        return cls(ops, SegmentFile(seq, first_index, path), fd, 0, 0)

    def append(self, blob: bytes, max_index: int) -> None:
        """Write ``blob``; on failure cut the file back so no partial record is left behind."""
        try:
            write_all(self.ops, self._fd, blob)
        except OSError as exc:
            raise SegmentWriteFailed(exc, rolled_back=self._cut_back()) from exc
        self.size += len(blob)
        self.max_index = max(self.max_index, max_index)

    def _cut_back(self) -> bool:
        try:
            self.ops.truncate(self._fd, self.size)
        except OSError:
            return False
        return True

    def sync(self) -> None:
        if self.synced_size != self.size:
            self.ops.fsync(self._fd)
            self.synced_size = self.size

    def close(self) -> None:
        self.ops.close(self._fd)
