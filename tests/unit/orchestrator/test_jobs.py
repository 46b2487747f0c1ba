"""Jobs: replicated jobs complete TotalCompletions times with at most MaxConcurrent at once, failed
tasks restart in their slot, completed ones never do, an update runs the job again; global jobs run
once per node."""

from __future__ import annotations

from typing import Any

from shoal.api import states
from shoal.api.objects import NODES, SERVICES, TASKS, Obj
from shoal.base.clock import rfc3339
from shoal.base.ids import new_id
from shoal.orchestrator.enforcer import ConstraintEnforcerPlanner
from shoal.orchestrator.orchestrator import OrchestratorPlanner
from shoal.orchestrator.restart import should_restart
from shoal.testing.store_harness import StoreHarness


async def add_job(harness: StoreHarness, mode: Obj, restart: Obj | None = None) -> Obj:
    template: Obj = {"ContainerSpec": {"Image": "busybox"}, "ForceUpdate": 0}
    if restart is not None:
        template["RestartPolicy"] = restart
    service = {
        "ID": new_id(),
        "Spec": {"Name": "job", "TaskTemplate": template, "Mode": mode},
        "JobStatus": {"JobIteration": {}, "LastExecution": rfc3339(harness.clock.now())},
    }
    return await harness.create(SERVICES, service)


async def step(harness: StoreHarness, node: Obj) -> None:
    """One orchestrator pass, then every task it wants run is placed on `node` and started (what the
    allocator, scheduler and agent do); held restarts are only prepared."""
    await harness.run(OrchestratorPlanner())
    for task in harness.tasks():
        state = task["Status"]["State"]
        if states.is_terminal(state) or state == states.RUNNING:
            continue
        if task["DesiredState"] == states.READY:
            target = states.READY
        elif task["DesiredState"] == states.COMPLETE:
            target = states.RUNNING
        else:
            target = states.SHUTDOWN
        await harness.edit(TASKS, task["ID"], lambda t: t.update(NodeID=t["NodeID"] or node["ID"]))
        await harness.set_task_state(task["ID"], target)


def running(harness: StoreHarness, service: Obj) -> list[Obj]:
    return [t for t in harness.tasks(service["ID"]) if t["Status"]["State"] == states.RUNNING]


async def finish(harness: StoreHarness, task: Obj, exit_code: int = 0) -> None:
    harness.clock.advance(0.001)
    state = states.COMPLETE if exit_code == 0 else states.FAILED
    await harness.set_task_state(task["ID"], state, exit_code=exit_code)


async def test_replicated_job_completes_total_with_max_concurrent(harness: StoreHarness) -> None:
    node = await harness.add_node("a")
    service = await add_job(harness, {"ReplicatedJob": {"MaxConcurrent": 2, "TotalCompletions": 5}})
    most_at_once = 0
    for _ in range(20):
        await step(harness, node)
        now = running(harness, service)
        most_at_once = max(most_at_once, len(now))
        if not now:
            break
        await finish(harness, now[0])
    tasks = harness.tasks(service["ID"])
    assert [t["Status"]["State"] for t in tasks] == [states.COMPLETE] * 5
    assert most_at_once == 2
    assert sorted(t["Slot"] for t in tasks) == [0, 1, 2, 3, 4]  # numbered as swarmkit does
    assert {t["DesiredState"] for t in tasks} == {states.COMPLETE}
    assert all(t["JobIteration"] == {} for t in tasks)
    assert (await harness.run(OrchestratorPlanner())).is_empty()


async def test_failed_job_task_restarts_in_its_slot_and_completed_never(harness: StoreHarness) -> None:
    node = await harness.add_node("a")
    service = await add_job(harness, {"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 1}},
                            restart={"Condition": "any", "Delay": 0})
    await step(harness, node)
    (first,) = running(harness, service)
    await finish(harness, first, exit_code=1)
    await harness.run(OrchestratorPlanner())
    held = harness.tasks(service["ID"])[-1]
    # the restart is in the same slot, and slot 0 of a replicated job is not bound to the node it ran on
    assert (held["Slot"], held["NodeID"]) == (0, "")
    await step(harness, node)
    await step(harness, node)  # ... and promoted at once (no delay)
    (second,) = running(harness, service)
    assert second["Slot"] == first["Slot"] == 0
    assert harness.get(TASKS, first["ID"])["DesiredState"] == states.SHUTDOWN
    await finish(harness, second)
    await step(harness, node)
    assert [t["Status"]["State"] for t in harness.tasks(service["ID"])] == [states.FAILED, states.COMPLETE]
    assert harness.get(TASKS, second["ID"])["DesiredState"] == states.COMPLETE
    assert not should_restart(harness.get(TASKS, second["ID"]), harness.tasks(service["ID"]))


async def test_restart_limit_reached_gives_the_slot_up(harness: StoreHarness) -> None:
    node = await harness.add_node("a")
    service = await add_job(harness, {"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 1}},
                            restart={"Condition": "on-failure", "Delay": 0, "MaxAttempts": 1})
    for _ in range(2):
        await step(harness, node)
        await step(harness, node)
        (task,) = running(harness, service)
        await finish(harness, task, exit_code=3)
    for _ in range(3):
        await step(harness, node)
    assert [t["Status"]["State"] for t in harness.tasks(service["ID"])] == [states.FAILED, states.FAILED]


async def test_update_runs_the_job_again_and_removes_unfinished_tasks(harness: StoreHarness) -> None:
    node = await harness.add_node("a")
    service = await add_job(harness, {"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 2}})
    await step(harness, node)
    await finish(harness, running(harness, service)[0])
    await step(harness, node)
    (unfinished,) = running(harness, service)

    def rerun(s: Any) -> None:
        s["JobStatus"]["JobIteration"] = {"Index": 1}

    await harness.edit(SERVICES, service["ID"], rerun)
    await step(harness, node)
    assert harness.get(TASKS, unfinished["ID"])["DesiredState"] == states.REMOVE
    (fresh,) = [t for t in running(harness, service) if t["ID"] != unfinished["ID"]]
    assert fresh["JobIteration"] == {"Index": 1}
    assert fresh["Slot"] == 0  # slots count afresh in a new iteration


async def test_global_job_runs_once_per_node(harness: StoreHarness) -> None:
    a = await harness.add_node("a")
    b = await harness.add_node("b")
    await harness.add_node("drained", availability="drain")
    service = await add_job(harness, {"GlobalJob": {}})
    await harness.run(OrchestratorPlanner())
    tasks = harness.tasks(service["ID"])
    assert sorted(t["NodeID"] for t in tasks) == sorted([a["ID"], b["ID"]])
    assert {(t["Slot"], t["DesiredState"]) for t in tasks} == {(0, states.COMPLETE)}
    for task in tasks:
        await harness.set_task_state(task["ID"], states.RUNNING)
        await finish(harness, task)
    assert (await harness.run(OrchestratorPlanner())).is_empty()
    c = await harness.add_node("c")
    await harness.run(OrchestratorPlanner())
    assert [t["NodeID"] for t in harness.tasks(service["ID"])][-1] == c["ID"]


async def test_constraint_enforcer_rejects_a_running_job_task_too(harness: StoreHarness) -> None:
    node = await harness.add_node("a", labels={"batch": "yes"})
    service = await add_job(harness, {"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 1}})
    await harness.edit(SERVICES, service["ID"], lambda s: s["Spec"]["TaskTemplate"].update(
        Placement={"Constraints": ["node.labels.batch==yes"]}))
    await step(harness, node)
    (task,) = running(harness, service)
    await harness.edit(NODES, node["ID"], lambda n: n["Spec"]["Labels"].clear())
    await harness.run(ConstraintEnforcerPlanner())
    assert harness.get(TASKS, task["ID"])["Status"]["State"] == states.REJECTED
