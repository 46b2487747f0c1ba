"""WAL segment files: naming, listing, reading one back, and appending to the newest one.

A segment is named ``<seq:016x>-<first index:016x>.wal``; sequence numbers have no gaps. Its
records, each framed (framing.py)::

    file header (plaintext: key id, salt, seq)  | SegmentHeader | entries, hard states, marks...
    | NextSegment(seq + 1)                        (every segment but the newest)

Every record after the file header is sealed under the segment's own subkey and bound to its
offset (crypto.py). Only the newest segment is written to, so only it may end in a torn write;
every older one was fsynced and ends with the record naming its successor. A new segment is
written and fsynced under ``<name>.tmp`` first and takes its real name only once its
predecessor names it (wal.py gives the order), so a segment that goes missing is noticed.
"""

from __future__ import annotations

import errno as errno_codes
import itertools
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from shoal.manager.wal.crypto import AuthenticationFailed, FileKeying, FileSealer, Sealing, UnknownKey
from shoal.manager.wal.errors import WALCorrupted, WrongDataKey
from shoal.manager.wal.fileheader import WAL_FILE, decode_file_header, encode_file_header
from shoal.manager.wal.fileops import FileOps, write_all
from shoal.manager.wal.framing import TornTail, encode_record, scan
from shoal.manager.wal.records import NextSegment, SegmentHeader, WalRecord, decode_record
from shoal.manager.wal.records import encode_record as encode_payload
from shoal.raft.types import Entry

_NAME = re.compile(r"^([0-9a-f]{16})-([0-9a-f]{16})\.wal$")
PENDING_SUFFIX = ".tmp"


def segment_name(seq: int, first_index: int) -> str:
    return f"{seq:016x}-{first_index:016x}.wal"


@dataclass(frozen=True, slots=True)
class SegmentFile:
    seq: int
    first_index: int
    path: str


def _matching(ops: FileOps, directory: str, suffix: str) -> list[SegmentFile]:
    found = []
    for name in ops.listdir(directory):
        if not name.endswith(suffix):
            continue
        match = _NAME.match(name[: len(name) - len(suffix)] if suffix else name)
        if match:
            found.append(SegmentFile(int(match[1], 16), int(match[2], 16), os.path.join(directory, name)))
    return sorted(found, key=lambda seg: seg.seq)


def list_segments(ops: FileOps, directory: str, *, allow_gaps: bool = False) -> list[SegmentFile]:
    """The segments in ``directory`` by sequence number; a gap in the sequence is corruption."""
    found = _matching(ops, directory, "")
    for before, after in itertools.pairwise(found):
        if after.seq != before.seq + 1 and not allow_gaps:
            raise WALCorrupted(
                after.path, 0, f"segment {before.seq + 1} is missing (found {before.seq}, then {after.seq})"
            )
    return found


def list_pending(ops: FileOps, directory: str) -> list[SegmentFile]:
    """Segments written but not yet given their real name (a segment switch was cut short)."""
    return _matching(ops, directory, PENDING_SUFFIX)


@dataclass
class SegmentContents:
    segment: SegmentFile
    records: list[tuple[int, WalRecord]] = field(default_factory=list)
    valid_end: int = 0
    torn: TornTail | None = None
    keying: FileKeying | None = None

    @property
    def max_index(self) -> int:
        return max((rec.index for _, rec in self.records if isinstance(rec, Entry)), default=0)

    @property
    def next_segment(self) -> tuple[int, NextSegment] | None:
        """The record naming the successor, with its offset, if this segment ends with one."""
        if self.records and isinstance(self.records[-1][1], NextSegment):
            offset, record = self.records[-1]
            assert isinstance(record, NextSegment)
            return offset, record
        return None


def read_segment(ops: FileOps, segment: SegmentFile, sealing: Sealing, *, final: bool) -> SegmentContents:
    """Every record of ``segment``; a torn tail is reported (only allowed when ``final``)."""
    path = segment.path
    scanned = scan(ops.read_file(path), path=path, final=final)
    contents = SegmentContents(segment, valid_end=scanned.valid_end, torn=scanned.torn)
    if not scanned.frames:
        return contents
    head, *frames = scanned.frames
    try:
        keying = decode_file_header(head.payload, WAL_FILE)
    except ValueError as exc:
        raise WALCorrupted(path, 0, f"not a WAL segment: {exc}") from None
    if keying.file_id != segment.seq:
        raise WALCorrupted(path, 0, f"file header says segment {keying.file_id}, name says {segment.seq}")
    try:
        sealer = sealing.existing_file(keying)
    except UnknownKey as exc:
        raise WrongDataKey(path, 0, str(exc)) from None
    contents.keying = keying
    for frame in frames:
        try:
            record = decode_record(sealer.open(frame.payload, frame.offset))
        except AuthenticationFailed as exc:
            raise WALCorrupted(path, frame.offset, f"cannot decrypt record: {exc}") from None
        except ValueError as exc:
            raise WALCorrupted(path, frame.offset, f"undecodable record: {exc}") from None
        _check_place(contents, frame.offset, record)
        contents.records.append((frame.offset, record))
    return contents


def _check_place(contents: SegmentContents, offset: int, record: WalRecord) -> None:
    path, seq = contents.segment.path, contents.segment.seq
    is_first = not contents.records
    if is_first != isinstance(record, SegmentHeader):
        why = "segment does not start with its header" if is_first else "segment header in mid-segment"
        raise WALCorrupted(path, offset, why)
    if isinstance(record, SegmentHeader) and record.seq != seq:
        raise WALCorrupted(path, offset, f"header says segment {record.seq}, name says {seq}")
    if contents.next_segment is not None:
        raise WALCorrupted(path, offset, "a record after the one naming the next segment")
    if isinstance(record, NextSegment) and record.seq != seq + 1:
        raise WALCorrupted(path, offset, f"segment {seq} names segment {record.seq} as its successor")


def frame_records(records: Sequence[WalRecord], sealer: FileSealer, offset: int, durable_offset: int) -> bytes:
    """Seal and frame ``records`` to be written at ``offset``, into one buffer (one write call)."""
    out = bytearray()
    for rec in records:
        out += encode_record(sealer.seal(encode_payload(rec), offset + len(out)), durable_offset)
    return bytes(out)


class SegmentWriteFailed(Exception):
    """A write failed; ``rolled_back`` says whether the file was cut back to its previous end."""

    def __init__(self, cause: OSError, *, rolled_back: bool) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.rolled_back = rolled_back


class SegmentWriter:
    """Appends to one segment. Tracks how far it is written and how far fsynced."""

    def __init__(
        self, ops: FileOps, segment: SegmentFile, fd: int, size: int, max_index: int, sealer: FileSealer
    ) -> None:
        self.ops = ops
        self.segment = segment
        self._fd = fd
        self.size = size
        self.synced_size = size
        self.max_index = max_index
        self.sealer = sealer

    @classmethod
    def reopen(cls, ops: FileOps, contents: SegmentContents, sealing: Sealing) -> SegmentWriter:
        """Open a recovered segment, cutting off its torn tail, to close it with the record that
        names its successor. It is fsynced either way: what recovery read may only have been in
        the page cache (the process died, the machine did not), and new records must never
        become durable before it."""
        assert contents.keying is not None, "a segment without records is removed, never reopened"
        sealer = sealing.existing_file(contents.keying)
        sealer.sealed = len(contents.records)
        fd = ops.open_append(contents.segment.path)
        try:
            if ops.size(fd) != contents.valid_end:
                ops.truncate(fd, contents.valid_end)
            ops.fsync(fd)
        except BaseException:
            ops.close(fd)
            raise
        return cls(ops, contents.segment, fd, contents.valid_end, contents.max_index, sealer)

    @classmethod
    def create(
        cls, ops: FileOps, directory: str, seq: int, first_index: int, sealing: Sealing, *, pending: bool
    ) -> SegmentWriter:
        """A new, empty segment with a fresh subkey, under its ``.tmp`` name when ``pending``.
        Its first ``append`` writes the file header too."""
        path = os.path.join(directory, segment_name(seq, first_index))
        if ops.exists(path):
            raise FileExistsError(errno_codes.EEXIST, "segment already exists", path)
        fd = ops.open_truncated(path + PENDING_SUFFIX if pending else path)
        return cls(ops, SegmentFile(seq, first_index, path), fd, 0, 0, sealing.new_file(seq))

    def append(self, records: Sequence[WalRecord]) -> None:
        """Seal and write ``records``; on failure cut the file back so no partial record is left."""
        blob = b""
        if self.size == 0:
            blob = encode_record(encode_file_header(WAL_FILE, self.sealer.keying), 0)
        blob += frame_records(records, self.sealer, self.size + len(blob), self.synced_size)
        try:
            write_all(self.ops, self._fd, blob)
        except OSError as exc:
            raise SegmentWriteFailed(exc, rolled_back=self._cut_back()) from exc
        self.size += len(blob)
        self.max_index = max([self.max_index, *(r.index for r in records if isinstance(r, Entry))])

    def publish(self) -> None:
        """Give a pending segment its real name (durable with the next directory fsync)."""
        self.ops.rename(self.segment.path + PENDING_SUFFIX, self.segment.path)

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
