"""Jobs, as swarmkit's jobs orchestrators run them. A job's tasks run to completion (desired state
COMPLETE); one that completed is never restarted, one that failed is restarted per its restart policy
("any" acts as on-failure). Every `service update` bumps JobStatus.JobIteration and the job runs
again: tasks of earlier iterations that have not finished are removed, finished ones stay as history.

ReplicatedJob: TotalCompletions tasks must complete, at most MaxConcurrent at a time. Each task has a
slot of its own, 0..TotalCompletions-1 as in swarmkit (the docker CLI's job progress reads them so),
and a restart reuses it.
GlobalJob: one task per node that takes tasks, once per iteration."""

from __future__ import annotations

from collections import defaultdict

from shoal.api import states
from shoal.api.constraints import node_matches, task_constraints
from shoal.api.objects import Obj, dig
from shoal.orchestrator.global_service import node_takes_tasks
from shoal.orchestrator.pass_state import ServiceTasks
from shoal.orchestrator.replicated import node_is_invalid
from shoal.orchestrator.restart import should_restart
from shoal.orchestrator.task import (
    creation_order,
    desired,
    ended_on_its_own,
    has_stopped,
    job_iteration,
    observed,
    task_job_iteration,
)


def job_sizes(service: Obj) -> tuple[int, int]:
    """(TotalCompletions, MaxConcurrent) of a replicated job, with Docker's defaults: MaxConcurrent 1,
    TotalCompletions as many as MaxConcurrent."""
    mode = dig(service, "Spec", "Mode", "ReplicatedJob", default={}) or {}
    concurrent = mode.get("MaxConcurrent")
    concurrent = 1 if concurrent is None else int(concurrent)
    total = mode.get("TotalCompletions")
    return (concurrent if total is None else int(total)), concurrent


def reconcile_job(group: ServiceTasks) -> None:
    if dig(group.service, "Spec", "Mode", "GlobalJob") is not None:
        _reconcile_global_job(group)
    else:
        _reconcile_replicated_job(group)


def _wanted(task: Obj) -> bool:
    """Still meant to run: desired READY (a held restart) or COMPLETE, and not completed yet."""
    return states.rank(desired(task)) <= states.rank(states.COMPLETE) and observed(task) != states.COMPLETE


def _current(group: ServiceTasks) -> list[Obj]:
    """The tasks of this iteration; unfinished tasks of earlier ones get desired REMOVE."""
    iteration = job_iteration(group.service)
    current = []
    for task in group.all():
        if task_job_iteration(task) == iteration:
            current.append(task)
        elif states.rank(observed(task)) <= states.rank(states.RUNNING) and desired(task) != states.REMOVE:
            group.set_desired(task, states.REMOVE)
    return current


def _grouped(tasks: list[Obj], key: str) -> dict[str, list[Obj]]:
    """Tasks by slot number ("Slot") or by node ("NodeID")."""
    groups: dict[str, list[Obj]] = defaultdict(list)
    for task in tasks:
        value = int(task.get("Slot") or 0) if key == "Slot" else task.get(key) or ""
        groups[str(value)].append(task)
    return dict(groups)


def _exhausted(tasks: list[Obj]) -> bool:
    """The newest task ended without completing and its restart policy allows no other."""
    newest = max(tasks, key=creation_order)
    return not _wanted(newest) and ended_on_its_own(newest) and not should_restart(newest, tasks)


def _reconcile_replicated_job(group: ServiceTasks) -> None:
    for slot_tasks in _grouped(_current(group), "Slot").values():
        for task in slot_tasks:
            if _wanted(task) and (has_stopped(task) or node_is_invalid(task, group.run.nodes)):
                group.restart(task, slot_tasks)
    slots = _grouped(_current(group), "Slot")
    completed = {s for s, tasks in slots.items() if any(observed(t) == states.COMPLETE for t in tasks)}
    running = {s for s, tasks in slots.items() if s not in completed and any(_wanted(t) for t in tasks)}
    given_up = {s for s, tasks in slots.items() if s not in completed | running and _exhausted(tasks)}
    total, concurrent = job_sizes(group.service)
    room = min(concurrent - len(running), total - len(completed) - len(running) - len(given_up))
    free = (n for n in range(total + len(slots)) if str(n) not in slots)
    for _ in range(max(room, 0)):
        group.create(slot=next(free))


def _reconcile_global_job(group: ServiceTasks) -> None:
    nodes = group.run.nodes
    for node_id, node_tasks in _grouped(_current(group), "NodeID").items():
        node = nodes.get(node_id)
        for task in node_tasks:
            if not _wanted(task):
                continue
            if node is None or not node_takes_tasks(node):
                group.set_desired(task, states.SHUTDOWN)  # as global services: no replacement elsewhere
            elif has_stopped(task):
                group.restart(task, node_tasks)
    by_node = _grouped(_current(group), "NodeID")
    constraints = task_constraints(group.template)
    for node_id, node in nodes.items():
        if not node_takes_tasks(node) or not node_matches(constraints, node):
            continue
        if dig(node, "Spec", "Availability") == "pause":
            continue  # gets nothing new
        tasks = by_node.get(node_id, [])
        done = any(_wanted(t) or observed(t) == states.COMPLETE for t in tasks)
        if not done and not (tasks and _exhausted(tasks)):
            group.create(node_id=node_id)
