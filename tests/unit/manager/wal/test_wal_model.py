"""Random operation sequences against a model: after any crash, recovery returns exactly the
state that was synced (power loss) or written (process crash)."""

from __future__ import annotations

import copy
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from conftest import log_of, open_on
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shoal.manager.wal.storage import DiskStorage
from shoal.raft.types import ConfState, Entry, HardState, Snapshot, SnapshotMetadata
from shoal.testing.memfs import MemoryFS

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
    st.tuples(st.just("crash"), st.sampled_from(["power", "process", "torn"])),
)


def state_of(storage: DiskStorage) -> State:
    snap = storage.snapshot()
    entries = [e for e in log_of(storage) if e.index > snap.metadata.index]
    return State(entries, storage.initial_state()[0], snap)


def saved_states(state: State, hs: HardState | None, entries: Sequence[Entry], snap: Snapshot | None) -> list[State]:
    """The state after each prefix of the records one save writes (snapshot mark, entries, hard
    state, in that order): a torn write may stop after any of them."""
    states = []
    state = copy.deepcopy(state)
    if snap is not None:
        old = state.hard_state
        state = State([], HardState(old.term, old.vote, max(old.commit, snap.metadata.index)), snap)
        states.append(copy.deepcopy(state))
    for entry in entries:
        state.entries = [e for e in state.entries if e.index < entry.index] + [entry]
        states.append(copy.deepcopy(state))
    if hs is not None:
        state.hard_state = hs
        states.append(copy.deepcopy(state))
    return states


operation_lists = st.lists(ops, min_size=1, max_size=40)
segment_sizes = st.sampled_from([300, 2000])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operation_lists, segment_sizes, st.integers(0, 1), st.randoms())
def test_random_operations_recover_to_the_model(
    operations: list[tuple[Any, ...]], segment_bytes: int, keep_old: int, rng: random.Random
) -> None:
    run_against_model(operations, segment_bytes, keep_old, rng)


@pytest.mark.soak
@pytest.mark.timeout(1800)
@settings(max_examples=10000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ops, min_size=1, max_size=120), segment_sizes, st.integers(0, 1), st.randoms())
def test_random_operations_recover_to_the_model_soak(
    operations: list[tuple[Any, ...]], segment_bytes: int, keep_old: int, rng: random.Random
) -> None:
    run_against_model(operations, segment_bytes, keep_old, rng)


def run_against_model(operations: list[tuple[Any, ...]], segment_bytes: int, keep_old: int, rng: random.Random) -> None:
    """``since_sync`` holds every state reachable by writing a prefix of the records saved since
    the last sync: a power cut or a torn write-back may leave any of them (a full segment is also
    fsynced when the next one starts), never anything else. A process crash loses nothing."""
    fs = MemoryFS()

    def reopen() -> DiskStorage:
        return open_on(fs, segment_bytes=segment_bytes, keep_old_snapshots=keep_old)

    storage = reopen()
    written = State()
    since_sync = [State()]
    term = 1

    def save(hs: HardState | None, entries: Sequence[Entry] = (), snap: Snapshot | None = None) -> State:
        storage.save(hs, entries, snap)
        states = saved_states(written, hs, entries, snap)
        since_sync.extend(states)
        return states[-1] if states else written

    for op in operations:
        hs = written.hard_state
        if op[0] == "append":
            _, back, count, bump = op
            start = max(written.last_index + 1 - back, hs.commit + 1, written.snapshot.metadata.index + 1)
            term += bump
            new = [Entry(term, i, data=f"{term}/{i}".encode()) for i in range(start, start + count)]
            written = save(HardState(term, 1, hs.commit), new)
        elif op[0] == "commit":
            written = save(HardState(hs.term, hs.vote, min(written.last_index, hs.commit + op[1])))
        elif op[0] == "sync":
            storage.sync()
            since_sync = [written]
        elif op[0] == "snapshot":
            index = hs.commit
            if index <= written.snapshot.metadata.index:
                continue
            snap = storage.create_snapshot(index, CONF, b"state@%d" % index)
            written = State([e for e in written.entries if e.index > index], hs, snap)
            since_sync = [written]  # creating a snapshot syncs the WAL
        elif op[0] == "compact":
            storage.compact(max(0, written.snapshot.metadata.index - op[1]))
        elif op[0] == "install":
            index = written.last_index + op[1]
            term = max(term, written.last_term) + 1
            snap = Snapshot(SnapshotMetadata(index, term, CONF), b"leader@%d" % index)
            written = save(HardState(term, 0, index), [], snap)
        else:
            fs.crash(op[1], rng)
            storage = reopen()
            recovered = state_of(storage)
            if op[1] == "process":
                assert recovered == written
            else:
                assert recovered in since_sync
            written = recovered
            since_sync = [written]
            term = max(term, written.hard_state.term)
        assert state_of(storage) == written
    fs.crash("torn", rng)
    assert state_of(reopen()) in since_sync
