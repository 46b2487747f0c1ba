"""The task reaper: history per slot, removal of scaled-down and orphaned tasks."""

from __future__ import annotations

from shoal.api import states
from shoal.api.objects import TASKS, Obj
from shoal.orchestrator.reaper import TaskReaperPlanner
from shoal.orchestrator.task import new_task
from shoal.planner import Planner
from shoal.testing.store_harness import StoreHarness


async def add_task(harness: StoreHarness, service: Obj, state: str, desired: str, *, slot: int = 1) -> Obj:
    harness.clock.advance(1)
    task = new_task(service, harness.clock.now(), slot=slot, desired=desired)
    task["Status"]["State"] = state
    task["NodeID"] = "n1"
    return await harness.create(TASKS, task)


async def test_keeps_history_limit_per_slot_oldest_deleted_first(harness: StoreHarness) -> None:
    service = await harness.add_service("web")
    old = [await add_task(harness, service, states.FAILED, states.SHUTDOWN) for _ in range(6)]
    current = await add_task(harness, service, states.RUNNING, states.RUNNING)
    other_slot = await add_task(harness, service, states.FAILED, states.SHUTDOWN, slot=2)
    await harness.run(TaskReaperPlanner())
    left = {t["ID"] for t in harness.tasks(service["ID"])}
    # Five per slot, counting the running task; the two oldest failures go.
    assert left == {t["ID"] for t in old[2:]} | {current["ID"], other_slot["ID"]}


async def test_cluster_setting_and_negative_limit(harness: StoreHarness) -> None:
    service = await harness.add_service("web")
    for _ in range(4):
        await add_task(harness, service, states.COMPLETE, states.SHUTDOWN)
    await harness.set_history_limit(-1)
    assert (await harness.run(TaskReaperPlanner())).is_empty()
    await harness.set_history_limit(2)
    await harness.run(TaskReaperPlanner())
    assert len(harness.tasks(service["ID"])) == 2


async def test_running_and_just_failed_tasks_are_never_trimmed(harness: StoreHarness) -> None:
    await harness.set_history_limit(1)
    service = await harness.add_service("web")
    await add_task(harness, service, states.RUNNING, states.RUNNING)
    await add_task(harness, service, states.FAILED, states.RUNNING)  # restart not yet decided
    assert (await harness.run(TaskReaperPlanner())).is_empty()


async def test_max_attempts_overrides_the_limit(harness: StoreHarness) -> None:
    service = await harness.add_service("web", restart={"Condition": "any", "MaxAttempts": 7})
    for _ in range(10):
        await add_task(harness, service, states.FAILED, states.SHUTDOWN)
    await harness.run(TaskReaperPlanner())
    assert len(harness.tasks(service["ID"])) == 8


async def test_removed_tasks_go_once_stopped_or_if_never_assigned(harness: StoreHarness) -> None:
    service = await harness.add_service("web")
    stopped = await add_task(harness, service, states.SHUTDOWN, states.REMOVE, slot=1)
    unassigned = await add_task(harness, service, states.PENDING, states.REMOVE, slot=2)
    running = await add_task(harness, service, states.RUNNING, states.REMOVE, slot=3)
    await harness.run(TaskReaperPlanner())
    assert [t["ID"] for t in harness.tasks(service["ID"])] == [running["ID"]]
    assert harness.view.get(TASKS, stopped["ID"]) is None
    assert harness.view.get(TASKS, unassigned["ID"]) is None


async def test_orphaned_task_of_deleted_service_is_deleted(harness: StoreHarness) -> None:
    service = await harness.add_service("web")
    task = await add_task(harness, service, states.ORPHANED, states.SHUTDOWN)
    await harness.delete("services", service["ID"])
    await harness.run(TaskReaperPlanner())
    assert harness.view.get(TASKS, task["ID"]) is None


async def test_global_history_is_per_node(harness: StoreHarness, all_planners: list[Planner]) -> None:
    await harness.set_history_limit(2)
    node = await harness.add_node("a")
    service = await harness.add_service("agent", global_mode=True, restart={"Delay": 0})
    await harness.settle(all_planners)
    for _ in range(4):
        (task,) = harness.live_tasks(service["ID"])
        harness.clock.advance(1)
        await harness.set_task_state(task["ID"], states.FAILED, exit_code=1)
        await harness.settle(all_planners)
    tasks = harness.tasks(service["ID"])
    assert len(tasks) == 2
    assert {t["NodeID"] for t in tasks} == {node["ID"]}
