"""Replicated services: slots filled, scale down as Swarm chooses, deletion, lost nodes."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.api import states
from shoal.api.objects import NODES, SERVICES, TASKS, Obj
from shoal.orchestrator.orchestrator import OrchestratorPlanner
from shoal.orchestrator.replicated import scale_down_order
from shoal.planner import Planner
from shoal.testing.store_harness import StoreHarness


def slots(harness: StoreHarness, service: Obj) -> list[int]:
    return sorted(t["Slot"] for t in harness.live_tasks(service["ID"]))


async def scale(harness: StoreHarness, service: Obj, replicas: int) -> None:
    await harness.edit(SERVICES, service["ID"], lambda s: s["Spec"]["Mode"]["Replicated"].update(Replicas=replicas))


async def test_new_service_gets_one_task_per_slot(harness: StoreHarness) -> None:
    service = await harness.add_service("web", replicas=3)
    await harness.run(OrchestratorPlanner())
    tasks = harness.tasks(service["ID"])
    assert sorted(t["Slot"] for t in tasks) == [1, 2, 3]
    task = tasks[0]
    assert task["Status"] == {"Timestamp": task["CreatedAt"], "State": "new", "Message": "created"}
    assert task["DesiredState"] == states.RUNNING
    assert task["Spec"] == service["Spec"]["TaskTemplate"]
    assert task["ServiceAnnotations"] == {"Name": "web", "Labels": {}}
    assert task["NodeID"] == ""
    assert (await harness.run(OrchestratorPlanner())).is_empty()


async def test_scale_up_down_and_up_again(harness: StoreHarness, all_planners: list[Planner]) -> None:
    for name in ("a", "b"):
        await harness.add_node(name)
    service = await harness.add_service("web", replicas=2)
    await harness.settle(all_planners)
    await scale(harness, service, 5)
    await harness.settle(all_planners)
    assert slots(harness, service) == [1, 2, 3, 4, 5]
    await scale(harness, service, 2)
    await harness.settle(all_planners)
    # Removed tasks are deleted once stopped; the survivors are the lowest slots, one per node.
    assert slots(harness, service) == [1, 2]
    assert len(harness.tasks(service["ID"])) == 2
    assert len({t["NodeID"] for t in harness.tasks(service["ID"])}) == 2
    await scale(harness, service, 3)
    await harness.settle(all_planners)
    assert slots(harness, service) == [1, 2, 3]


def test_scale_down_order_prefers_crowded_nodes_then_not_running_then_high_slots() -> None:
    def task(node: str, state: str = states.RUNNING) -> list[Obj]:
        return [{"ID": node + state, "NodeID": node, "Status": {"State": state}}]

    slots_ = {
        1: task("a"),
        2: task("a"),
        3: task("a"),
        4: task("b"),
        5: task("b", states.PREPARING),
        6: [{"ID": "x", "NodeID": "", "Status": {"State": states.PENDING}}],
    }
    order = scale_down_order(slots_)
    assert order[:2] == [1, 4]  # first copy on each node, running first
    assert order[-1] == 6  # unassigned goes first
    assert order.index(5) > order.index(2)  # b's second copy is not running: removed before a's second


async def test_scale_down_marks_victims_remove(harness: StoreHarness) -> None:
    service = await harness.add_service("web", replicas=3)
    await harness.run(OrchestratorPlanner())
    await scale(harness, service, 1)
    await harness.run(OrchestratorPlanner())
    desired = Counter(t["DesiredState"] for t in harness.tasks(service["ID"]))
    assert desired == {states.RUNNING: 1, states.REMOVE: 2}


async def test_deleted_service_tasks_are_removed_then_reaped(
    harness: StoreHarness, all_planners: list[Planner]
) -> None:
    await harness.add_node("a")
    service = await harness.add_service("web", replicas=2)
    await harness.settle(all_planners)
    await harness.delete(SERVICES, service["ID"])
    await harness.run(OrchestratorPlanner())
    assert {t["DesiredState"] for t in harness.tasks(service["ID"])} == {states.REMOVE}
    await harness.settle(all_planners)
    assert harness.tasks(service["ID"]) == []


async def test_task_on_a_down_node_is_replaced_elsewhere(harness: StoreHarness, all_planners: list[Planner]) -> None:
    a = await harness.add_node("a")
    await harness.add_node("b")
    service = await harness.add_service("web", replicas=2)
    await harness.settle(all_planners)
    lost = next(t for t in harness.tasks(service["ID"]) if t["NodeID"] == a["ID"])
    await harness.edit(NODES, a["ID"], lambda n: n["Status"].update(State="down"))
    await harness.settle(all_planners)
    harness.clock.advance(5)  # the restart delay
    await harness.settle(all_planners)
    old = harness.get(TASKS, lost["ID"])
    assert old["DesiredState"] == states.SHUTDOWN  # stays as history, its node never answered
    replacement = next(t for t in harness.live_tasks(service["ID"]) if t["Slot"] == lost["Slot"])
    assert replacement["NodeID"] != a["ID"]
    assert replacement["Status"]["State"] == states.RUNNING


async def test_drained_node_tasks_move_without_delay(harness: StoreHarness, all_planners: list[Planner]) -> None:
    a = await harness.add_node("a")
    await harness.add_node("b")
    service = await harness.add_service("web", replicas=2)
    await harness.settle(all_planners)
    await harness.edit(NODES, a["ID"], lambda n: n["Spec"].update(Availability="drain"))
    await harness.settle(all_planners)
    live = harness.live_tasks(service["ID"])
    assert len(live) == 2
    assert {t["Status"]["State"] for t in live} == {states.RUNNING}
    assert all(t["NodeID"] != a["ID"] for t in live)
    drained = [t for t in harness.tasks(service["ID"]) if t["NodeID"] == a["ID"]]
    assert [t["Status"]["State"] for t in drained] == [states.SHUTDOWN]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=7), min_size=1, max_size=5))
def test_any_scale_sequence_keeps_slots_one_to_n(sequence: list[int]) -> None:
    import asyncio

    async def scenario() -> None:
        harness = StoreHarness()
        planner = OrchestratorPlanner()
        service = await harness.add_service("web", replicas=sequence[0])
        await harness.run(planner)
        for replicas in sequence[1:]:
            await scale(harness, service, replicas)
            await harness.run(planner)
        live = slots(harness, service)
        assert len(live) == sequence[-1]
        assert len(set(live)) == len(live)
        # Scale-up fills the lowest free numbers, so with nothing running the slots stay 1..N.
        assert live == list(range(1, sequence[-1] + 1))

    asyncio.run(scenario())


async def test_history_of_a_removed_slot_goes_with_it(harness: StoreHarness, all_planners: list[Planner]) -> None:
    await harness.add_node("a")
    service = await harness.add_service("web", replicas=2, restart={"Delay": 0})
    await harness.settle(all_planners)
    (second,) = [t for t in harness.live_tasks(service["ID"]) if t["Slot"] == 2]
    harness.clock.advance(1)
    await harness.set_task_state(second["ID"], states.FAILED, exit_code=1)
    await harness.settle(all_planners)
    assert len([t for t in harness.tasks(service["ID"]) if t["Slot"] == 2]) == 2
    await scale(harness, service, 1)
    await harness.settle(all_planners)
    assert [t["Slot"] for t in harness.tasks(service["ID"])] == [1]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from("abcd"), st.booleans()), min_size=1, max_size=12),
    st.integers(min_value=0, max_value=12),
)
def test_scale_down_keeps_nodes_balanced(placements: list[tuple[str, bool]], keep_count: int) -> None:
    """Whatever the placement, the kept slots spread over nodes as evenly as the nodes allow: a node
    keeps fewer than another minus one only when it has nothing more to give."""
    slots_ = {
        number: [{"ID": str(number), "NodeID": node, "Status": {"State": "running" if up else "preparing"}}]
        for number, (node, up) in enumerate(placements, start=1)
    }
    kept = scale_down_order(slots_)[:keep_count]
    assert sorted(scale_down_order(slots_)) == sorted(slots_)
    total = Counter(task[0]["NodeID"] for task in slots_.values())
    kept_per_node = Counter(slots_[number][0]["NodeID"] for number in kept)
    for a in total:
        for b in total:
            if kept_per_node[a] < kept_per_node[b] - 1:
                assert kept_per_node[a] == total[a]
