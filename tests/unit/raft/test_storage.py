"""MemoryStorage semantics (the contract a WAL-backed storage must also meet)."""

from __future__ import annotations

import pytest

from shoal.raft.errors import Compacted, SnapOutOfDate, Unavailable
from shoal.raft.storage import MemoryStorage
from shoal.raft.types import ConfState, Entry, Snapshot, SnapshotMetadata


def storage_3_4_5() -> MemoryStorage:
    """Snapshot at index 3 (term 3), then entries 4 (term 4) and 5 (term 5)."""
    s = MemoryStorage()
    s.apply_snapshot(Snapshot(SnapshotMetadata(3, 3, ConfState((1,)))))
    s.append([Entry(4, 4), Entry(5, 5)])
    return s


def test_term_bounds() -> None:
    s = storage_3_4_5()
    with pytest.raises(Compacted):
        s.term(2)
    assert [s.term(i) for i in (3, 4, 5)] == [3, 4, 5]
    with pytest.raises(Unavailable):
        s.term(6)


def test_entries_bounds_and_size_limit() -> None:
    s = storage_3_4_5()
    s.append([Entry(5, 6, data=b"x" * 100)])
    with pytest.raises(Compacted):
        s.entries(3, 5)
    assert [e.index for e in s.entries(4, 7)] == [4, 5, 6]
    assert [e.index for e in s.entries(4, 7, max_size=0)] == [4]  # never fewer than one
    assert [e.index for e in s.entries(4, 7, max_size=40)] == [4, 5]
    with pytest.raises(Unavailable):
        s.entries(4, 8)


def test_first_last_index() -> None:
    s = storage_3_4_5()
    assert (s.first_index(), s.last_index()) == (4, 5)


def test_compact_keeps_term_of_compaction_point() -> None:
    s = storage_3_4_5()
    s.compact(4)
    assert (s.first_index(), s.last_index(), s.term(4)) == (5, 5, 4)
    with pytest.raises(Compacted):
        s.compact(4)
    with pytest.raises(Unavailable):
        s.compact(9)


def test_append_truncates_conflicting_suffix_and_ignores_compacted_prefix() -> None:
    s = storage_3_4_5()
    s.append([Entry(3, 3), Entry(6, 4), Entry(6, 5), Entry(6, 6)])
    assert [(e.term, e.index) for e in s.entries(4, 7)] == [(6, 4), (6, 5), (6, 6)]
    s.append([Entry(7, 5)])
    assert s.last_index() == 5 and s.term(5) == 7
    with pytest.raises(Unavailable):
        s.append([Entry(7, 9)])  # a gap


def test_create_and_apply_snapshot() -> None:
    s = storage_3_4_5()
    snap = s.create_snapshot(5, ConfState((1, 2)), b"state")
    assert snap.metadata == SnapshotMetadata(5, 5, ConfState((1, 2)))
    with pytest.raises(SnapOutOfDate):
        s.create_snapshot(4, ConfState((1,)), b"")
    other = MemoryStorage()
    other.append([Entry(1, 1)])
    other.apply_snapshot(snap)
    assert (other.first_index(), other.last_index(), other.term(5)) == (6, 5, 5)
    assert other.initial_state()[1] == ConfState((1, 2))
    with pytest.raises(SnapOutOfDate):
        other.apply_snapshot(snap)
