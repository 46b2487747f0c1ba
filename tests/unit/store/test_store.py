"""The store: transactions commit through the proposer, versions come from the commit index, watchers see
each change followed by a commit marker, and a failed transaction commits nothing."""

from __future__ import annotations

import pytest

from shoal.api import errors
from shoal.api.objects import SERVICES, TASKS, clone
from shoal.store.memory import MemoryStore
from shoal.store.watch import Commit, Event
from shoal.testing.clock import FakeClock
from shoal.testing.store_harness import InstantProposer


def new_store() -> MemoryStore:
    return MemoryStore(InstantProposer(), FakeClock())


async def test_create_sets_version_from_commit_index() -> None:
    store = new_store()
    await store.update(lambda tx: tx.create(SERVICES, {"ID": "s1", "Spec": {"Name": "web"}}))
    await store.update(lambda tx: tx.create(SERVICES, {"ID": "s2", "Spec": {"Name": "db"}}))
    s1 = store.view().get(SERVICES, "s1")
    s2 = store.view().get(SERVICES, "s2")
    assert s1 is not None and s2 is not None
    assert (s1["Version"]["Index"], s2["Version"]["Index"]) == (1, 2)
    assert s1["CreatedAt"].endswith("Z")


async def test_stale_update_is_refused_and_changes_nothing() -> None:
    store = new_store()
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


async def test_failed_transaction_commits_nothing() -> None:
    store = new_store()

    def half_done(tx: object) -> None:
        tx.create(SERVICES, {"ID": "s1"})  # type: ignore[attr-defined]
        raise errors.InvalidArgument("nope")

    with pytest.raises(errors.InvalidArgument):
        await store.update(half_done)
    assert store.view().objects(SERVICES) == []
    assert store.last_index == 0


async def test_watch_sees_events_then_commit() -> None:
    store = new_store()
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
