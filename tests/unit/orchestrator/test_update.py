"""Rolling updates and rollbacks: parallelism, order, delay, monitor, failure actions, UpdateStatus."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shoal.api import states
from shoal.api.objects import SERVICES, Obj, clone
from shoal.orchestrator.dirty import is_task_dirty
from shoal.planner import Planner
from shoal.testing.store_harness import SECOND, StoreHarness

Check = Callable[[StoreHarness], None]


async def deploy(harness: StoreHarness, planners: list[Planner], replicas: int = 3, **config: Any) -> Obj:
    for name in ("a", "b", "c"):
        await harness.add_node(name)
    service = await harness.add_service("web", replicas=replicas, update=config or None, rollback=config or None)
    await harness.settle(planners)
    return service


async def set_image(harness: StoreHarness, service: Obj, image: str) -> Obj:
    harness.clock.advance(1)
    return await harness.update_service_spec(
        service["ID"], lambda spec: spec["TaskTemplate"]["ContainerSpec"].update(Image=image)
    )


async def step_until_quiet(harness: StoreHarness, planners: list[Planner], check: Check | None = None) -> None:
    """settle(), checking an invariant after every single write."""
    for _ in range(200):
        changed = False
        for planner in planners:
            changed |= not (await harness.run(planner)).is_empty()
            if check:
                check(harness)
        changed |= await harness.agent_step()
        if check:
            check(harness)
        if not changed:
            return
    raise AssertionError("no fixpoint")


def status(harness: StoreHarness, service: Obj) -> dict[str, Any]:
    result: dict[str, Any] = harness.get(SERVICES, service["ID"]).get("UpdateStatus") or {}
    return result


def images(harness: StoreHarness, service: Obj, state: str = states.RUNNING) -> list[str]:
    return sorted(
        t["Spec"]["ContainerSpec"]["Image"] for t in harness.live_tasks(service["ID"]) if t["Status"]["State"] == state
    )


async def test_stop_first_one_at_a_time_then_completed_after_monitor(
    harness: StoreHarness, all_planners: list[Planner]
) -> None:
    service = await deploy(harness, all_planners)
    await set_image(harness, service, "v2")

    def at_most_one_slot_down(h: StoreHarness) -> None:
        running = [t for t in h.tasks(service["ID"]) if t["Status"]["State"] == states.RUNNING]
        assert len(running) >= 2

    await step_until_quiet(harness, all_planners, at_most_one_slot_down)
    assert images(harness, service) == ["v2", "v2", "v2"]
    current = status(harness, service)
    assert current["State"] == "updating" and current["Message"] == "update in progress"
    harness.clock.advance(5)  # the monitor period after the last task started
    await harness.settle(all_planners)
    final = status(harness, service)
    assert (final["State"], final["Message"]) == ("completed", "update completed")
    assert "StartedAt" in final and "CompletedAt" in final
    # History: each slot shows the shut-down v1 task under the running v2 one.
    old = [t for t in harness.tasks(service["ID"]) if t["Spec"]["ContainerSpec"]["Image"] == "busybox:latest"]
    assert {(t["DesiredState"], t["Status"]["State"]) for t in old} == {(states.SHUTDOWN, states.SHUTDOWN)}


async def test_parallelism_zero_updates_every_slot_at_once(harness: StoreHarness, all_planners: list[Planner]) -> None:
    service = await deploy(harness, all_planners, Parallelism=0)
    await set_image(harness, service, "v2")
    orchestrator = next(p for p in all_planners if p.name == "orchestrator")
    await harness.run(orchestrator)
    held = [t for t in harness.live_tasks(service["ID"]) if t["DesiredState"] == states.READY]
    assert len(held) == 3


async def test_parallelism_two(harness: StoreHarness, all_planners: list[Planner]) -> None:
    service = await deploy(harness, all_planners, replicas=5, Parallelism=2)
    await set_image(harness, service, "v2")

    def at_most_two_slots_in_flight(h: StoreHarness) -> None:
        new_not_running = [
            t
            for t in h.live_tasks(service["ID"])
            if t["Spec"]["ContainerSpec"]["Image"] == "v2" and t["Status"]["State"] != states.RUNNING
        ]
        assert len(new_not_running) <= 2

    await step_until_quiet(harness, all_planners, at_most_two_slots_in_flight)
    assert images(harness, service) == ["v2"] * 5


async def test_start_first_keeps_the_old_task_until_the_new_one_runs(
    harness: StoreHarness, all_planners: list[Planner]
) -> None:
    service = await deploy(harness, all_planners, Order="start-first")
    await set_image(harness, service, "v2")

    def never_below_three_running(h: StoreHarness) -> None:
        running = [t for t in h.tasks(service["ID"]) if t["Status"]["State"] == states.RUNNING]
        assert len(running) >= 3

    await step_until_quiet(harness, all_planners, never_below_three_running)
    assert images(harness, service) == ["v2", "v2", "v2"]


async def test_delay_between_slots(harness: StoreHarness, all_planners: list[Planner]) -> None:
    service = await deploy(harness, all_planners, Parallelism=1, Delay=10 * SECOND)
    await set_image(harness, service, "v2")
    await harness.settle(all_planners)
    assert images(harness, service) == ["busybox:latest", "busybox:latest", "v2"]
    harness.clock.advance(9)
    await harness.settle(all_planners)
    assert images(harness, service).count("v2") == 1
    harness.clock.advance(1)
    await harness.settle(all_planners)
    assert images(harness, service).count("v2") == 2


async def fail_new_tasks(harness: StoreHarness, service: Obj, image: str) -> str:
    """Make the first running task of `image` fail; returns its id."""
    task = next(
        t
        for t in harness.live_tasks(service["ID"])
        if t["Spec"]["ContainerSpec"]["Image"] == image and t["Status"]["State"] == states.RUNNING
    )
    harness.clock.advance(1)
    await harness.set_task_state(task["ID"], states.FAILED, exit_code=1)
    return str(task["ID"])


async def test_failure_pauses_the_update(harness: StoreHarness, all_planners: list[Planner]) -> None:
    service = await deploy(harness, all_planners, Parallelism=1, Delay=30 * SECOND)
    await set_image(harness, service, "bad")
    await harness.settle(all_planners)
    failed = await fail_new_tasks(harness, service, "bad")
    await harness.settle(all_planners)
    current = status(harness, service)
    assert current["State"] == "paused"
    assert current["Message"] == f"update paused due to failure or early termination of task {failed}"
    harness.clock.advance(60)
    await harness.settle(all_planners)
    # Paused: the two other slots keep the old image; the failed slot was restarted as usual.
    assert images(harness, service).count("busybox:latest") == 2


async def test_failure_after_the_monitor_window_does_not_count(
    harness: StoreHarness, all_planners: list[Planner]
) -> None:
    service = await deploy(harness, all_planners, replicas=1, Monitor=2 * SECOND)
    await set_image(harness, service, "v2")
    await harness.settle(all_planners)
    harness.clock.advance(3)
    await fail_new_tasks(harness, service, "v2")
    await harness.settle(all_planners)
    harness.clock.advance(10)  # the restart delay: the replacement runs, and is monitored in turn
    await harness.settle(all_planners)
    harness.clock.advance(2)
    await harness.settle(all_planners)
    assert status(harness, service)["State"] == "completed"


async def test_continue_ignores_failures(harness: StoreHarness, all_planners: list[Planner]) -> None:
    service = await deploy(harness, all_planners, FailureAction="continue", Parallelism=1)
    await set_image(harness, service, "v2")
    await harness.settle(all_planners)
    await fail_new_tasks(harness, service, "v2")
    for _ in range(4):
        harness.clock.advance(5)
        await harness.settle(all_planners)
    assert status(harness, service)["State"] == "completed"
    assert images(harness, service) == ["v2", "v2", "v2"]


async def test_failure_rolls_back_to_the_previous_spec(harness: StoreHarness, all_planners: list[Planner]) -> None:
    service = await deploy(harness, all_planners, FailureAction="rollback", Parallelism=1, Delay=30 * SECOND)
    await set_image(harness, service, "bad")
    await harness.settle(all_planners)
    failed = await fail_new_tasks(harness, service, "bad")
    await harness.settle(all_planners)
    rolled = harness.get(SERVICES, service["ID"])
    assert rolled["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] == "busybox:latest"
    current = status(harness, service)
    assert current["State"] == "rollback_started"
    assert current["Message"] == f"update rolled back due to failure or early termination of task {failed}"
    for _ in range(5):  # after the slot it rolled back: the delay (30 s), then monitoring (31 s)
        harness.clock.advance(15)
        await harness.settle(all_planners)
    final = status(harness, service)
    assert (final["State"], final["Message"]) == ("rollback_completed", "rollback completed")
    assert images(harness, service) == ["busybox:latest"] * 3


async def test_manual_rollback_uses_rollback_states(harness: StoreHarness, all_planners: list[Planner]) -> None:
    service = await deploy(harness, all_planners)
    await set_image(harness, service, "v2")
    await harness.settle(all_planners)
    harness.clock.advance(10)
    await harness.settle(all_planners)
    assert status(harness, service)["State"] == "completed"

    def rollback(svc: Obj) -> None:  # what controlapi does for `docker service rollback`
        svc["Spec"], svc["PreviousSpec"] = clone(svc["PreviousSpec"]), clone(svc["Spec"])
        svc["UpdateStatus"] = {"State": "rollback_started", "Message": "manually requested rollback"}

    await harness.edit(SERVICES, service["ID"], rollback)
    await harness.settle(all_planners)
    harness.clock.advance(10)
    await harness.settle(all_planners)
    assert status(harness, service)["State"] == "rollback_completed"
    assert images(harness, service) == ["busybox:latest"] * 3


async def test_force_update_replaces_every_task(harness: StoreHarness, all_planners: list[Planner]) -> None:
    service = await deploy(harness, all_planners, Parallelism=0)
    before = {t["ID"] for t in harness.live_tasks(service["ID"])}
    harness.clock.advance(1)
    updated = await harness.update_service_spec(service["ID"], lambda spec: spec["TaskTemplate"].update(ForceUpdate=1))
    assert all(is_task_dirty(updated, t) for t in harness.live_tasks(service["ID"]))
    await harness.settle(all_planners)
    after = {t["ID"] for t in harness.live_tasks(service["ID"])}
    assert len(after) == 3 and not (before & after)


async def test_global_service_updates_node_by_node(harness: StoreHarness, all_planners: list[Planner]) -> None:
    for name in ("a", "b", "c"):
        await harness.add_node(name)
    service = await harness.add_service("agent", global_mode=True)
    await harness.settle(all_planners)
    await set_image(harness, service, "v2")

    def one_node_at_a_time(h: StoreHarness) -> None:
        running = [t for t in h.tasks(service["ID"]) if t["Status"]["State"] == states.RUNNING]
        assert len(running) >= 2

    await step_until_quiet(harness, all_planners, one_node_at_a_time)
    assert images(harness, service) == ["v2", "v2", "v2"]
    assert len({t["NodeID"] for t in harness.live_tasks(service["ID"])}) == 3


async def test_restart_of_a_failed_new_task_is_not_a_second_failure(
    harness: StoreHarness, all_planners: list[Planner]
) -> None:
    # Two slots, ratio 0.5: one failure is tolerated, a second distinct one is not.
    service = await deploy(harness, all_planners, replicas=2, MaxFailureRatio=0.5, Delay=30 * SECOND)
    await set_image(harness, service, "flaky")
    await harness.settle(all_planners)
    await fail_new_tasks(harness, service, "flaky")
    harness.clock.advance(5)
    await harness.settle(all_planners)  # the restart of that task runs, then fails too
    await fail_new_tasks(harness, service, "flaky")
    await harness.settle(all_planners)
    assert status(harness, service)["State"] == "updating"


async def test_duplicate_running_tasks_in_a_slot_are_settled(
    harness: StoreHarness, all_planners: list[Planner]
) -> None:
    """After a partition heals, a slot may hold two wanted tasks; the newest running one stays."""
    from shoal.orchestrator.task import new_task

    service = await deploy(harness, all_planners, replicas=1)
    (old,) = harness.live_tasks(service["ID"])
    harness.clock.advance(1)
    twin = new_task(harness.get(SERVICES, service["ID"]), harness.clock.now(), slot=old["Slot"])
    twin.update(NodeID=old["NodeID"], Status={"State": states.RUNNING, "Timestamp": twin["CreatedAt"]})
    await harness.create("tasks", twin)
    await harness.settle(all_planners)
    assert [t["ID"] for t in harness.live_tasks(service["ID"])] == [twin["ID"]]


async def test_a_new_leader_carries_on_an_update_half_way(harness: StoreHarness, all_planners: list[Planner]) -> None:
    service = await deploy(harness, all_planners, Parallelism=1, Delay=10 * SECOND)
    await set_image(harness, service, "v2")
    await harness.settle(all_planners)
    assert images(harness, service).count("v2") == 1
    harness.clock.advance(1)
    from shoal.node.manager_components import planners

    fresh = planners()  # leadership moved: no memory of the update in progress
    # The new leader waits the delay again for the slot it finds done; after the last slot come
    # the delay and the monitoring (delay + 1 s, since the delay is not shorter than the monitor).
    for _ in range(6):
        harness.clock.advance(10)
        await harness.settle(fresh)
    assert images(harness, service) == ["v2", "v2", "v2"]
    assert status(harness, service)["State"] == "completed"
    # No slot was updated twice.
    assert len([t for t in harness.tasks(service["ID"]) if t["Spec"]["ContainerSpec"]["Image"] == "v2"]) == 3
