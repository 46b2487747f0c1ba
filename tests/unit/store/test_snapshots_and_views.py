"""Installing a snapshot reaches watchers (the changes it made, then a Restored marker), and what the
store hands out (views, events, restored objects) is read-only, so a caller cannot change the store
by mutating what it read."""

from __future__ import annotations

import copy
import json

import pytest

from shoal.api import errors
from shoal.api.objects import SERVICES, TASKS, Obj, clone
from shoal.store.memory import MemoryStore
from shoal.store.watch import Commit, Event, Restored, Subscription, WatchItem
from shoal.testing.clock import FakeClock
from shoal.testing.store_harness import InstantProposer


def new_store() -> MemoryStore:
    return MemoryStore(InstantProposer(), FakeClock())


def drain(sub: Subscription) -> list[WatchItem]:
    items = []
    while (item := sub.get_nowait()) is not None:
        items.append(item)
    return items


async def leader_and_stale_follower() -> tuple[MemoryStore, MemoryStore]:
    """The leader has s1 (updated since), s2; the follower's older state has s1 and s3."""
    leader, follower = new_store(), new_store()
    await leader.update(lambda tx: tx.create(SERVICES, {"ID": "s1", "Spec": {"Name": "web"}}))
    await leader.update(lambda tx: tx.create(SERVICES, {"ID": "s2", "Spec": {"Name": "db"}}))
    s1 = clone(leader.view().get(SERVICES, "s1") or {})
    s1["Spec"]["Name"] = "web2"
    await leader.update(lambda tx: tx.update(SERVICES, s1))
    await follower.update(lambda tx: tx.create(SERVICES, {"ID": "s1", "Spec": {"Name": "web"}}))
    await follower.update(lambda tx: tx.create(SERVICES, {"ID": "s3", "Spec": {"Name": "old"}}))
    return leader, follower


async def test_restore_tells_watchers_what_changed_then_marks_the_restore() -> None:
    leader, follower = await leader_and_stale_follower()
    services = follower.watch(lambda ev: ev.table == SERVICES)
    follower.restore(leader.snapshot())
    items = drain(services)
    assert isinstance(items[-1], Restored) and items[-1].index == 3
    changes = {(i.action, i.obj["ID"]) for i in items if isinstance(i, Event)}
    assert changes == {("delete", "s3"), ("create", "s2"), ("update", "s1")}
    update = next(i for i in items if isinstance(i, Event) and i.action == "update")
    assert update.old is not None and update.old["Spec"]["Name"] == "web"
    assert update.obj["Spec"]["Name"] == "web2"
    assert follower.view().get(SERVICES, "s3") is None and follower.last_index == 3


async def test_every_watcher_learns_of_a_restore_even_if_no_change_matched() -> None:
    leader, follower = await leader_and_stale_follower()
    tasks_only = follower.watch(lambda ev: ev.table == TASKS)
    follower.restore(leader.snapshot())
    assert drain(tasks_only) == [Restored(3)]


async def test_restored_marker_ends_a_batch_like_a_commit() -> None:
    """Readers that wait for a Commit to act on a batch act on a restore too."""
    assert issubclass(Restored, Commit)


async def test_view_objects_are_read_only() -> None:
    store = new_store()
    await store.update(lambda tx: tx.create(SERVICES, {"ID": "s1", "Spec": {"Name": "web", "Labels": {}},
                                                      "Endpoint": {"Ports": [{"TargetPort": 80}]}}))
    service = store.view().get(SERVICES, "s1")
    assert service is not None
    mutations = [
        lambda: service.__setitem__("Spec", {}),
        lambda: service["Spec"].__setitem__("Name", "hijacked"),
        lambda: service["Spec"]["Labels"].update(a="b"),
        lambda: service["Endpoint"]["Ports"].append({"TargetPort": 81}),
        lambda: service["Endpoint"]["Ports"][0].pop("TargetPort"),
        lambda: service.pop("Spec"),
        lambda: service["Version"].setdefault("Index", 7),
    ]
    for mutate in mutations:
        with pytest.raises(TypeError, match="read-only"):
            mutate()
    assert store.view().objects(SERVICES) == [
        {"ID": "s1", "Spec": {"Name": "web", "Labels": {}}, "Endpoint": {"Ports": [{"TargetPort": 80}]},
         "Version": {"Index": 1}, "CreatedAt": service["CreatedAt"], "UpdatedAt": service["UpdatedAt"]}
    ]


async def test_watch_events_and_restored_objects_are_read_only() -> None:
    leader, follower = await leader_and_stale_follower()
    sub = leader.watch()
    await leader.update(lambda tx: tx.create(TASKS, {"ID": "t1", "ServiceID": "s2", "Status": {"State": "new"}}))
    event = drain(sub)[0]
    assert isinstance(event, Event)
    with pytest.raises(TypeError):
        event.obj["Status"]["State"] = "running"
    follower.restore(leader.snapshot())
    restored = follower.view().get(TASKS, "t1")
    assert restored is not None
    with pytest.raises(TypeError):
        restored["Status"]["State"] = "running"
    assert follower.view().tasks_of_service("s2")[0]["Status"]["State"] == "new"


async def test_copies_of_what_was_read_are_plain_and_mutable() -> None:
    store = new_store()
    await store.update(lambda tx: tx.create(SERVICES, {"ID": "s1", "Spec": {"Name": "web", "Env": ["A=1"]}}))
    service = store.view().get(SERVICES, "s1")
    assert service is not None
    for copied in (clone(service), copy.deepcopy(service)):
        copied["Spec"]["Env"].append("B=2")
        assert type(copied) is dict and type(copied["Spec"]["Env"]) is list
    shallow: Obj = dict(service)
    shallow["Spec"] = {"Name": "other"}
    assert (store.view().get(SERVICES, "s1") or {})["Spec"] == {"Name": "web", "Env": ["A=1"]}
    # snapshots still encode read-only objects as plain JSON
    assert json.loads(store.snapshot())["tables"][SERVICES]["s1"]["Spec"]["Env"] == ["A=1"]


async def test_a_snapshot_of_a_newer_format_is_refused_and_changes_nothing() -> None:
    leader, follower = await leader_and_stale_follower()
    doc = json.loads(leader.snapshot())
    assert doc["format"] == 1
    doc["format"] = 2
    with pytest.raises(errors.FailedPrecondition, match="format 2, this shoald reads format 1"):
        follower.restore(json.dumps(doc).encode())
    assert {s["ID"] for s in follower.view().objects(SERVICES)} == {"s1", "s3"}


async def test_a_snapshot_written_before_formats_were_recorded_still_restores() -> None:
    leader, follower = await leader_and_stale_follower()
    doc = json.loads(leader.snapshot())
    del doc["format"]
    follower.restore(json.dumps(doc).encode())
    assert {s["ID"] for s in follower.view().objects(SERVICES)} == {"s1", "s2"}
