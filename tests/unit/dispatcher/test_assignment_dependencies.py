"""Secrets and configs in the assignment stream: a node gets exactly those its unfinished tasks
reference (never another node's), they go away once no such task is left, and the wire carries
them in full first and as changes after, rebuilt by the receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from shoal.api import states
from shoal.api.dispatch import Assignments
from shoal.api.dispatch_wire import AssignmentDiffer, AssignmentReceiver
from shoal.api.objects import CONFIGS, NODES, SECRETS, TASKS, Obj
from shoal.dispatcher.dispatcher import Dispatcher
from shoal.store.memory import MemoryStore, Tx
from shoal.testing.clock import FakeClock
from shoal.testing.store_harness import InstantProposer


def task(task_id: str, node_id: str, secrets: list[str] = (), configs: list[str] = (),  # type: ignore[assignment]
         state: str = states.RUNNING) -> Obj:
    container: dict[str, Any] = {
        "Image": "busybox",
        "Secrets": [{"SecretID": s, "SecretName": s, "File": {"Name": s}} for s in secrets],
        "Configs": [{"ConfigID": c, "ConfigName": c, "File": {"Name": "/" + c}} for c in configs],
    }
    return {"ID": task_id, "NodeID": node_id, "Spec": {"ContainerSpec": container}, "Status": {"State": state}}


@pytest.fixture
async def store() -> MemoryStore:
    store = MemoryStore(InstantProposer(), FakeClock())

    def populate(tx: Tx) -> None:
        for node_id in ("n1", "n2"):
            tx.create(NODES, {"ID": node_id, "Spec": {}, "Status": {"State": "ready"}})
        for name in ("s1", "s2", "shared"):
            tx.create(SECRETS, {"ID": name, "Spec": {"Name": name, "Data": "c2VjcmV0"}})
        tx.create(CONFIGS, {"ID": "c1", "Spec": {"Name": "c1", "Data": "Y29uZmln"}})
        tx.create(TASKS, task("t1", "n1", ["s1", "shared"], ["c1"]))
        tx.create(TASKS, task("t2", "n2", ["s2", "shared"]))

    await store.update(populate)
    return store


async def first(stream: AsyncIterator[Assignments]) -> Assignments:
    return await anext(stream)


async def test_each_node_gets_only_what_its_tasks_reference(store: MemoryStore) -> None:
    dispatcher = Dispatcher(store, FakeClock())
    sessions = {n: (await dispatcher.register(n, {"Hostname": n}, "10.0.0.1")).session_id for n in ("n1", "n2")}
    one = await first(dispatcher.assignments("n1", sessions["n1"]))
    two = await first(dispatcher.assignments("n2", sessions["n2"]))
    assert set(one.secrets) == {"s1", "shared"} and set(one.configs) == {"c1"}
    assert set(two.secrets) == {"s2", "shared"} and two.configs == {}
    assert one.secrets["s1"]["Spec"]["Data"] == "c2VjcmV0"


async def test_what_only_finished_tasks_used_is_taken_back(store: MemoryStore) -> None:
    dispatcher = Dispatcher(store, FakeClock())
    session = (await dispatcher.register("n1", {"Hostname": "n1"}, "10.0.0.1")).session_id
    stream = dispatcher.assignments("n1", session)
    assert set((await first(stream)).secrets) == {"s1", "shared"}

    def finish(tx: Tx) -> None:
        done = dict(task("t1", "n1", ["s1", "shared"], ["c1"], state=states.COMPLETE))
        done["Version"] = tx.get(TASKS, "t1")["Version"]  # type: ignore[index]
        tx.update(TASKS, done)
        tx.create(TASKS, task("t3", "n1", ["shared"]))

    await store.update(finish)
    after = await anext(stream)
    assert set(after.secrets) == {"shared"} and after.configs == {}
    assert set(after.tasks) == {"t1", "t3"}


def test_the_wire_sends_sets_in_full_then_changes() -> None:
    differ, receiver = AssignmentDiffer(), AssignmentReceiver()
    secret_a, secret_b = {"ID": "a", "Spec": {"Data": "QQ=="}}, {"ID": "b", "Spec": {"Data": "Qg=="}}
    config = {"ID": "c", "Spec": {"Data": "Qw=="}}
    first_message = differ.message({"t": {"v": 1}}, None, secrets={"a": secret_a}, configs={"c": config})
    assert first_message is not None and first_message["secrets"] == {"update": {"a": secret_a}, "remove": []}
    receiver.apply(first_message)
    assert receiver.current("secrets") == {"a": secret_a} and receiver.current("configs") == {"c": config}
    assert differ.message({"t": {"v": 1}}, None, secrets={"a": secret_a}, configs={"c": config}) is None
    second = differ.message({"t": {"v": 1}}, None, secrets={"b": secret_b}, configs={})
    assert second == {"seq": 2, "secrets": {"update": {"b": secret_b}, "remove": ["a"]},
                      "configs": {"update": {}, "remove": ["c"]}}
    receiver.apply(second)
    assert receiver.current("secrets") == {"b": secret_b} and receiver.current("configs") == {}
    # a new stream starts from scratch: the receiver forgets what an earlier full set said
    fresh = AssignmentDiffer().message({}, None, secrets={})
    restarted = AssignmentReceiver()
    restarted.sets = {"secrets": {"old": secret_a}}
    restarted.apply(fresh)
    assert restarted.current("secrets") == {}
