"""Segment files: names, listing, reading back, appending, failing writes."""

from __future__ import annotations

import pytest

from shoal.manager.wal.crypto import WAL_DOMAIN, DataKey, KeyRing, Sealing
from shoal.manager.wal.errors import WALCorrupted, WrongDataKey
from shoal.manager.wal.records import NextSegment, SegmentHeader, SnapshotMark, WalRecord
from shoal.manager.wal.segments import (
    SegmentFile,
    SegmentWriteFailed,
    SegmentWriter,
    list_pending,
    list_segments,
    read_segment,
    segment_name,
)
from shoal.raft.types import Entry, EntryType, HardState
from shoal.testing.memfs import MemoryFS

D = "/wal"


@pytest.fixture
def fs() -> MemoryFS:
    fs = MemoryFS()
    fs.makedirs(D)
    return fs


@pytest.fixture
def sealer() -> Sealing:
    return Sealing(KeyRing(DataKey.generate()), WAL_DOMAIN)


def write_segment(fs: MemoryFS, sealer: Sealing, seq: int, records: list[WalRecord]) -> SegmentWriter:
    writer = SegmentWriter.create(fs, D, seq, 1, sealer, pending=False)
    writer.append([SegmentHeader(seq, 1, b"meta"), *records])
    writer.sync()
    fs.fsync_dir(D)
    return writer


def test_names_sort_by_sequence_and_gaps_are_refused(fs: MemoryFS, sealer: Sealing) -> None:
    assert segment_name(1, 255) == "0000000000000001-00000000000000ff.wal"
    for seq in (1, 2, 4):
        write_segment(fs, sealer, seq, []).close()
    fs.open_append(f"{D}/unrelated.tmp")
    with pytest.raises(WALCorrupted, match="segment 3 is missing"):
        list_segments(fs, D)


def test_records_round_trip(fs: MemoryFS, sealer: Sealing) -> None:
    records: list[WalRecord] = [
        Entry(1, 1, EntryType.NORMAL, b"a"),
        Entry(1, 2, EntryType.CONF_CHANGE, b"\x00cc"),
        HardState(1, 2, 1),
        SnapshotMark(2, 1, installed=True),
        NextSegment(2),
    ]
    write_segment(fs, sealer, 1, records).close()
    [segment] = list_segments(fs, D)
    contents = read_segment(fs, segment, sealer, final=True)
    assert [rec for _, rec in contents.records] == [SegmentHeader(1, 1, b"meta"), *records]
    assert contents.max_index == 2
    assert contents.torn is None


def test_wrong_key_names_file_and_offset(fs: MemoryFS, sealer: Sealing) -> None:
    write_segment(fs, sealer, 1, []).close()
    [segment] = list_segments(fs, D)
    other = Sealing(KeyRing(DataKey.generate()), WAL_DOMAIN)
    with pytest.raises(WrongDataKey, match=r"offset 0: sealed with data key .* wrong data key"):
        read_segment(fs, segment, other, final=True)


def test_header_must_match_the_name(fs: MemoryFS, sealer: Sealing) -> None:
    write_segment(fs, sealer, 1, []).close()
    fs.rename(f"{D}/{segment_name(1, 1)}", f"{D}/{segment_name(2, 1)}")
    with pytest.raises(WALCorrupted, match="file header says segment 1, name says 2"):
        read_segment(fs, SegmentFile(2, 1, f"{D}/{segment_name(2, 1)}"), sealer, final=True)


def test_nothing_may_follow_the_record_naming_the_next_segment(fs: MemoryFS, sealer: Sealing) -> None:
    write_segment(fs, sealer, 1, [NextSegment(2), HardState(1, 1, 0)]).close()
    with pytest.raises(WALCorrupted, match="a record after the one naming the next segment"):
        read_segment(fs, list_segments(fs, D)[0], sealer, final=True)


def test_a_pending_segment_is_listed_apart_until_published(fs: MemoryFS, sealer: Sealing) -> None:
    writer = SegmentWriter.create(fs, D, 1, 1, sealer, pending=True)
    writer.append([SegmentHeader(1, 1)])
    assert list_segments(fs, D) == []
    assert [p.seq for p in list_pending(fs, D)] == [1]
    writer.publish()
    assert [s.seq for s in list_segments(fs, D)] == [1]
    assert list_pending(fs, D) == []


def test_reopen_cuts_the_torn_tail_durably(fs: MemoryFS, sealer: Sealing) -> None:
    writer = write_segment(fs, sealer, 1, [Entry(1, 1)])
    writer.append([Entry(1, 2, data=b"x" * 50)])
    writer.sync()
    path = writer.segment.path
    writer.close()
    fs.set_file_bytes(path, fs.read_file(path)[:-10])
    contents = read_segment(fs, list_segments(fs, D)[0], sealer, final=True)
    assert contents.torn is not None
    reopened = SegmentWriter.reopen(fs, contents, sealer)
    reopened.close()
    fs.crash("power")
    assert len(fs.read_file(path)) == contents.valid_end
    again = read_segment(fs, list_segments(fs, D)[0], sealer, final=True)
    assert again.torn is None and again.max_index == 1


def test_a_failed_write_is_cut_back(fs: MemoryFS, sealer: Sealing) -> None:
    writer = write_segment(fs, sealer, 1, [Entry(1, 1)])
    size = writer.size
    fs.write_budget = 10
    with pytest.raises(SegmentWriteFailed) as info:
        writer.append([Entry(1, 2, data=b"x" * 100)])
    assert info.value.rolled_back
    assert writer.size == size
    assert len(fs.read_file(writer.segment.path)) == size
