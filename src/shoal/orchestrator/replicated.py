"""Replicated services: keep `Replicas` slots filled. Tasks that ended or lost their node go to the
restart policy; missing slots get new tasks in the lowest free numbers; on scale-down the surplus
slots get desired REMOVE, chosen as Swarm does (nodes with the most copies first, then tasks that are
not running, then the highest slot numbers)."""

from __future__ import annotations

from collections import Counter

from shoal.api import states
from shoal.api.objects import Obj, dig, replicas
from shoal.orchestrator.pass_state import ServiceTasks
from shoal.orchestrator.restart import updatable_tasks
from shoal.orchestrator.task import has_stopped, is_live, observed


def node_is_invalid(task: Obj, nodes: dict[str, Obj]) -> bool:
    """The task's node is gone, down or drained (unknown/disconnected nodes keep their tasks)."""
    node_id = str(task.get("NodeID") or "")
    if not node_id:
        return False
    node = nodes.get(node_id)
    if node is None:
        return True
    return bool(dig(node, "Status", "State") == "down" or dig(node, "Spec", "Availability") == "drain")


def restart_failed(group: ServiceTasks, *, node_check: bool = True) -> None:
    """Hand every wanted task that ended, or whose node went away, to the restart policy."""
    nodes = group.run.nodes
    for slot_tasks in group.by_slot().values():
        for task in slot_tasks:
            if not is_live(task):
                continue
            if has_stopped(task) or (node_check and node_is_invalid(task, nodes)):
                group.restart(task, slot_tasks)


def live_slots(group: ServiceTasks) -> dict[int, list[Obj]]:
    """Slot number → the tasks that fill it (see updatable_tasks: a slot whose newest task must not
    restart still counts, so it is not refilled)."""
    result: dict[int, list[Obj]] = {}
    for key, slot_tasks in group.by_slot().items():
        if key.isdigit():
            tasks = updatable_tasks(slot_tasks, group.service)
            if tasks:
                result[int(key)] = tasks
    return result


def reconcile_replicated(group: ServiceTasks) -> dict[int, list[Obj]]:
    """Restart, then scale. Returns the slots that remain, for the rolling updater."""
    restart_failed(group)
    slots = live_slots(group)
    forget_dead_slots(group, set(slots))
    wanted = replicas(group.service)
    if len(slots) < wanted:
        free = (n for n in range(1, wanted + len(slots) + 1) if n not in slots)
        for _ in range(wanted - len(slots)):
            number = next(free)
            slots[number] = [group.create(slot=number)]
    elif len(slots) > wanted:
        keep = scale_down_order(slots)[:wanted]
        for number in set(slots) - set(keep):
            for task in slots.pop(number):
                group.set_desired(task, states.REMOVE)
    return slots


def forget_dead_slots(group: ServiceTasks, live: set[int]) -> None:
    """Slots no longer in use lose their history once it has stopped, as Swarm deletes dead slots'
    tasks (what is still stopping is left to the reaper)."""
    for key, slot_tasks in group.by_slot().items():
        if not key.isdigit() or int(key) in live:
            continue
        for task in slot_tasks:
            if not is_live(task) and (has_stopped(task) or not task.get("NodeID")):
                group.delete(task)


def scale_down_order(slots: dict[int, list[Obj]]) -> list[int]:
    """Slots in the order they are kept (the tail is removed first)."""

    def running_first(number: int) -> tuple[bool, int]:
        return (not any(observed(t) == states.RUNNING for t in slots[number]), number)

    by_running = sorted(slots, key=running_first)
    copies: Counter[str] = Counter()
    index: dict[int, float] = {}
    for number in by_running:
        tasks = slots[number]
        node_id = str(tasks[0].get("NodeID") or "") if len(tasks) == 1 else ""
        if not node_id:
            index[number] = float("inf")  # unassigned or mid-update: removed first
            continue
        copies[node_id] += 1
        index[number] = copies[node_id]
    return sorted(by_running, key=lambda number: index[number])
