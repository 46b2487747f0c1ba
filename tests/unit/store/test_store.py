"""The store: transactions commit through the proposer, versions come from the commit index, watchers see
each change followed by a commit marker, and the local journal survives restarts and torn tails."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoal.api import errors
from shoal.api.objects import SERVICES, TASKS, clone
from shoal.store.journal import JournalCorrupted, LocalJournal
from shoal.store.memory import MemoryStore
from shoal.store.watch import Commit, Event
from shoal.testing.clock import FakeClock


def open_store(tmp_path: Path) -> tuple[MemoryStore, LocalJournal]:
    journal = LocalJournal(tmp_path)
    store = MemoryStore(journal, FakeClock())
    journal.open(store.snapshot, store.restore)
    return store, journal


async def test_create_sets_version_from_commit_index(tmp_path: Path) -> None:
    store, _ = open_store(tmp_path)
    await store.update(lambda tx: tx.create(SERVICES, {"ID": "s1", "Spec": {"Name": "web"}}))
    await store.update(lambda tx: tx.create(SERVICES, {"ID": "s2", "Spec": {"Name": "db"}}))
    s1 = store.view().get(SERVICES, "s1")
    s2 = store.view().get(SERVICES, "s2")
    assert s1 is not None and s2 is not None
    assert (s1["Version"]["Index"], s2["Version"]["Index"]) == (1, 2)
    assert s1["CreatedAt"].endswith("Z")


async def test_stale_update_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    store, _ = open_store(tmp_path)
    await store.update(lambda tx: tx.create(SERVICES, {"ID": "s1", "Spec": {"Name": "web"}}))
    stale = clone(store.view().get(SERVICES, "s1") or {})
    fresh = clone(stale)
    fresh["Spec"]["Name"] = "web2"
    await store.update(lambda tx: tx.update(SERVICES, fresh))
    stale["Spec"]["Name"] = "web3"
    with pytest.raises(errors.OutOfSequence) as caught:
        await store.update(lambda tx: tx.update(SERVICES, stale))
    assert str(caught.value) == "rpc error: code = Unknown desc = update out of sequence"
    assert (store.view().get(SERVICES, "s1") or {})["Spec"]["Name"] == "web2"


async def test_failed_transaction_commits_nothing(tmp_path: Path) -> None:
    store, _ = open_store(tmp_path)

    def half_done(tx: object) -> None:
        tx.create(SERVICES, {"ID": "s1"})  # type: ignore[attr-defined]
        raise errors.InvalidArgument("nope")

    with pytest.raises(errors.InvalidArgument):
        await store.update(half_done)
    assert store.view().objects(SERVICES) == []
    assert store.last_index == 0


async def test_watch_sees_events_then_commit(tmp_path: Path) -> None:
    store, _ = open_store(tmp_path)
    sub = store.watch(lambda ev: ev.table == TASKS)

    def two_tasks(tx: object) -> None:
        tx.create(TASKS, {"ID": "t1", "ServiceID": "s"})  # type: ignore[attr-defined]
        tx.create(TASKS, {"ID": "t2", "ServiceID": "s"})  # type: ignore[attr-defined]
        tx.create(SERVICES, {"ID": "s"})  # type: ignore[attr-defined]

    await store.update(two_tasks)
    items = [await sub.get() for _ in range(3)]
    assert [type(i) for i in items] == [Event, Event, Commit]
    assert [i.obj["ID"] for i in items if isinstance(i, Event)] == ["t1", "t2"]
    assert sorted(t["ID"] for t in store.view().tasks_of_service("s")) == ["t1", "t2"]
    sub.close()


async def test_journal_replays_after_restart(tmp_path: Path) -> None:
    store, journal = open_store(tmp_path)
    for n in range(5):
        await store.update(lambda tx, n=n: tx.create(SERVICES, {"ID": f"s{n}"}))
    await store.update(lambda tx: tx.delete(SERVICES, "s0"))
    journal.close()
    again, _ = open_store(tmp_path)
    assert sorted(s["ID"] for s in again.view().objects(SERVICES)) == ["s1", "s2", "s3", "s4"]
    assert again.last_index == 6


async def test_journal_cuts_torn_tail_at_every_byte(tmp_path: Path) -> None:
    store, journal = open_store(tmp_path)
    await store.update(lambda tx: tx.create(SERVICES, {"ID": "kept"}))
    synced = journal.journal_path.stat().st_size
    await store.update(lambda tx: tx.create(SERVICES, {"ID": "torn"}))
    journal.close()
    full = journal.journal_path.read_bytes()
    for cut in range(synced, len(full)):
        journal.journal_path.write_bytes(full[:cut])
        again, j2 = open_store(tmp_path)
        assert [s["ID"] for s in again.view().objects(SERVICES)] == ["kept"]
        j2.close()
        # the next write lands after the cut, and replays
    journal.journal_path.write_bytes(full)


async def test_journal_refuses_corruption_before_valid_records(tmp_path: Path) -> None:
    store, journal = open_store(tmp_path)
    for n in range(3):
        await store.update(lambda tx, n=n: tx.create(SERVICES, {"ID": f"s{n}"}))
    journal.close()
    data = bytearray(journal.journal_path.read_bytes())
    data[20] ^= 0xFF  # inside the first record's payload
    journal.journal_path.write_bytes(bytes(data))
    with pytest.raises(JournalCorrupted):
        open_store(tmp_path)


async def test_compaction_keeps_state(tmp_path: Path) -> None:
    store, journal = open_store(tmp_path)
    await store.update(lambda tx: tx.create(SERVICES, {"ID": "a"}))
    journal.compact()
    await store.update(lambda tx: tx.create(SERVICES, {"ID": "b"}))
    journal.close()
    again, _ = open_store(tmp_path)
    assert sorted(s["ID"] for s in again.view().objects(SERVICES)) == ["a", "b"]
    assert again.last_index == 2
