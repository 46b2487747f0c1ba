"""The scheduler: every PENDING task that should run gets a node (ASSIGNED), all decisions of a pass in
one transaction. A task no node can take stays PENDING with `no suitable node (...)` in Status.Err and
is tried again on every relevant change and, unlike Swarm, also on a timer, so a task never waits for
an unrelated event to be placed once room appears."""

from __future__ import annotations

from datetime import datetime

from shoal.api import states
from shoal.api.objects import NODES, SERVICES, TASKS, Obj, dig
from shoal.base.clock import rfc3339
from shoal.planner import Plan, PlanBuilder
from shoal.scheduler.nodeinfo import NodeInfo, build_node_infos
from shoal.scheduler.placement import check_preassigned, place_group
from shoal.store.memory import ReadView
from shoal.store.watch import Event

RETRY_INTERVAL = 5.0  # seconds between passes while some task cannot be placed
ASSIGNED_MESSAGE = "scheduler assigned task to node"
PREASSIGNED_MESSAGE = "scheduler confirmed task can run on preassigned node"
NO_SUITABLE_NODE = "no suitable node"


class SchedulerPlanner:
    name = "scheduler"

    def interested(self, event: Event) -> bool:
        return event.table in (TASKS, NODES, SERVICES)

    def plan(self, view: ReadView, now: datetime) -> Plan:
        return plan_scheduling(view, now)


def plan_scheduling(view: ReadView, now: datetime) -> Plan:
    builder = PlanBuilder()
    stamp = rfc3339(now)
    pending = sorted(
        (t for t in view.objects(TASKS) if dig(t, "Status", "State") == states.PENDING),
        key=lambda t: (t.get("CreatedAt", ""), int(t.get("Slot", 0)), t["ID"]),
    )
    if not pending:
        return builder.plan
    infos = build_node_infos(view, now)
    waiting = False
    groups: dict[str, list[Obj]] = {}
    # Tasks bound to a node (global services) first, so they start before replicated ones.
    for task in pending:
        desired = str(task.get("DesiredState", states.RUNNING))
        # job tasks run to completion: desired COMPLETE is placed like RUNNING
        if desired != states.COMPLETE and states.rank(desired) > states.rank(states.RUNNING):
            _never_started(builder, task, stamp)
        elif task.get("NodeID"):
            waiting |= not _confirm_preassigned(builder, task, infos, stamp)
        else:
            groups.setdefault(_group_key(task), []).append(task)
    for group in groups.values():
        for placement in place_group(group, list(infos.values())):
            if placement.node is None:
                waiting = True
                text = NO_SUITABLE_NODE
                if placement.explanation:
                    text = f"{NO_SUITABLE_NODE} ({placement.explanation})"
                _explain(builder, placement.task, text, stamp)
            else:
                builder.expect(NODES, placement.node.node)
                edited = builder.edit(TASKS, placement.task)
                edited["NodeID"] = placement.node.id
                edited["Status"] = {"Timestamp": stamp, "State": states.ASSIGNED, "Message": ASSIGNED_MESSAGE}
    if waiting:
        builder.plan.wake_in(RETRY_INTERVAL)
    return builder.plan


def _group_key(task: Obj) -> str:
    """Tasks of one service with one spec and endpoint are interchangeable (Swarm groups them by
    service and spec version); they are placed together."""
    return repr((task.get("ServiceID"), task.get("Spec"), dig(task, "Endpoint", "Spec")))


def _never_started(builder: PlanBuilder, task: Obj, stamp: str) -> None:
    """A task stopped before it was placed goes straight to SHUTDOWN (removals are left to the
    reaper, which deletes never-assigned tasks)."""
    if task.get("DesiredState") == states.SHUTDOWN:
        edited = builder.edit(TASKS, task)
        edited["Status"].pop("Err", None)
        edited["Status"].update(Timestamp=stamp, State=states.SHUTDOWN)


def _confirm_preassigned(builder: PlanBuilder, task: Obj, infos: dict[str, NodeInfo], stamp: str) -> bool:
    info = infos.get(str(task["NodeID"]))
    explanation = "node not found" if info is None else check_preassigned(task, info)
    if explanation is not None:
        _explain(builder, task, explanation, stamp)
        return False
    assert info is not None
    builder.expect(NODES, info.node)
    edited = builder.edit(TASKS, task)
    edited["Status"] = {"Timestamp": stamp, "State": states.ASSIGNED, "Message": PREASSIGNED_MESSAGE}
    info.add_task(edited)
    return True


def _explain(builder: PlanBuilder, task: Obj, text: str, stamp: str) -> None:
    """Write why the task waits, stamped as Swarm does, only when the reason changed."""
    if dig(task, "Status", "Err") != text:
        builder.edit(TASKS, task)["Status"].update(Err=text, Timestamp=stamp)
