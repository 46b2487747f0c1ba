"""MemoryStorage: an in-memory implementation of the ``Storage`` port.

It keeps the snapshot and the log entries after it. ``self._ents[0]`` is a dummy entry
whose index and term are those of the snapshot, so that ``term(snapshot index)`` is
still answered after compaction (the leader needs it for the consistency check).
"""

from __future__ import annotations

from collections.abc import Sequence

from shoal.raft.errors import Compacted, SnapOutOfDate, Unavailable
from shoal.raft.types import ConfState, Entry, HardState, Snapshot, SnapshotMetadata, entry_size


def limit_size(entries: Sequence[Entry], max_size: int | None) -> list[Entry]:
    """The longest prefix within ``max_size`` bytes, but never fewer than one entry."""
    if max_size is None or not entries:
        return list(entries)
    total = entry_size(entries[0])
    count = 1
    while count < len(entries):
        total += entry_size(entries[count])
        if total > max_size:
            break
        count += 1
    return list(entries[:count])


class MemoryStorage:
    def __init__(self, conf_state: ConfState | None = None) -> None:
        """``conf_state`` seeds the membership without a snapshot (handy for tests)."""
        self._hard_state = HardState()
        self._snapshot = Snapshot(SnapshotMetadata(conf_state=conf_state or ConfState()))
        self._ents: list[Entry] = [Entry(term=0, index=0)]

    def clone(self) -> MemoryStorage:
        """An independent copy (entries and snapshots are immutable, so sharing them is fine)."""
        copy = MemoryStorage()
        copy._hard_state = self._hard_state
        copy._snapshot = self._snapshot
        copy._ents = list(self._ents)
        return copy

    # --- Storage protocol ---------------------------------------------------------------

    def initial_state(self) -> tuple[HardState, ConfState]:
        return self._hard_state, self._snapshot.metadata.conf_state

    def entries(self, lo: int, hi: int, max_size: int | None = None) -> list[Entry]:
        offset = self._ents[0].index
        if lo <= offset:
            raise Compacted(f"index {lo} is compacted (first index {offset + 1})")
        if hi > self.last_index() + 1:
            raise Unavailable(f"entries [{lo}, {hi}) past last index {self.last_index()}")
        return limit_size(self._ents[lo - offset : hi - offset], max_size)

    def term(self, index: int) -> int:
        offset = self._ents[0].index
        if index < offset:
            raise Compacted(f"index {index} is compacted (snapshot index {offset})")
        if index - offset >= len(self._ents):
            raise Unavailable(f"index {index} past last index {self.last_index()}")
        return self._ents[index - offset].term

    def first_index(self) -> int:
        return self._ents[0].index + 1

    def last_index(self) -> int:
        return self._ents[0].index + len(self._ents) - 1

    def snapshot(self) -> Snapshot:
        return self._snapshot

    # --- write side (what a driver does with a Ready) ------------------------------------

    def set_hard_state(self, hard_state: HardState) -> None:
        self._hard_state = hard_state

    def apply_snapshot(self, snapshot: Snapshot) -> None:
        """Replace everything with ``snapshot`` (the log restarts right after it)."""
        if snapshot.metadata.index <= self._snapshot.metadata.index:
            raise SnapOutOfDate(f"snapshot {snapshot.metadata.index} is not newer than {self._snapshot.metadata.index}")
        self._snapshot = snapshot
        self._ents = [Entry(term=snapshot.metadata.term, index=snapshot.metadata.index)]

    def create_snapshot(self, index: int, conf_state: ConfState, data: bytes) -> Snapshot:
        """Record a snapshot of the state machine as of ``index`` (which must be in the log)."""
        if index <= self._snapshot.metadata.index:
            raise SnapOutOfDate(f"snapshot {index} is not newer than {self._snapshot.metadata.index}")
        if index > self.last_index():
            raise Unavailable(f"snapshot index {index} past last index {self.last_index()}")
        self._snapshot = Snapshot(SnapshotMetadata(index, self.term(index), conf_state), data)
        return self._snapshot

    def compact(self, compact_index: int) -> None:
        """Drop entries up to and including ``compact_index`` (keeping its term as the dummy)."""
        offset = self._ents[0].index
        if compact_index <= offset:
            raise Compacted(f"index {compact_index} already compacted (snapshot index {offset})")
        if compact_index > self.last_index():
            raise Unavailable(f"compact index {compact_index} past last index {self.last_index()}")
        kept = self._ents[compact_index - offset :]
        self._ents = [Entry(term=kept[0].term, index=kept[0].index), *kept[1:]]

    def append(self, entries: Sequence[Entry]) -> None:
        """Append entries, replacing any existing suffix they conflict with."""
        if not entries:
            return
        first = self.first_index()
        last_new = entries[-1].index
        if last_new < first:
            return  # everything is already compacted
        if entries[0].index < first:
            entries = entries[first - entries[0].index :]
        offset = entries[0].index - self._ents[0].index
        if offset > len(self._ents):
            raise Unavailable(f"missing log entry: last {self.last_index()}, appending at {entries[0].index}")
        self._ents = [*self._ents[:offset], *entries]
