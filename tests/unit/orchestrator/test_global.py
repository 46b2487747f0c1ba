"""Global services: one task per eligible node, drain/down/pause, constraints, node removal."""

from __future__ import annotations

from shoal.api import states
from shoal.api.objects import NODES, Obj
from shoal.planner import Planner
from shoal.testing.store_harness import StoreHarness


def running_nodes(harness: StoreHarness, service: Obj) -> set[str]:
    return {t["NodeID"] for t in harness.live_tasks(service["ID"]) if t["Status"]["State"] == states.RUNNING}


async def test_one_task_per_node_including_new_nodes(harness: StoreHarness, all_planners: list[Planner]) -> None:
    a = await harness.add_node("a")
    b = await harness.add_node("b")
    await harness.add_node("down", state="down")
    await harness.add_node("drained", availability="drain")
    service = await harness.add_service("agent", global_mode=True)
    await harness.settle(all_planners)
    assert running_nodes(harness, service) == {a["ID"], b["ID"]}
    task = harness.live_tasks(service["ID"])[0]
    assert task["Slot"] == 0
    assert task["Status"]["State"] == states.RUNNING
    c = await harness.add_node("c")
    await harness.settle(all_planners)
    assert running_nodes(harness, service) == {a["ID"], b["ID"], c["ID"]}


async def test_drain_shuts_down_without_replacement_and_reactivation_restores(
    harness: StoreHarness, all_planners: list[Planner]
) -> None:
    a = await harness.add_node("a")
    b = await harness.add_node("b")
    service = await harness.add_service("agent", global_mode=True)
    await harness.settle(all_planners)
    await harness.edit(NODES, a["ID"], lambda n: n["Spec"].update(Availability="drain"))
    await harness.settle(all_planners)
    assert running_nodes(harness, service) == {b["ID"]}
    on_a = [t for t in harness.tasks(service["ID"]) if t["NodeID"] == a["ID"]]
    assert [(t["DesiredState"], t["Status"]["State"]) for t in on_a] == [(states.SHUTDOWN, states.SHUTDOWN)]
    await harness.edit(NODES, a["ID"], lambda n: n["Spec"].update(Availability="active"))
    await harness.settle(all_planners)
    assert running_nodes(harness, service) == {a["ID"], b["ID"]}


async def test_paused_node_keeps_its_task_but_gets_no_new_one(
    harness: StoreHarness, all_planners: list[Planner]
) -> None:
    a = await harness.add_node("a")
    old = await harness.add_service("old", global_mode=True)
    await harness.settle(all_planners)
    await harness.edit(NODES, a["ID"], lambda n: n["Spec"].update(Availability="pause"))
    new = await harness.add_service("new", global_mode=True)
    await harness.settle(all_planners)
    assert running_nodes(harness, old) == {a["ID"]}
    assert harness.tasks(new["ID"]) == []


async def test_down_node_tasks_are_shut_down(harness: StoreHarness, all_planners: list[Planner]) -> None:
    a = await harness.add_node("a")
    service = await harness.add_service("agent", global_mode=True)
    await harness.settle(all_planners)
    await harness.edit(NODES, a["ID"], lambda n: n["Status"].update(State="down"))
    await harness.settle(all_planners)
    assert harness.live_tasks(service["ID"]) == []
    assert len(harness.tasks(service["ID"])) == 1


async def test_constraints_choose_nodes_and_label_changes_follow(
    harness: StoreHarness, all_planners: list[Planner]
) -> None:
    a = await harness.add_node("a", labels={"gpu": "yes"})
    b = await harness.add_node("b")
    service = await harness.add_service("agent", global_mode=True, constraints=["node.labels.gpu==yes"])
    await harness.settle(all_planners)
    assert running_nodes(harness, service) == {a["ID"]}
    await harness.edit(NODES, b["ID"], lambda n: n["Spec"]["Labels"].update(gpu="yes"))
    await harness.edit(NODES, a["ID"], lambda n: n["Spec"]["Labels"].pop("gpu"))
    await harness.settle(all_planners)
    assert running_nodes(harness, service) == {b["ID"]}


async def test_failed_task_restarts_on_the_same_node(harness: StoreHarness, all_planners: list[Planner]) -> None:
    a = await harness.add_node("a")
    await harness.add_node("b")
    service = await harness.add_service("agent", global_mode=True)
    await harness.settle(all_planners)
    (on_a,) = [t for t in harness.live_tasks(service["ID"]) if t["NodeID"] == a["ID"]]
    harness.clock.advance(1)
    await harness.set_task_state(on_a["ID"], states.FAILED, exit_code=137)
    await harness.settle(all_planners)
    harness.clock.advance(5)
    await harness.settle(all_planners)
    replacement = [t for t in harness.live_tasks(service["ID"]) if t["NodeID"] == a["ID"]]
    assert [t["Status"]["State"] for t in replacement] == [states.RUNNING]
    assert replacement[0]["ID"] != on_a["ID"]


async def test_removed_node_tasks_are_deleted(harness: StoreHarness, all_planners: list[Planner]) -> None:
    a = await harness.add_node("a")
    service = await harness.add_service("agent", global_mode=True)
    await harness.settle(all_planners)
    await harness.delete(NODES, a["ID"])
    await harness.settle(all_planners)
    assert harness.tasks(service["ID"]) == []
