"""The restart policy (condition, delay, max attempts within a window) and the promotion of held
replacement tasks (desired READY) to RUNNING once their delay has passed and the task they replace
has stopped.

Restart history is read from the tasks themselves, not kept in memory: the restarts of a slot are the
tasks of the same spec after the first, created when each restart happened. This survives a leader
change, which is also why the reaper keeps MaxAttempts + 1 tasks per slot."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from shoal.api import states
from shoal.api.defaults import RESTART_DEFAULTS, seconds
from shoal.api.objects import Obj, dig
from shoal.orchestrator.task import (
    created_at,
    creation_order,
    desired,
    ended_on_its_own,
    has_stopped,
    is_live,
    observed,
    status_time,
    task_job_iteration,
)

DEFAULT_DELAY = seconds(RESTART_DEFAULTS["Delay"])
# A held replacement starts anyway if the task it replaces has not stopped within this time.
OLD_TASK_TIMEOUT = 60.0


@dataclass(frozen=True)
class RestartPolicy:
    condition: str = RESTART_DEFAULTS["Condition"]
    delay: float = DEFAULT_DELAY  # seconds
    max_attempts: int = 0  # 0 = unlimited
    window: float = 0.0  # seconds; 0 = all time


def restart_policy(task_spec: Obj | None) -> RestartPolicy:
    policy = dig(task_spec or {}, "RestartPolicy", default={}) or {}
    delay = policy.get("Delay")
    return RestartPolicy(
        condition=str(policy.get("Condition") or RestartPolicy.condition),
        delay=DEFAULT_DELAY if delay is None else seconds(int(delay)),
        max_attempts=int(policy.get("MaxAttempts") or 0),
        window=seconds(int(policy.get("Window") or 0)),
    )


def should_restart(task: Obj, slot_tasks: list[Obj]) -> bool:
    """Whether a task that stopped (or lost its node) gets a replacement under its restart policy.
    `slot_tasks` are all tasks of its slot (of its node, for global services)."""
    policy = restart_policy(task.get("Spec"))
    if policy.condition == "none":
        return False
    if task_job_iteration(task) is not None and observed(task) == states.COMPLETE:
        return False  # a job's task that completed is done, whatever the condition ("any" too)
    if policy.condition == "on-failure" and observed(task) == states.COMPLETE:
        return False
    if policy.max_attempts <= 0:
        return True
    return restarts_before(task, slot_tasks, policy) < policy.max_attempts


def restarts_before(task: Obj, slot_tasks: list[Obj], policy: RestartPolicy) -> int:
    """Restarts of this task's spec in its slot (within the window before the task ended). A spec
    change starts the count afresh, as Swarm keeps history per spec version."""
    same_spec = sorted((t for t in slot_tasks if t.get("Spec") == task.get("Spec")), key=creation_order)
    ended = status_time(task)
    restart_times = [created_at(t) for t in same_spec[1:] if created_at(t) <= max(ended, created_at(task))]
    if policy.window <= 0:
        return len(restart_times)
    since = ended - timedelta(seconds=policy.window)
    return sum(1 for moment in restart_times if moment > since)


def updatable_tasks(slot_tasks: list[Obj], service: Obj) -> list[Obj]:
    """The tasks that make up a slot for scaling and updates: its wanted tasks, or else its newest
    task if that one must not restart (so the slot is neither refilled nor forgotten by a later
    update). During a rollback such a slot counts as empty, so the rollback converges."""
    wanted = [t for t in slot_tasks if is_live(t)]
    if wanted or not slot_tasks:
        return wanted
    if dig(service, "UpdateStatus", "State") == "rollback_started":
        return []
    newest = max(slot_tasks, key=creation_order)
    if desired(newest) == states.SHUTDOWN and not should_restart(newest, slot_tasks):
        return [newest]
    return []


def predecessor(task: Obj, slot_tasks: list[Obj]) -> Obj | None:
    """The task this one replaced: the newest older task of its slot."""
    older = [t for t in slot_tasks if creation_order(t) < creation_order(task)]
    return max(older, key=creation_order, default=None)


def promotion_wait(task: Obj, slot_tasks: list[Obj], nodes: dict[str, Obj], now: datetime) -> float:
    """Seconds until a held (desired READY) task may run (0: now). While the task it replaces is still
    stopping, the answer is the time left to the old-task timeout; its stop re-plans sooner."""
    created = created_at(task)
    age = (now - created).total_seconds()
    delay = 0.0
    previous = predecessor(task, slot_tasks)
    if previous is not None and _is_restart_of(task, previous) and not _left_its_node(previous, nodes):
        delay = restart_policy(previous.get("Spec")).delay
    if age < delay:
        return delay - age
    if age < OLD_TASK_TIMEOUT and any(_still_running(t, nodes) for t in slot_tasks if t is not task):
        return max(OLD_TASK_TIMEOUT - age, 0.0)
    return 0.0


def is_restart(task: Obj, slot_tasks: list[Obj]) -> bool:
    """Whether the task replaced one of the same spec that ended by itself or lost its node (as
    opposed to replacing an out-of-date task in a rolling update)."""
    previous = predecessor(task, slot_tasks)
    return previous is not None and _is_restart_of(task, previous)


def _is_restart_of(task: Obj, previous: Obj) -> bool:
    """Same spec and the old task ended (or lost its node) while wanted: a restart, not an update."""
    return previous.get("Spec") == task.get("Spec") and (ended_on_its_own(previous) or not has_stopped(previous))


def _left_its_node(task: Obj, nodes: dict[str, Obj]) -> bool:
    """The task's node was drained or went Down: the task moves because of its node, not because it
    failed, so the restart delay (which slows a failing task) does not apply. Swarm waits the delay
    for a Down node too; shoal does not (see BENCHMARKS.md, dead worker)."""
    node = nodes.get(str(task.get("NodeID") or ""))
    return node is not None and (dig(node, "Spec", "Availability") == "drain"
                                 or dig(node, "Status", "State") == "down")


def _still_running(task: Obj, nodes: dict[str, Obj]) -> bool:
    """An older task that may still hold the slot: placed on a node that is up, and not stopped."""
    if has_stopped(task) or is_live(task):
        return False
    if states.rank(observed(task)) < states.rank(states.ASSIGNED):
        return False
    node = nodes.get(str(task.get("NodeID") or ""))
    return node is not None and dig(node, "Status", "State") != "down"
