"""The scheduler through the harness: spread, filters, explanations, preferences, preassigned tasks."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from shoal.allocator.allocator import AllocatorPlanner
from shoal.api import states
from shoal.api.objects import NODES, TASKS, Obj
from shoal.orchestrator.task import new_task
from shoal.scheduler.scheduler import RETRY_INTERVAL, SchedulerPlanner
from shoal.testing.store_harness import CPU, GIB, StoreHarness


@pytest.fixture
def harness() -> StoreHarness:
    return StoreHarness()


async def pending_tasks(harness: StoreHarness, service: Obj, count: int, **kwargs: Any) -> list[Obj]:
    tasks = [
        await harness.create(TASKS, new_task(service, harness.clock.now(), slot=n + 1, **kwargs)) for n in range(count)
    ]
    await harness.run(AllocatorPlanner())
    return [harness.get(TASKS, t["ID"]) for t in tasks]


def placement(harness: StoreHarness) -> Counter[str]:
    hostnames = {n["ID"]: n["Description"]["Hostname"] for n in harness.view.objects(NODES)}
    return Counter(hostnames[t["NodeID"]] for t in harness.tasks() if t["NodeID"])


async def test_spreads_tasks_evenly_and_says_so(harness: StoreHarness) -> None:
    for name in ("a", "b", "c"):
        await harness.add_node(name)
    service = await harness.add_service("web", replicas=6)
    await pending_tasks(harness, service, 6)
    plan = await harness.run(SchedulerPlanner())
    assert len(plan.updates) == 6  # one transaction for the whole batch
    assert placement(harness) == {"a": 2, "b": 2, "c": 2}
    task = harness.tasks()[0]
    assert task["Status"]["State"] == states.ASSIGNED
    assert task["Status"]["Message"] == "scheduler assigned task to node"


async def test_prefers_nodes_with_fewer_tasks_overall(harness: StoreHarness) -> None:
    await harness.add_node("busy")
    await harness.add_node("idle")
    other = await harness.add_service("other", replicas=1)
    await pending_tasks(harness, other, 1)
    busy = next(n for n in harness.view.objects(NODES) if n["Description"]["Hostname"] == "busy")
    await harness.edit(
        TASKS, harness.tasks()[0]["ID"], lambda t: t.update(NodeID=busy["ID"]) or t["Status"].update(State="running")
    )
    service = await harness.add_service("web", replicas=1)
    await pending_tasks(harness, service, 1)
    await harness.run(SchedulerPlanner())
    assert harness.tasks(service["ID"])[0]["NodeID"] != busy["ID"]


async def test_unplaceable_task_stays_pending_with_counts(harness: StoreHarness) -> None:
    await harness.add_node("small", cpus=1)
    await harness.add_node("down", state="down")
    await harness.add_node("drained", availability="drain")
    await harness.add_node("mismatch", labels={"zone": "west"})
    await harness.add_node("also-small", cpus=1, labels={"zone": "east"})
    service = await harness.add_service(
        "web", constraints=["node.labels.zone!=west"], reservations={"NanoCPUs": 2 * CPU}
    )
    (task,) = await pending_tasks(harness, service, 1)
    plan = await harness.run(SchedulerPlanner())
    stuck = harness.get(TASKS, task["ID"])
    assert stuck["Status"]["State"] == states.PENDING
    assert stuck["Status"]["Err"] == (
        "no suitable node (2 nodes not available for new tasks; insufficient resources on 2 nodes; "
        "scheduling constraints not satisfied on 1 node)"
    )
    assert plan.wake_after == RETRY_INTERVAL
    # Nothing changed: the next pass writes nothing but still asks to be woken.
    again = await harness.run(SchedulerPlanner())
    assert again.is_empty() and again.wake_after == RETRY_INTERVAL


async def test_resources_are_charged_within_one_batch(harness: StoreHarness) -> None:
    await harness.add_node("one", cpus=2, memory=GIB)
    service = await harness.add_service("web", reservations={"MemoryBytes": GIB // 2})
    await pending_tasks(harness, service, 3)
    await harness.run(SchedulerPlanner())
    tasks = harness.tasks()
    assert [t["Status"]["State"] for t in tasks].count(states.ASSIGNED) == 2
    assert [t["Status"].get("Err") for t in tasks if t["Status"]["State"] == states.PENDING] == [
        "no suitable node (insufficient resources on 1 node)"
    ]


async def test_max_replicas_per_node(harness: StoreHarness) -> None:
    await harness.add_node("a")
    await harness.add_node("b")
    service = await harness.add_service("web", max_replicas=1)
    await pending_tasks(harness, service, 3)
    await harness.run(SchedulerPlanner())
    errs = [t["Status"].get("Err") for t in harness.tasks() if t["Status"]["State"] == states.PENDING]
    assert errs == ["no suitable node (max replicas per node limit exceed)"]
    assert placement(harness) == {"a": 1, "b": 1}


async def test_no_nodes_at_all(harness: StoreHarness) -> None:
    service = await harness.add_service("web")
    (task,) = await pending_tasks(harness, service, 1)
    await harness.run(SchedulerPlanner())
    assert harness.get(TASKS, task["ID"])["Status"]["Err"] == "no suitable node"


async def test_platform_filter_treats_x86_64_as_amd64(harness: StoreHarness) -> None:
    await harness.add_node("arm", arch="aarch64")
    await harness.add_node("intel", arch="x86_64")
    service = await harness.add_service("web")
    (task,) = await pending_tasks(harness, service, 1)
    await harness.edit(
        TASKS,
        task["ID"],
        lambda t: t["Spec"].update(Placement={"Platforms": [{"Architecture": "amd64", "OS": "linux"}]}),
    )
    await harness.run(SchedulerPlanner())
    assert placement(harness) == {"intel": 1}


async def test_host_mode_ports_never_share_a_node(harness: StoreHarness) -> None:
    await harness.add_node("a")
    await harness.add_node("b")
    service = await harness.add_service("web", ports=[{"TargetPort": 80, "PublishedPort": 8080, "PublishMode": "host"}])
    await pending_tasks(harness, service, 3)
    await harness.run(SchedulerPlanner())
    errs = [t["Status"].get("Err") for t in harness.tasks() if t["Status"]["State"] == states.PENDING]
    assert errs == ["no suitable node (host-mode port already in use on 2 nodes)"]


async def test_spread_preference_balances_label_values_first(harness: StoreHarness) -> None:
    for name, zone in (("e1", "east"), ("e2", "east"), ("e3", "east"), ("w1", "west")):
        await harness.add_node(name, labels={"zone": zone})
    service = await harness.add_service("web", preferences=["node.labels.zone"])
    await pending_tasks(harness, service, 4)
    await harness.run(SchedulerPlanner())
    counts = placement(harness)
    assert counts["w1"] == 2  # half the tasks to the one west node
    assert counts["e1"] + counts["e2"] + counts["e3"] == 2


async def test_preassigned_task_is_confirmed_or_explained(harness: StoreHarness) -> None:
    good = await harness.add_node("good")
    bad = await harness.add_node("bad", labels={"zone": "west"})
    service = await harness.add_service("agent", global_mode=True, constraints=["node.labels.zone!=west"])
    ok = await harness.create(TASKS, new_task(service, harness.clock.now(), node_id=good["ID"]))
    stuck = await harness.create(TASKS, new_task(service, harness.clock.now(), node_id=bad["ID"]))
    await harness.run(AllocatorPlanner())
    await harness.run(SchedulerPlanner())
    confirmed = harness.get(TASKS, ok["ID"])
    assert confirmed["Status"]["State"] == states.ASSIGNED
    assert confirmed["Status"]["Message"] == "scheduler confirmed task can run on preassigned node"
    assert harness.get(TASKS, stuck["ID"])["Status"]["Err"] == "scheduling constraints not satisfied on 1 node"


async def test_pending_task_desired_shutdown_goes_straight_to_shutdown(harness: StoreHarness) -> None:
    service = await harness.add_service("web")
    (task,) = await pending_tasks(harness, service, 1)
    await harness.edit(TASKS, task["ID"], lambda t: t.update(DesiredState=states.SHUTDOWN))
    await harness.run(SchedulerPlanner())
    assert harness.get(TASKS, task["ID"])["Status"]["State"] == states.SHUTDOWN


async def test_faulty_node_ranks_last(harness: StoreHarness) -> None:
    flaky = await harness.add_node("flaky")
    steady = await harness.add_node("steady")
    service = await harness.add_service("web")
    for _ in range(5):
        failed = new_task(service, harness.clock.now(), slot=1, node_id=flaky["ID"])
        failed["Status"] = {"State": states.FAILED, "Timestamp": failed["Status"]["Timestamp"]}
        failed["DesiredState"] = states.SHUTDOWN
        await harness.create(TASKS, failed)
    # "steady" runs more tasks overall, so only the failures can explain avoiding "flaky".
    other = await harness.add_service("other", replicas=1)
    busy = new_task(other, harness.clock.now(), slot=1, node_id=steady["ID"])
    busy["Status"]["State"] = states.RUNNING
    await harness.create(TASKS, busy)
    (task,) = await pending_tasks(harness, service, 1)
    await harness.run(SchedulerPlanner())
    hostnames = {n["ID"]: n["Description"]["Hostname"] for n in harness.view.objects(NODES)}
    assert hostnames[harness.get(TASKS, task["ID"])["NodeID"]] == "steady"
