"""Global services: one task on every node that is not drained or down and meets the constraints.
Paused nodes keep what they run but get nothing new; drained, down or no longer matching nodes get
their tasks shut down with no replacement elsewhere; a deleted node's tasks are deleted."""

from __future__ import annotations

from shoal.api import states
from shoal.api.constraints import node_matches, task_constraints
from shoal.api.objects import Obj, dig
from shoal.orchestrator.pass_state import ServiceTasks
from shoal.orchestrator.restart import updatable_tasks
from shoal.orchestrator.task import has_stopped, is_live


def node_takes_tasks(node: Obj) -> bool:
    return bool(dig(node, "Status", "State") != "down" and dig(node, "Spec", "Availability") != "drain")


def reconcile_global(group: ServiceTasks) -> dict[str, list[Obj]]:
    """Returns node id → the wanted tasks on it, for nodes the rolling updater may work on."""
    nodes = group.run.nodes
    constraints = task_constraints(group.template)
    slots: dict[str, list[Obj]] = {}
    by_node: dict[str, list[Obj]] = {}
    for key, slot_tasks in group.by_slot().items():
        if key.startswith("node:"):
            by_node[key[len("node:") :]] = slot_tasks
    for node_id, slot_tasks in by_node.items():
        node = nodes.get(node_id)
        if node is None:
            for task in slot_tasks:
                group.delete(task)
            continue
        fits = node_takes_tasks(node) and node_matches(constraints, node)
        paused = dig(node, "Spec", "Availability") == "pause"
        for task in slot_tasks:
            if not is_live(task):
                continue
            if not fits or (paused and has_stopped(task)):
                group.set_desired(task, states.SHUTDOWN)
            elif has_stopped(task):
                group.restart(task, slot_tasks)
    current = group.by_slot()
    for node_id, node in nodes.items():
        if not node_takes_tasks(node) or not node_matches(constraints, node):
            continue
        if dig(node, "Spec", "Availability") == "pause":
            continue  # keeps what it runs, gets nothing new and no updates
        tasks = updatable_tasks(current.get(f"node:{node_id}", []), group.service)
        slots[node_id] = tasks or [group.create(node_id=node_id)]
    return slots
