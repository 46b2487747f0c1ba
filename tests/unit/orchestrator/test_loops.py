"""The component loops: planning after commits and on timers, stale plans, and every component
running together against a fake agent."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime

import pytest

from shoal.api import errors, states
from shoal.api.objects import SERVICES, TASKS
from shoal.node.manager_components import manager_loops
from shoal.orchestrator.task import new_task
from shoal.planner import Plan, PlanBuilder, apply_plan, run_component
from shoal.scheduler.scheduler import RETRY_INTERVAL, SchedulerPlanner
from shoal.store.memory import ReadView
from shoal.store.watch import Event
from shoal.testing.store_harness import StoreHarness


class CountingScheduler:
    name = "counting-scheduler"

    def __init__(self) -> None:
        self.inner = SchedulerPlanner()
        self.passes = 0

    def interested(self, event: Event) -> bool:
        return self.inner.interested(event)

    def plan(self, view: ReadView, now: datetime) -> Plan:
        self.passes += 1
        return self.inner.plan(view, now)


async def until(condition: Callable[[], bool], *, step: Callable[[], Awaitable[object]] | None = None) -> None:
    """Let the loops run until condition holds (within a deadline, so a bug fails instead of hanging)."""
    async with asyncio.timeout(10):
        while not condition():
            if step is not None:
                await step()
            await asyncio.sleep(0)


async def test_unplaceable_task_is_retried_on_the_timer() -> None:
    harness = StoreHarness()
    service = await harness.add_service("web")
    task = new_task(service, harness.clock.now(), slot=1)
    task["Status"]["State"] = states.PENDING
    await harness.create(TASKS, task)
    planner = CountingScheduler()
    loop = asyncio.create_task(run_component(harness.store, harness.clock, planner))
    try:
        # The first pass wrote Err; its commit causes the second. Then the loop sleeps on its timer
        # (nothing else can wake it: no more commits).
        await until(lambda: harness.clock.sleepers == 1)
        assert planner.passes == 2
        harness.clock.advance(RETRY_INTERVAL - 0.5)
        assert harness.clock.sleepers == 1 and planner.passes == 2
        harness.clock.advance(0.5)
        await until(lambda: planner.passes == 3)
    finally:
        loop.cancel()


async def test_stale_plan_is_refused_whole() -> None:
    harness = StoreHarness()
    one = await harness.add_service("one")
    two = await harness.add_service("two")
    builder = PlanBuilder()
    builder.edit(SERVICES, one)["Spec"]["Labels"] = {"a": "b"}
    builder.edit(SERVICES, two)["Spec"]["Labels"] = {"a": "b"}
    await harness.edit(SERVICES, two["ID"], lambda s: s["Spec"].update(Name="renamed"))
    with pytest.raises(errors.OutOfSequence):
        await harness.write(lambda tx: apply_plan(tx, builder.plan))
    assert harness.get(SERVICES, one["ID"])["Spec"]["Labels"] == {}


async def test_all_components_run_a_service_with_a_fake_agent() -> None:
    harness = StoreHarness()
    await harness.add_node("a")
    await harness.add_node("b")
    service = await harness.add_service("web", replicas=3, ports=[{"TargetPort": 80}])

    def running() -> list[str]:
        return [t["ID"] for t in harness.live_tasks(service["ID"]) if t["Status"]["State"] == states.RUNNING]

    async with asyncio.TaskGroup() as group:
        loops = [group.create_task(start()) for _, start in manager_loops(harness.store, harness.clock)]
        await until(lambda: len(running()) == 3, step=harness.agent_step)
        victim = running()[0]
        harness.clock.advance(1)
        await harness.set_task_state(victim, states.FAILED, exit_code=1)
        await until(lambda: any(t["DesiredState"] == states.READY for t in harness.live_tasks(service["ID"])))
        harness.clock.advance(5)  # the restart delay, through the loop's timer
        await until(lambda: len(running()) == 3 and victim not in running(), step=harness.agent_step)
        await harness.delete(SERVICES, service["ID"])
        await until(lambda: harness.tasks(service["ID"]) == [], step=harness.agent_step)
        for loop in loops:
            loop.cancel()


async def test_placement_on_a_node_that_changed_meanwhile_is_not_written() -> None:
    harness = StoreHarness()
    node = await harness.add_node("a")
    service = await harness.add_service("web")
    task = new_task(service, harness.clock.now(), slot=1)
    task["Status"]["State"] = states.PENDING
    await harness.create(TASKS, task)
    plan = SchedulerPlanner().plan(harness.view, harness.clock.now())
    assert plan.updates and plan.updates[0][1]["NodeID"] == node["ID"]
    await harness.edit("nodes", node["ID"], lambda n: n["Spec"].update(Availability="drain"))
    with pytest.raises(errors.OutOfSequence):
        await harness.write(lambda tx: apply_plan(tx, plan))
    assert harness.get(TASKS, task["ID"])["NodeID"] == ""


async def test_a_restored_snapshot_makes_the_planner_look_again() -> None:
    """A follower that installs a snapshot changes state without a transaction: the loop must still
    plan over the new state, even when none of the changes is one the planner is interested in."""
    harness = StoreHarness()
    leader = StoreHarness()
    await leader.add_service("web")
    planner = CountingScheduler()
    loop = asyncio.create_task(run_component(harness.store, harness.clock, planner))
    try:
        async with asyncio.timeout(5):
            while planner.passes < 1:
                await asyncio.sleep(0)
            harness.store.restore(leader.store.snapshot())
            while planner.passes < 2:
                await asyncio.sleep(0)
    finally:
        loop.cancel()
