"""The constraint enforcer rejects tasks whose node stopped meeting their constraints or resources."""

from __future__ import annotations

from shoal.api import states
from shoal.api.objects import NODES, TASKS
from shoal.orchestrator.enforcer import ConstraintEnforcerPlanner
from shoal.planner import Planner
from shoal.testing.store_harness import GIB, StoreHarness


async def test_label_removed_rejects_and_the_task_moves(harness: StoreHarness, all_planners: list[Planner]) -> None:
    a = await harness.add_node("a", labels={"tier": "web"})
    b = await harness.add_node("b")
    service = await harness.add_service("web", constraints=["node.labels.tier==web"], restart={"Delay": 0})
    await harness.settle(all_planners)
    (first,) = harness.live_tasks(service["ID"])
    assert first["NodeID"] == a["ID"]
    await harness.edit(NODES, a["ID"], lambda n: n["Spec"]["Labels"].clear())
    await harness.edit(NODES, b["ID"], lambda n: n["Spec"]["Labels"].update(tier="web"))
    await harness.run(ConstraintEnforcerPlanner())
    rejected = harness.get(TASKS, first["ID"])["Status"]
    assert rejected["State"] == states.REJECTED
    assert rejected["Message"] == "task rejected by constraint enforcer"
    assert rejected["Err"] == "assigned node no longer meets constraints"
    await harness.settle(all_planners)
    (moved,) = harness.live_tasks(service["ID"])
    assert moved["NodeID"] == b["ID"] and moved["Status"]["State"] == states.RUNNING


async def test_shrunken_node_rejects_the_tasks_that_no_longer_fit(
    harness: StoreHarness, all_planners: list[Planner]
) -> None:
    a = await harness.add_node("a", memory=4 * GIB)
    service = await harness.add_service("web", replicas=3, reservations={"MemoryBytes": GIB})
    for _ in range(3):
        harness.clock.advance(1)
        await harness.settle(all_planners)
    assert len(harness.live_tasks(service["ID"])) == 3
    await harness.edit(NODES, a["ID"], lambda n: n["Description"]["Resources"].update(MemoryBytes=2 * GIB))
    await harness.run(ConstraintEnforcerPlanner())
    states_ = [t["Status"]["State"] for t in harness.tasks(service["ID"])]
    assert states_.count(states.REJECTED) == 1
    assert states_.count(states.RUNNING) == 2


async def test_unchanged_nodes_leave_tasks_alone(harness: StoreHarness, all_planners: list[Planner]) -> None:
    await harness.add_node("a", labels={"tier": "web"})
    await harness.add_service("web", replicas=2, constraints=["node.labels.tier==web"])
    await harness.settle(all_planners)
    assert (await harness.run(ConstraintEnforcerPlanner())).is_empty()
