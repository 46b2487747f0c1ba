"""The task reaper: deletes tasks nobody needs. Removed tasks (desired REMOVE) go as soon as they have
stopped or if they were never assigned; orphaned tasks of deleted services go at once; and each slot
(each node, for global services) keeps at most TaskHistoryRetentionLimit tasks, oldest stopped first.
Deleting a task is what tells its node to remove the container."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from shoal.api import states
from shoal.api.objects import CLUSTER, SERVICES, TASKS, Obj, dig
from shoal.orchestrator.restart import restart_policy
from shoal.orchestrator.task import desired, observed, slot_key, status_time
from shoal.planner import Plan, PlanBuilder
from shoal.store.memory import ReadView
from shoal.store.watch import Event

DEFAULT_HISTORY_LIMIT = 5


class TaskReaperPlanner:
    name = "task-reaper"

    def interested(self, event: Event) -> bool:
        return event.table in (TASKS, SERVICES, CLUSTER)

    def plan(self, view: ReadView, now: datetime) -> Plan:
        return plan_reaping(view)


def history_limit(view: ReadView) -> int:
    for cluster in view.objects(CLUSTER):
        value = dig(cluster, "Spec", "Orchestration", "TaskHistoryRetentionLimit")
        if value is not None:
            return int(value)
    return DEFAULT_HISTORY_LIMIT


def plan_reaping(view: ReadView) -> Plan:
    builder = PlanBuilder()
    services = {s["ID"]: s for s in view.objects(SERVICES)}
    limit = history_limit(view)
    slots: dict[tuple[str, str], list[Obj]] = defaultdict(list)
    for task in view.objects(TASKS):
        if _delete_now(task, services):
            builder.delete(TASKS, task)
        else:
            slots[(str(task.get("ServiceID", "")), slot_key(task))].append(task)
    for (service_id, _), slot_tasks in slots.items():
        keep = _slot_limit(services.get(service_id), limit)
        if keep >= 0:  # a negative limit keeps everything
            for task in _surplus(slot_tasks, keep):
                builder.delete(TASKS, task)
    return builder.plan


def _delete_now(task: Obj, services: dict[str, Obj]) -> bool:
    state = observed(task)
    if desired(task) == states.REMOVE:
        return states.rank(state) < states.rank(states.ASSIGNED) or states.is_terminal(state)
    return state == states.ORPHANED and task.get("ServiceID") not in services


def _slot_limit(service: Obj | None, limit: int) -> int:
    """MaxAttempts > 0 overrides the limit: restart history is rebuilt from these tasks."""
    if service is not None:
        attempts = restart_policy(dig(service, "Spec", "TaskTemplate")).max_attempts
        if attempts > 0:
            return attempts + 1
    return limit


def _surplus(slot_tasks: list[Obj], keep: int) -> list[Obj]:
    """The oldest deletable tasks beyond `keep` (running and about-to-run tasks are never deleted)."""
    excess = len(slot_tasks) - keep
    if excess <= 0:
        return []
    deletable = sorted((t for t in slot_tasks if _deletable(t)), key=lambda t: (status_time(t), t["ID"]))
    return deletable[:excess]


def _deletable(task: Obj) -> bool:
    """Stopped, or never assigned; and let go by the orchestrator (a task that just failed waits
    until its restart has been decided, or restart limits would be lost)."""
    if states.rank(desired(task)) <= states.rank(states.RUNNING):
        return False
    state = observed(task)
    return states.is_terminal(state) or states.rank(state) < states.rank(states.ASSIGNED)
