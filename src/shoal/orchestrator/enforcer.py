"""The constraint enforcer: when a node changes (labels, role, resources) so that tasks placed on it no
longer satisfy their constraints or no longer fit, those tasks are marked REJECTED, as Swarm does;
the orchestrator then replaces them elsewhere under their restart policy."""

from __future__ import annotations

from datetime import datetime

from shoal.api import states
from shoal.api.constraints import node_matches, task_constraints
from shoal.api.objects import NODES, TASKS, Obj, dig, reservations
from shoal.base.clock import rfc3339
from shoal.orchestrator.task import creation_order, desired, observed
from shoal.planner import Plan, PlanBuilder
from shoal.store.memory import ReadView
from shoal.store.watch import Event

REJECTED_MESSAGE = "task rejected by constraint enforcer"
REJECTED_ERR = "assigned node no longer meets constraints"


class ConstraintEnforcerPlanner:
    name = "constraint-enforcer"

    def interested(self, event: Event) -> bool:
        return event.table == NODES  # as Swarm: the scheduler checked the node when it placed the task

    def plan(self, view: ReadView, now: datetime) -> Plan:
        builder = PlanBuilder()
        stamp = rfc3339(now)
        for node in view.objects(NODES):
            for task in tasks_to_reject(node, view.tasks_of_node(node["ID"])):
                builder.edit(TASKS, task)["Status"] = {
                    "Timestamp": stamp,
                    "State": states.REJECTED,
                    "Message": REJECTED_MESSAGE,
                    "Err": REJECTED_ERR,
                }
        return builder.plan


def tasks_to_reject(node: Obj, tasks: list[Obj]) -> list[Obj]:
    """Placed, wanted tasks whose constraints fail on this node, then, oldest kept first, those that
    no longer fit its CPU and memory."""
    placed = [
        t
        for t in tasks
        if _wanted(t) and states.rank(states.ASSIGNED) <= states.rank(observed(t)) <= states.rank(states.RUNNING)
    ]
    rejected = [t for t in placed if not node_matches(task_constraints(t.get("Spec")), node)]
    free_cpu = int(dig(node, "Description", "Resources", "NanoCPUs", default=0) or 0)
    free_memory = int(dig(node, "Description", "Resources", "MemoryBytes", default=0) or 0)
    if free_cpu == 0 and free_memory == 0:
        return rejected  # the node has not described its resources
    for task in sorted((t for t in placed if t not in rejected), key=creation_order):
        cpu, memory = reservations(task.get("Spec"))
        if cpu > free_cpu or memory > free_memory:
            rejected.append(task)
            continue
        free_cpu -= cpu
        free_memory -= memory
    return rejected


def _wanted(task: Obj) -> bool:
    """Meant to run: desired ready, running, or (a job's task) complete."""
    return states.rank(desired(task)) <= states.rank(states.COMPLETE)
