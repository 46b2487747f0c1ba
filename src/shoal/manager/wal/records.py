"""The logical records a WAL segment holds, and their byte encoding (before sealing).

- ``SegmentHeader``: first record of every segment (its sequence number, the index its entries
  were expected to start at, and the WAL's opaque metadata, e.g. the local raft member).
- ``Entry``: one raft log entry. Writing an entry at index i replaces the log from i on.
- ``HardState``: term, vote, commit; the last one read wins.
- ``SnapshotMark``: a snapshot at (index, term) is durable. ``installed`` marks a snapshot
  received from the leader, which replaces the whole log; otherwise it is a local compaction
  point and later entries stay.
- ``NextSegment``: the last record of every segment but the newest: the segment that follows
  exists. It is what makes a deleted newest segment detectable (see wal.py).
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from shoal.raft.types import Entry, EntryType, HardState


class RecordKind(enum.IntEnum):
    SEGMENT_HEADER = 1
    ENTRY = 2
    HARD_STATE = 3
    SNAPSHOT_MARK = 4
    NEXT_SEGMENT = 5


@dataclass(frozen=True, slots=True)
class SegmentHeader:
    seq: int
    first_index: int
    metadata: bytes = b""


@dataclass(frozen=True, slots=True)
class SnapshotMark:
    index: int
    term: int
    installed: bool = False


@dataclass(frozen=True, slots=True)
class NextSegment:
    seq: int


WalRecord = SegmentHeader | Entry | HardState | SnapshotMark | NextSegment

_KIND = struct.Struct("<B")
_SEGMENT_HEADER = struct.Struct("<BQQ")
_ENTRY = struct.Struct("<BQQB")
_HARD_STATE = struct.Struct("<BQQQ")
_SNAPSHOT_MARK = struct.Struct("<BQQB")
_NEXT_SEGMENT = struct.Struct("<BQ")


def encode_record(record: WalRecord) -> bytes:
    if isinstance(record, Entry):
        return _ENTRY.pack(RecordKind.ENTRY, record.term, record.index, int(record.type)) + record.data
    if isinstance(record, HardState):
        return _HARD_STATE.pack(RecordKind.HARD_STATE, record.term, record.vote, record.commit)
    if isinstance(record, SnapshotMark):
        return _SNAPSHOT_MARK.pack(RecordKind.SNAPSHOT_MARK, record.index, record.term, int(record.installed))
    if isinstance(record, NextSegment):
        return _NEXT_SEGMENT.pack(RecordKind.NEXT_SEGMENT, record.seq)
    return _SEGMENT_HEADER.pack(RecordKind.SEGMENT_HEADER, record.seq, record.first_index) + record.metadata


def decode_record(data: bytes) -> WalRecord:
    """Raises ValueError on bytes that no encoder wrote."""
    if not data:
        raise ValueError("empty record")
    (kind,) = _KIND.unpack_from(data)
    try:
        if kind == RecordKind.ENTRY:
            _, term, index, entry_type = _ENTRY.unpack_from(data)
            return Entry(term, index, EntryType(entry_type), data[_ENTRY.size :])
        if kind == RecordKind.HARD_STATE:
            _, term, vote, commit = _HARD_STATE.unpack(data)
            return HardState(term, vote, commit)
        if kind == RecordKind.SNAPSHOT_MARK:
            _, index, term, installed = _SNAPSHOT_MARK.unpack(data)
            return SnapshotMark(index, term, bool(installed))
        if kind == RecordKind.NEXT_SEGMENT:
            _, seq = _NEXT_SEGMENT.unpack(data)
            return NextSegment(seq)
        if kind == RecordKind.SEGMENT_HEADER:
            _, seq, first_index = _SEGMENT_HEADER.unpack_from(data)
            return SegmentHeader(seq, first_index, data[_SEGMENT_HEADER.size :])
    except struct.error as exc:
        raise ValueError(f"malformed record of kind {kind}: {exc}") from None
    raise ValueError(f"unknown record kind {kind}")
