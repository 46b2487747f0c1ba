"""What one orchestration pass works on: the plan being built, the nodes, the time, and per service
its tasks as this pass has changed them so far (later steps see earlier steps' decisions)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from shoal.api import states
from shoal.api.objects import NODES, SERVICES, TASKS, Obj, dig
from shoal.orchestrator.restart import promotion_wait, should_restart
from shoal.orchestrator.task import desired, is_job, is_live, new_task, set_desired, slot_key
from shoal.planner import PlanBuilder


@dataclass
class Pass:
    builder: PlanBuilder
    nodes: dict[str, Obj]
    now: datetime


@dataclass
class ServiceTasks:
    """One service's tasks during a pass; edits and creations go to the plan and show here at once."""

    run: Pass
    service: Obj
    _tasks: list[Obj] = field(default_factory=list)
    _slots: dict[str, list[Obj]] | None = None  # by_slot(), until the next change

    @property
    def template(self) -> Obj:
        template: Obj = dig(self.service, "Spec", "TaskTemplate", default={})
        return template

    @property
    def _bound_to_nodes(self) -> bool:
        mode = dig(self.service, "Spec", "Mode", default={}) or {}
        return mode.get("Global") is not None or mode.get("GlobalJob") is not None

    def _slot_of(self, task: Obj) -> str:
        """A replicated job's slots are numbered from 0, so its slot 0 is a slot, not a node."""
        if dig(self.service, "Spec", "Mode", "ReplicatedJob") is not None:
            return str(int(task.get("Slot") or 0))
        return slot_key(task)

    @property
    def run_state(self) -> str:
        """The desired state of a task that should run: jobs' tasks run to completion."""
        return states.COMPLETE if is_job(self.service) else states.RUNNING

    def all(self) -> list[Obj]:
        return [self.run.builder.current(TASKS, t) for t in self._tasks if not self._deleted(t)]

    def _deleted(self, task: Obj) -> bool:
        return self.run.builder.is_deleted(TASKS, task["ID"])

    def by_slot(self) -> dict[str, list[Obj]]:
        """Slot key → its tasks as this pass leaves them (a fresh dict each call, lists shared)."""
        if self._slots is None:
            slots: dict[str, list[Obj]] = defaultdict(list)
            for task in self.all():
                slots[self._slot_of(task)].append(task)
            self._slots = dict(slots)
        return dict(self._slots)

    def edit(self, task: Obj) -> Obj:
        self._rests_on_service()
        self._slots = None
        return self.run.builder.edit(TASKS, task)

    def _rests_on_service(self) -> None:
        """Decisions about a service's tasks hold only for the spec they were made with."""
        self.run.builder.expect(SERVICES, self.service)

    def set_desired(self, task: Obj, state: str) -> None:
        if states.rank(state) > states.rank(desired(task)):
            set_desired(self.edit(task), state)

    def delete(self, task: Obj) -> None:
        self._rests_on_service()
        self._slots = None
        self.run.builder.delete(TASKS, task)

    def create(self, *, slot: int = 0, node_id: str = "", held: bool = False) -> Obj:
        task = new_task(
            self.service,
            self.run.now,
            slot=slot,
            node_id=node_id,
            desired=states.READY if held else self.run_state,
        )
        self._rests_on_service()
        if node_id and node_id in self.run.nodes:
            self.run.builder.expect(NODES, self.run.nodes[node_id])
        self.run.builder.create(TASKS, task)
        self._tasks.append(task)
        self._slots = None
        return task

    def restart(self, task: Obj, slot_tasks: list[Obj]) -> None:
        """Stop a task that ended or lost its node and, if the policy allows, start a held
        replacement in the same slot (same node for global services)."""
        self.set_desired(task, states.SHUTDOWN)
        if should_restart(task, slot_tasks):
            self.create(
                slot=int(task.get("Slot") or 0),
                node_id=str(task.get("NodeID") or "") if self._bound_to_nodes else "",
                held=True,
            )

    def promote_held(self) -> None:
        """Let held replacements run once their restart delay passed and the old task stopped."""
        for slot_tasks in self.by_slot().values():
            for task in slot_tasks:
                if desired(task) != states.READY or not is_live(task):
                    continue
                wait = promotion_wait(task, slot_tasks, self.run.nodes, self.run.now)
                if wait <= 0:
                    self.set_desired(task, self.run_state)
                else:
                    self.run.builder.plan.wake_in(wait)
