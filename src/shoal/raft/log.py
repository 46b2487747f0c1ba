"""The raft log: durable entries behind the Storage port plus an unstable tail in memory.

``Unstable`` holds what the core has accepted but the driver has not yet persisted (new
entries and possibly an incoming snapshot). ``RaftLog`` joins both and tracks the commit
and applied indexes.
"""

from __future__ import annotations

from collections.abc import Sequence

from shoal.raft.errors import Compacted, Unavailable
from shoal.raft.storage import limit_size
from shoal.raft.types import Entry, Snapshot, Storage


class Unstable:
    def __init__(self, offset: int) -> None:
        self.snapshot: Snapshot | None = None
        self.entries: list[Entry] = []
        # Index of entries[0] (or where it would be).
        self.offset = offset

    def maybe_first_index(self) -> int | None:
        if self.snapshot is not None:
            return self.snapshot.metadata.index + 1
        return None

    def maybe_last_index(self) -> int | None:
        if self.entries:
            return self.offset + len(self.entries) - 1
        if self.snapshot is not None:
            return self.snapshot.metadata.index
        return None

    def maybe_term(self, index: int) -> int | None:
        if index < self.offset:
            if self.snapshot is not None and self.snapshot.metadata.index == index:
                return self.snapshot.metadata.term
            return None
        last = self.maybe_last_index()
        if last is None or index > last:
            return None
        return self.entries[index - self.offset].term

    def stable_to(self, index: int, term: int) -> None:
        """The driver persisted entries up to ``index``; drop them if they are still ours."""
        known = self.maybe_term(index)
        if known is None:
            return
        if known == term and index >= self.offset:
            self.entries = self.entries[index + 1 - self.offset :]
            self.offset = index + 1

    def stable_snap_to(self, index: int) -> None:
        if self.snapshot is not None and self.snapshot.metadata.index == index:
            self.snapshot = None

    def restore(self, snapshot: Snapshot) -> None:
        self.offset = snapshot.metadata.index + 1
        self.entries = []
        self.snapshot = snapshot

    def truncate_and_append(self, entries: Sequence[Entry]) -> None:
        after = entries[0].index
        if after == self.offset + len(self.entries):
            self.entries.extend(entries)
        elif after <= self.offset:
            # Replaces everything unstable; the storage part before ``after`` stays.
            self.offset = after
            self.entries = list(entries)
        else:
            self.entries = [*self.entries[: after - self.offset], *entries]

    def slice(self, lo: int, hi: int) -> list[Entry]:
        if lo < self.offset or hi > self.offset + len(self.entries) or lo > hi:
            raise RuntimeError(f"unstable slice [{lo}, {hi}) out of [{self.offset}, +{len(self.entries)})")
        return self.entries[lo - self.offset : hi - self.offset]


class RaftLog:
    def __init__(self, storage: Storage, max_apply_size: int | None = None) -> None:
        self.storage = storage
        first = storage.first_index()
        last = storage.last_index()
        self.unstable = Unstable(last + 1)
        self.committed = first - 1
        self.applied = first - 1
        self.max_apply_size = max_apply_size

    # --- indexes and terms ---------------------------------------------------------------

    def first_index(self) -> int:
        first = self.unstable.maybe_first_index()
        return first if first is not None else self.storage.first_index()

    def last_index(self) -> int:
        last = self.unstable.maybe_last_index()
        return last if last is not None else self.storage.last_index()

    def term(self, index: int) -> int:
        """Term of ``index``; raises Compacted/Unavailable outside the log."""
        dummy = self.first_index() - 1
        if index < dummy:
            raise Compacted(f"index {index} compacted")
        if index > self.last_index():
            raise Unavailable(f"index {index} past last index {self.last_index()}")
        known = self.unstable.maybe_term(index)
        if known is not None:
            return known
        return self.storage.term(index)

    def term_or_zero(self, index: int) -> int:
        try:
            return self.term(index)
        except (Compacted, Unavailable):
            return 0

    def last_term(self) -> int:
        return self.term(self.last_index())

    def match_term(self, index: int, term: int) -> bool:
        try:
            return self.term(index) == term
        except (Compacted, Unavailable):
            return False

    def is_up_to_date(self, last_index: int, term: int) -> bool:
        """Whether a candidate whose log ends at (term, last_index) is at least as up to date."""
        my_term = self.last_term()
        return term > my_term or (term == my_term and last_index >= self.last_index())

    # --- appending ----------------------------------------------------------------------

    def maybe_append(self, index: int, log_term: int, committed: int, entries: Sequence[Entry]) -> int | None:
        """Append after (log_term, index) if it matches our log; the new last index or None."""
        if not self.match_term(index, log_term):
            return None
        last_new = index + len(entries)
        conflict = self.find_conflict(entries)
        if conflict:
            if conflict <= self.committed:
                raise RuntimeError(f"entry {conflict} conflicts with committed entry (committed {self.committed})")
            self.append(entries[conflict - (index + 1) :])
        self.commit_to(min(committed, last_new))
        return last_new

    def append(self, entries: Sequence[Entry]) -> int:
        if not entries:
            return self.last_index()
        after = entries[0].index - 1
        if after < self.committed:
            raise RuntimeError(f"append after {after} is below committed {self.committed}")
        self.unstable.truncate_and_append(entries)
        return self.last_index()

    def find_conflict(self, entries: Sequence[Entry]) -> int:
        """Index of the first entry that is new or differs from ours; 0 if all are present."""
        for entry in entries:
            if not self.match_term(entry.index, entry.term):
                return entry.index
        return 0

    def find_conflict_by_term(self, index: int, term: int) -> tuple[int, int]:
        """The largest index <= ``index`` whose term is <= ``term``, with that term.

        Lets a rejected append skip a whole term of mismatching entries at once. A term of
        0 means "unknown" (the index is compacted or missing), so the caller probes there.
        """
        while index > 0:
            try:
                our_term = self.term(index)
            except (Compacted, Unavailable):
                return index, 0
            if our_term <= term:
                return index, our_term
            index -= 1
        return 0, 0

    # --- reading ------------------------------------------------------------------------

    def unstable_entries(self) -> list[Entry]:
        return list(self.unstable.entries)

    def slice(self, lo: int, hi: int, max_size: int | None = None) -> list[Entry]:
        if lo > hi:
            raise RuntimeError(f"invalid slice {lo} > {hi}")
        if lo < self.first_index():
            raise Compacted(f"index {lo} compacted")
        if hi > self.last_index() + 1:
            raise RuntimeError(f"slice [{lo}, {hi}) out of bound (last {self.last_index()})")
        if lo == hi:
            return []
        result: list[Entry] = []
        offset = self.unstable.offset
        if lo < offset:
            stored_hi = min(hi, offset)
            stored = self.storage.entries(lo, stored_hi, max_size)
            if len(stored) < stored_hi - lo:
                return stored  # size limit reached inside the storage part
            result = stored
        if hi > offset:
            result = [*result, *self.unstable.slice(max(lo, offset), hi)]
        return limit_size(result, max_size)

    def entries(self, start: int, max_size: int | None = None) -> list[Entry]:
        if start > self.last_index():
            return []
        return self.slice(start, self.last_index() + 1, max_size)

    def all_entries(self) -> list[Entry]:
        return self.entries(self.first_index())

    def next_committed_entries(self) -> list[Entry]:
        start = max(self.applied + 1, self.first_index())
        if self.committed + 1 > start:
            return self.slice(start, self.committed + 1, self.max_apply_size)
        return []

    def has_next_committed_entries(self) -> bool:
        return self.committed + 1 > max(self.applied + 1, self.first_index())

    def snapshot(self) -> Snapshot:
        if self.unstable.snapshot is not None:
            return self.unstable.snapshot
        return self.storage.snapshot()

    # --- commit / apply / persist bookkeeping -------------------------------------------

    def commit_to(self, index: int) -> None:
        if self.committed < index:
            if self.last_index() < index:
                raise RuntimeError(f"commit {index} is past last index {self.last_index()}")
            self.committed = index

    def maybe_commit(self, index: int, term: int) -> bool:
        """Commit up to ``index`` only if that entry is of ``term`` (the leader's own)."""
        if index > self.committed and self.term_or_zero(index) == term:
            self.commit_to(index)
            return True
        return False

    def applied_to(self, index: int) -> None:
        if index == 0:
            return
        if self.committed < index or index < self.applied:
            raise RuntimeError(f"applied {index} out of range [{self.applied}, {self.committed}]")
        self.applied = index

    def stable_to(self, index: int, term: int) -> None:
        self.unstable.stable_to(index, term)

    def stable_snap_to(self, index: int) -> None:
        self.unstable.stable_snap_to(index)

    def restore(self, snapshot: Snapshot) -> None:
        self.committed = snapshot.metadata.index
        self.unstable.restore(snapshot)
