"""Generic resources and plugins, as swarmkit's scheduler checks them: a task asking for
`--generic-resource gpu=1` goes only where a gpu is free, and a task whose log driver the node lacks
stays pending with "missing plugin"."""

from __future__ import annotations

from typing import Any

import pytest

from shoal.allocator.allocator import AllocatorPlanner
from shoal.api import states
from shoal.api.objects import TASKS, Obj
from shoal.orchestrator.task import new_task
from shoal.scheduler.scheduler import SchedulerPlanner
from shoal.testing.store_harness import StoreHarness


@pytest.fixture
def harness() -> StoreHarness:
    return StoreHarness()


async def node_with(harness: StoreHarness, hostname: str, **description: Any) -> Obj:
    node = await harness.add_node(hostname)
    return await harness.edit("nodes", node["ID"], lambda n: _describe(n, description))


def _describe(node: Obj, description: dict[str, Any]) -> None:
    if "generic" in description:
        node["Description"]["Resources"]["GenericResources"] = description["generic"]
    if "plugins" in description:
        node["Description"]["Engine"]["Plugins"] = description["plugins"]


async def pending(harness: StoreHarness, service: Obj, count: int) -> list[Obj]:
    tasks = [await harness.create(TASKS, new_task(service, harness.clock.now(), slot=n + 1)) for n in range(count)]
    await harness.run(AllocatorPlanner())  # new → pending, as before any scheduling
    return tasks


def gpus(count: int) -> list[Obj]:
    return [{"DiscreteResourceSpec": {"Kind": "gpu", "Value": count}}]


async def service_asking(harness: StoreHarness, name: str, **template: Any) -> Obj:
    service = await harness.add_service(name)
    return await harness.update_service_spec(service["ID"], lambda spec: spec["TaskTemplate"].update(template))


async def test_generic_resources_are_placed_where_free_and_charged(harness: StoreHarness) -> None:
    await node_with(harness, "plain")
    named = await node_with(harness, "named", generic=[
        {"NamedResourceSpec": {"Kind": "gpu", "Value": "GPU-0"}},
        {"NamedResourceSpec": {"Kind": "gpu", "Value": "GPU-1"}}])
    service = await service_asking(harness, "train", Resources={"Reservations": {"GenericResources": gpus(1)}})
    await pending(harness, service, 3)
    await harness.run(SchedulerPlanner())
    tasks = harness.tasks(service["ID"])
    placed = [t for t in tasks if t["Status"]["State"] == states.ASSIGNED]
    assert [t["NodeID"] for t in placed] == [named["ID"], named["ID"]]
    (waiting,) = [t for t in tasks if t["Status"]["State"] == states.PENDING]
    assert waiting["Status"]["Err"] == "no suitable node (insufficient resources on 2 nodes)"


async def test_discrete_generic_resources_count_too(harness: StoreHarness) -> None:
    node = await node_with(harness, "discrete", generic=gpus(2))
    service = await service_asking(harness, "train", Resources={"Reservations": {"GenericResources": gpus(2)}})
    (task,) = await pending(harness, service, 1)
    await harness.run(SchedulerPlanner())
    assert harness.get(TASKS, task["ID"])["NodeID"] == node["ID"]


async def test_a_log_driver_the_node_lacks_leaves_the_task_pending(harness: StoreHarness) -> None:
    await node_with(harness, "json-only", plugins=[{"Type": "Log", "Name": "json-file"}])
    missing = await service_asking(harness, "syslogged", LogDriver={"Name": "bogus-driver"})
    fine = await service_asking(harness, "jsonlogged", LogDriver={"Name": "json-file"})
    silent = await service_asking(harness, "silent", LogDriver={"Name": "none"})
    (stuck,) = await pending(harness, missing, 1)
    placed = [*await pending(harness, fine, 1), *await pending(harness, silent, 1)]
    await harness.run(SchedulerPlanner())
    stuck = harness.get(TASKS, stuck["ID"])
    assert stuck["Status"]["State"] == states.PENDING
    assert stuck["Status"]["Err"] == "no suitable node (missing plugin on 1 node)"
    assert all(harness.get(TASKS, t["ID"])["Status"]["State"] == states.ASSIGNED for t in placed)


async def test_a_volume_driver_the_node_lacks_leaves_the_task_pending(harness: StoreHarness) -> None:
    await node_with(harness, "local-only", plugins=[{"Type": "Volume", "Name": "local"}])
    mount = {"Type": "volume", "Source": "data", "Target": "/data",
             "VolumeOptions": {"DriverConfig": {"Name": "nfs-plugin"}}}
    service = await service_asking(harness, "stateful", ContainerSpec={"Image": "busybox", "Mounts": [mount]})
    (task,) = await pending(harness, service, 1)
    await harness.run(SchedulerPlanner())
    assert harness.get(TASKS, task["ID"])["Status"]["Err"] == "no suitable node (missing plugin on 1 node)"
