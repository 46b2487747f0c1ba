"""Restart policy: conditions, the delay before a replacement runs, max attempts within a window."""

from __future__ import annotations

from typing import Any

from shoal.api import states
from shoal.api.objects import Obj
from shoal.planner import Planner
from shoal.testing.store_harness import SECOND, StoreHarness


async def start(harness: StoreHarness, planners: list[Planner], **restart: Any) -> Obj:
    await harness.add_node("a")
    service = await harness.add_service("job", restart=restart or None)
    await harness.settle(planners)
    return service


async def end_current(harness: StoreHarness, service: Obj, state: str, exit_code: int) -> Obj:
    (task,) = harness.live_tasks(service["ID"])
    assert task["Status"]["State"] == states.RUNNING
    harness.clock.advance(0.001)  # the replacement is created after the task it replaces
    return await harness.set_task_state(task["ID"], state, exit_code=exit_code)


def history(harness: StoreHarness, service: Obj) -> list[tuple[str, str]]:
    return [(t["DesiredState"], t["Status"]["State"]) for t in harness.tasks(service["ID"])]


async def test_default_policy_restarts_after_five_seconds(harness: StoreHarness, all_planners: list[Planner]) -> None:
    service = await start(harness, all_planners)
    await end_current(harness, service, states.FAILED, 1)
    await harness.settle(all_planners)
    # The replacement is created at once but held (prepared, not started) for the delay.
    assert history(harness, service) == [(states.SHUTDOWN, states.FAILED), (states.READY, states.READY)]
    harness.clock.advance(4.9)
    await harness.settle(all_planners)
    assert history(harness, service)[-1] == (states.READY, states.READY)
    harness.clock.advance(0.1)
    await harness.settle(all_planners)
    assert history(harness, service) == [(states.SHUTDOWN, states.FAILED), (states.RUNNING, states.RUNNING)]
    assert harness.tasks(service["ID"])[1]["Slot"] == 1


async def test_planner_asks_to_be_woken_for_the_delay(harness: StoreHarness, all_planners: list[Planner]) -> None:
    service = await start(harness, all_planners, Delay=2 * SECOND)
    await end_current(harness, service, states.COMPLETE, 0)
    orchestrator = next(p for p in all_planners if p.name == "orchestrator")
    plan = await harness.run(orchestrator)
    assert plan.wake_after == 2.0


async def test_condition_none_never_restarts_and_the_slot_stays_filled(
    harness: StoreHarness, all_planners: list[Planner]
) -> None:
    service = await start(harness, all_planners, Condition="none")
    await end_current(harness, service, states.FAILED, 3)
    harness.clock.advance(60)
    await harness.settle(all_planners)
    assert history(harness, service) == [(states.SHUTDOWN, states.FAILED)]


async def test_on_failure_restarts_only_failures(harness: StoreHarness, all_planners: list[Planner]) -> None:
    service = await start(harness, all_planners, Condition="on-failure", Delay=0)
    await end_current(harness, service, states.FAILED, 2)
    await harness.settle(all_planners)
    assert history(harness, service)[-1] == (states.RUNNING, states.RUNNING)
    await end_current(harness, service, states.COMPLETE, 0)
    harness.clock.advance(60)
    await harness.settle(all_planners)
    assert history(harness, service) == [(states.SHUTDOWN, states.FAILED), (states.SHUTDOWN, states.COMPLETE)]


async def test_any_restarts_a_completed_task(harness: StoreHarness, all_planners: list[Planner]) -> None:
    service = await start(harness, all_planners, Condition="any", Delay=0)
    await end_current(harness, service, states.COMPLETE, 0)
    await harness.settle(all_planners)
    assert history(harness, service) == [(states.SHUTDOWN, states.COMPLETE), (states.RUNNING, states.RUNNING)]


async def test_max_attempts_without_window(harness: StoreHarness, all_planners: list[Planner]) -> None:
    service = await start(harness, all_planners, Condition="any", Delay=0, MaxAttempts=2)
    for _ in range(2):
        harness.clock.advance(1)
        await end_current(harness, service, states.FAILED, 1)
        await harness.settle(all_planners)
    harness.clock.advance(1)
    await end_current(harness, service, states.FAILED, 1)
    await harness.settle(all_planners)
    assert history(harness, service) == [(states.SHUTDOWN, states.FAILED)] * 3  # the first run + 2 restarts
    assert harness.live_tasks(service["ID"]) == []


async def test_max_attempts_counts_only_restarts_inside_the_window(
    harness: StoreHarness, all_planners: list[Planner]
) -> None:
    service = await start(harness, all_planners, Delay=0, MaxAttempts=1, Window=10 * SECOND)
    await end_current(harness, service, states.FAILED, 1)
    await harness.settle(all_planners)  # restart 1 at t=0
    harness.clock.advance(20)
    await end_current(harness, service, states.FAILED, 1)
    await harness.settle(all_planners)  # restart 1 is outside [10 s, 20 s]: allowed
    assert len(harness.live_tasks(service["ID"])) == 1
    harness.clock.advance(3)
    await end_current(harness, service, states.FAILED, 1)
    await harness.settle(all_planners)  # restart 2 at t=20 is inside [13 s, 23 s]: refused
    assert harness.live_tasks(service["ID"]) == []
    # The reaper keeps MaxAttempts + 1 tasks of the slot (enough to rebuild the restart history).
    assert len(harness.tasks(service["ID"])) == 2


async def test_spec_change_resets_restart_history(harness: StoreHarness, all_planners: list[Planner]) -> None:
    service = await start(harness, all_planners, Delay=0, MaxAttempts=1)
    await end_current(harness, service, states.FAILED, 1)
    await harness.settle(all_planners)
    await harness.update_service_spec(
        service["ID"], lambda spec: spec["TaskTemplate"]["ContainerSpec"].update(Image="v2")
    )
    await harness.settle(all_planners)
    harness.clock.advance(10)
    await harness.settle(all_planners)
    await end_current(harness, service, states.FAILED, 1)
    await harness.settle(all_planners)
    (task,) = harness.live_tasks(service["ID"])
    assert task["Spec"]["ContainerSpec"]["Image"] == "v2"


async def test_condition_none_task_on_a_lost_node_is_not_replaced(
    harness: StoreHarness, all_planners: list[Planner]
) -> None:
    """As Swarm: the slot's newest task must not restart, so the slot stays as it is."""
    await harness.add_node("b")
    service = await start(harness, all_planners, Condition="none")
    (task,) = harness.live_tasks(service["ID"])
    await harness.edit("nodes", task["NodeID"], lambda n: n["Status"].update(State="down"))
    harness.clock.advance(60)
    await harness.settle(all_planners)
    assert [t["ID"] for t in harness.tasks(service["ID"])] == [task["ID"]]
    assert harness.get("tasks", task["ID"])["DesiredState"] == states.SHUTDOWN


async def test_held_replacement_waits_for_the_old_task_to_stop(
    harness: StoreHarness, all_planners: list[Planner]
) -> None:
    """A drained node's task is replaced without delay, but the new task only starts once the old
    one reports it stopped (or after a minute)."""
    await harness.add_node("b")
    service = await start(harness, all_planners, Delay=0)
    (task,) = harness.live_tasks(service["ID"])
    orchestrator = next(p for p in all_planners if p.name == "orchestrator")
    await harness.edit("nodes", task["NodeID"], lambda n: n["Spec"].update(Availability="drain"))
    plan = await harness.run(orchestrator)
    (held,) = harness.live_tasks(service["ID"])
    assert held["DesiredState"] == states.READY
    assert plan.wake_after == 60.0
    harness.clock.advance(60)
    await harness.run(orchestrator)
    assert harness.get("tasks", held["ID"])["DesiredState"] == states.RUNNING


async def test_unknown_node_keeps_its_task(harness: StoreHarness, all_planners: list[Planner]) -> None:
    await harness.add_node("b")
    service = await start(harness, all_planners)
    (task,) = harness.live_tasks(service["ID"])
    await harness.edit("nodes", task["NodeID"], lambda n: n["Status"].update(State="unknown"))
    await harness.settle(all_planners)
    assert [t["ID"] for t in harness.live_tasks(service["ID"])] == [task["ID"]]
