"""Rebuild the raft log from the records of every segment, given the snapshot it starts from.

Rules, applied record by record in file order:
- an entry at index i replaces the log from i on; an entry at or below the snapshot index is
  covered by the snapshot and only cuts off what followed it;
- the last hard state wins (its commit is raised to the snapshot index, which is committed);
- an *installed* snapshot mark (one received from the leader) discards every entry before it;
- entries must follow on without gaps and terms must never go down.
Anything else is ``WALCorrupted`` naming the file and offset.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from shoal.manager.wal.errors import WALCorrupted
from shoal.manager.wal.records import SegmentHeader, SnapshotMark
from shoal.manager.wal.segments import SegmentContents
from shoal.raft.types import Entry, HardState


@dataclass
class ReplayedLog:
    metadata: bytes
    hard_state: HardState
    snapshot_index: int
    snapshot_term: int
    entries: list[Entry] = field(default_factory=list)
    last_mark: SnapshotMark | None = None

    @property
    def last_index(self) -> int:
        return self.entries[-1].index if self.entries else self.snapshot_index


def snapshot_marks(contents: Sequence[SegmentContents]) -> list[SnapshotMark]:
    return [rec for seg in contents for _, rec in seg.records if isinstance(rec, SnapshotMark)]


def replay(contents: Sequence[SegmentContents], base: SnapshotMark | None) -> ReplayedLog:
    base_index = base.index if base else 0
    log = ReplayedLog(b"", HardState(), base_index, base.term if base else 0)
    entries = log.entries
    metadata: bytes | None = None
    for seg in contents:
        path = seg.segment.path
        for offset, rec in seg.records:
            if isinstance(rec, Entry):
                if rec.index <= base_index:
                    entries.clear()
                    continue
                position = rec.index - base_index - 1
                if position > len(entries):
                    why = f"entry {rec.index} does not follow the log's last index {base_index + len(entries)}"
                    raise WALCorrupted(path, offset, why)
                del entries[position:]
                previous_term = entries[-1].term if entries else 0
                if rec.term < previous_term:
                    why = f"entry {rec.index} has term {rec.term}, below the term {previous_term} before it"
                    raise WALCorrupted(path, offset, why)
                entries.append(rec)
            elif isinstance(rec, HardState):
                log.hard_state = rec
            elif isinstance(rec, SnapshotMark):
                if rec.installed:
                    if rec.index > base_index:
                        why = f"the snapshot at index {rec.index} installed here has no valid snapshot file"
                        raise WALCorrupted(path, offset, why)
                    entries.clear()
                log.last_mark = rec
            elif isinstance(rec, SegmentHeader) and metadata is None:
                metadata = rec.metadata
    log.metadata = metadata or b""
    _settle_commit(log, contents)
    return log


def _settle_commit(log: ReplayedLog, contents: Sequence[SegmentContents]) -> None:
    hs = log.hard_state
    commit = max(hs.commit, log.snapshot_index)
    if commit > log.last_index:
        path = contents[-1].segment.path if contents else "wal"
        raise WALCorrupted(path, 0, f"commit index {commit} is past the last log index {log.last_index}")
    log.hard_state = HardState(hs.term, hs.vote, commit)
