"""Random operation sequences against a model: after any crash, recovery returns exactly the
state that was synced (power loss) or written (process crash)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from conftest import log_of, open_on
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shoal.manager.wal.memfs import MemoryFS
from shoal.manager.wal.storage import DiskStorage
from shoal.raft.types import ConfState, Entry, HardState, Snapshot, SnapshotMetadata

CONF = ConfState(voters=(1, 2))


@dataclass
class State:
    """The log as raft sees it: entries above the snapshot, the hard state, the snapshot."""

    entries: list[Entry] = field(default_factory=list)
    hard_state: HardState = field(default_factory=HardState)
    snapshot: Snapshot = field(default_factory=Snapshot)

    @property
    def last_index(self) -> int:
        return self.entries[-1].index if self.entries else self.snapshot.metadata.index

    @property
    def last_term(self) -> int:
        return self.entries[-1].term if self.entries else self.snapshot.metadata.term


ops = st.one_of(
    st.tuples(st.just("append"), st.integers(0, 3), st.integers(1, 4), st.integers(0, 1)),
    st.tuples(st.just("commit"), st.integers(1, 3)),
    st.tuples(st.just("sync")),
    st.tuples(st.just("snapshot")),
    st.tuples(st.just("compact"), st.integers(0, 3)),
    st.tuples(st.just("install"), st.integers(1, 5)),
    st.tuples(st.just("crash"), st.sampled_from(["power", "process"])),
)


def state_of(storage: DiskStorage) -> State:
    snap = storage.snapshot()
    entries = [e for e in log_of(storage) if e.index > snap.metadata.index]
    return State(entries, storage.initial_state()[0], snap)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ops, min_size=1, max_size=40), st.sampled_from([300, 2000]), st.integers(0, 1))
def test_random_operations_recover_to_the_model(
    operations: list[tuple[Any, ...]], segment_bytes: int, keep_old: int
) -> None:
    """``since_sync`` holds every state written since the last sync: a power cut may leave any
    of them (a full segment is fsynced when the next one starts), but never anything else."""
    fs = MemoryFS()
    storage = open_on(fs, segment_bytes=segment_bytes, keep_old_snapshots=keep_old)
    written = State()
    since_sync = [State()]
    term = 1
    for op in operations:
        hs = written.hard_state
        if op[0] == "append":
            _, back, count, bump = op
            start = max(written.last_index + 1 - int(back), hs.commit + 1, written.snapshot.metadata.index + 1)
            term += int(bump)
            new = [Entry(term, i, data=f"{term}/{i}".encode()) for i in range(start, start + int(count))]
            new_hs = HardState(term, 1, hs.commit)
            storage.save(new_hs, new)
            written.entries = [e for e in written.entries if e.index < start] + new
            written.hard_state = new_hs
        elif op[0] == "commit":
            commit = min(written.last_index, hs.commit + int(op[1]))
            new_hs = HardState(hs.term, hs.vote, commit)
            storage.save(new_hs)
            written.hard_state = new_hs
        elif op[0] == "sync":
            storage.sync()
            since_sync = []
        elif op[0] == "snapshot":
            index = hs.commit
            if index <= written.snapshot.metadata.index:
                continue
            snap = storage.create_snapshot(index, CONF, b"state@%d" % index)
            written.snapshot = snap
            written.entries = [e for e in written.entries if e.index > index]
            since_sync = []  # creating a snapshot syncs the WAL
        elif op[0] == "compact":
            storage.compact(max(0, written.snapshot.metadata.index - int(op[1])))
        elif op[0] == "install":
            index = written.last_index + int(op[1])
            term = max(term, written.last_term) + 1
            snap = Snapshot(SnapshotMetadata(index, term, CONF), b"leader@%d" % index)
            new_hs = HardState(term, 0, index)
            storage.save(new_hs, (), snap)
            written = State([], new_hs, snap)
        else:
            fs.crash(op[1])
            storage = open_on(fs, segment_bytes=segment_bytes, keep_old_snapshots=keep_old)
            recovered = state_of(storage)
            if op[1] == "power":
                assert recovered in [*since_sync, written]
            else:
                assert recovered == written
            written = recovered
            since_sync = []
            term = max(term, written.hard_state.term)
        assert state_of(storage) == written
        since_sync.append(copy.deepcopy(written))
    fs.crash("power")
    assert state_of(open_on(fs, segment_bytes=segment_bytes, keep_old_snapshots=keep_old)) in since_sync
