"""RaftLog: storage-backed entries plus the unstable tail."""

from __future__ import annotations

import pytest

from shoal.raft.errors import Compacted
from shoal.raft.log import RaftLog
from shoal.raft.storage import MemoryStorage
from shoal.raft.types import ConfState, Entry, Snapshot, SnapshotMetadata


def log_with(*terms: int, stable: int = 0) -> RaftLog:
    """A log of entries 1..n with the given terms; the first ``stable`` are in storage."""
    storage = MemoryStorage()
    ents = [Entry(t, i + 1) for i, t in enumerate(terms)]
    storage.append(ents[:stable])
    log = RaftLog(storage)
    log.append(ents[stable:])
    return log


def terms_of(log: RaftLog) -> list[int]:
    return [e.term for e in log.all_entries()]


@pytest.mark.parametrize(
    ("ents", "want"),
    [
        ([], 0),
        ([(1, 1), (2, 2), (3, 3)], 0),  # all present
        ([(2, 2), (3, 3), (4, 4)], 4),  # new entry
        ([(1, 1), (2, 4)], 2),  # conflicting term
        ([(3, 3), (4, 4), (5, 5)], 4),
    ],
)
def test_find_conflict(ents: list[tuple[int, int]], want: int) -> None:
    log = log_with(1, 2, 3, stable=2)
    assert log.find_conflict([Entry(t, i) for i, t in ents]) == want


@pytest.mark.parametrize(
    ("index", "term", "want"),
    [
        (6, 4, (6, 4)),  # index 6 has term 4 <= 4
        (6, 3, (3, 3)),  # skip the whole term-4 run
        (6, 2, (2, 2)),
        (6, 1, (1, 1)),
        (6, 0, (0, 0)),
    ],
)
def test_find_conflict_by_term(index: int, term: int, want: tuple[int, int]) -> None:
    log = log_with(1, 2, 3, 4, 4, 4, stable=3)
    assert log.find_conflict_by_term(index, term) == want


def test_find_conflict_by_term_answers_unknown_below_compaction() -> None:
    storage = MemoryStorage()
    storage.apply_snapshot(Snapshot(SnapshotMetadata(5, 3, ConfState((1,)))))
    storage.append([Entry(4, 6), Entry(4, 7)])
    log = RaftLog(storage)
    assert log.find_conflict_by_term(7, 3) == (5, 3)
    assert log.find_conflict_by_term(7, 2) == (4, 0)


def test_is_up_to_date_compares_last_term_then_length() -> None:
    log = log_with(1, 2, 3)
    assert log.is_up_to_date(1, 4)  # higher last term wins regardless of length
    assert not log.is_up_to_date(9, 2)  # lower last term loses regardless of length
    assert log.is_up_to_date(3, 3)
    assert log.is_up_to_date(4, 3)
    assert not log.is_up_to_date(2, 3)


def test_maybe_append_rules() -> None:
    # Mismatch at the previous entry: refuse.
    log = log_with(1, 2, 3)
    assert log.maybe_append(3, 2, 3, [Entry(4, 4)]) is None
    # Match: append and commit min(leader commit, last new index).
    assert log.maybe_append(3, 3, 9, [Entry(4, 4)]) == 4
    assert log.committed == 4
    # Conflicting uncommitted suffix is replaced.
    log = log_with(1, 2, 3)
    assert log.maybe_append(1, 1, 0, [Entry(4, 2)]) == 2
    assert terms_of(log) == [1, 4]
    # An already-present prefix changes nothing (and never truncates later entries).
    log = log_with(1, 2, 3)
    assert log.maybe_append(0, 0, 1, [Entry(1, 1)]) == 1
    assert terms_of(log) == [1, 2, 3]
    assert log.committed == 1


def test_conflict_with_committed_entry_is_a_bug() -> None:
    log = log_with(1, 2, 3)
    log.commit_to(2)
    with pytest.raises(RuntimeError):
        log.maybe_append(1, 1, 3, [Entry(5, 2)])


def test_commit_to_never_goes_back_or_past_last() -> None:
    log = log_with(1, 2, 3)
    log.commit_to(2)
    log.commit_to(1)
    assert log.committed == 2
    with pytest.raises(RuntimeError):
        log.commit_to(4)


def test_maybe_commit_requires_the_given_term() -> None:
    log = log_with(1, 1, 2)
    assert not log.maybe_commit(2, 2)
    assert log.maybe_commit(3, 2)
    assert log.committed == 3


def test_unstable_stable_to_then_next_committed_entries() -> None:
    log = log_with(1, 1, 2, stable=1)
    assert [e.index for e in log.unstable_entries()] == [2, 3]
    log.stable_to(3, 1)  # wrong term: a newer entry replaced it, keep it unstable
    assert [e.index for e in log.unstable_entries()] == [2, 3]
    assert isinstance(log.storage, MemoryStorage)
    log.storage.append(log.unstable_entries())  # what the driver does before stable_to
    log.stable_to(3, 2)
    assert log.unstable_entries() == []
    log.commit_to(2)
    assert [e.index for e in log.next_committed_entries()] == [1, 2]
    log.applied_to(2)
    assert log.next_committed_entries() == [] and not log.has_next_committed_entries()


def test_restore_snapshot_resets_log() -> None:
    log = log_with(1, 2, 3)
    snap = Snapshot(SnapshotMetadata(10, 5, ConfState((1, 2))))
    log.restore(snap)
    assert (log.first_index(), log.last_index(), log.committed, log.term(10)) == (11, 10, 10, 5)
    with pytest.raises(Compacted):
        log.term(9)
    assert log.snapshot() == snap


def test_slice_joins_storage_and_unstable_with_size_limit() -> None:
    storage = MemoryStorage()
    storage.append([Entry(1, i, data=b"a" * 10) for i in range(1, 4)])
    log = RaftLog(storage)
    log.append([Entry(1, i, data=b"a" * 10) for i in range(4, 7)])
    assert [e.index for e in log.slice(2, 6)] == [2, 3, 4, 5]
    assert [e.index for e in log.slice(2, 6, max_size=60)] == [2, 3]
    assert [e.index for e in log.slice(4, 6, max_size=1)] == [4]
