"""A Plan: what one planning pass of a manager component decided (objects to create, update,
delete, and when to look again), the PlanBuilder that collects it, and apply_plan, which stages it in
one transaction.

A plan is written atomically: if any object it edits or rests on changed since the snapshot it was
made from (`update out of sequence`), nothing is written and the planner runs again."""

from __future__ import annotations

from dataclasses import dataclass, field

from shoal.api import errors
from shoal.api.objects import TASKS, Obj, version_of
from shoal.store.memory import Tx


@dataclass
class Plan:
    """What one planning pass decided. Updated objects carry the Version they were read with."""

    creates: list[tuple[str, Obj]] = field(default_factory=list)
    updates: list[tuple[str, Obj]] = field(default_factory=list)
    deletes: list[tuple[str, Obj]] = field(default_factory=list)
    # Objects the decisions rest on without changing them (the node a task was placed on, the
    # service whose spec its tasks copy): if any changed meanwhile, the plan is not written.
    expects: list[tuple[str, Obj]] = field(default_factory=list)
    wake_after: float | None = None  # seconds until the planner wants another pass

    def is_empty(self) -> bool:
        return not (self.creates or self.updates or self.deletes)

    def wake_in(self, seconds: float) -> None:
        """Ask for another pass in `seconds` (the earliest request wins)."""
        seconds = max(seconds, 0.0)
        if self.wake_after is None or seconds < self.wake_after:
            self.wake_after = seconds


class PlanBuilder:
    """Collects a plan. edit() hands out one private copy per object, so several steps of one pass
    can change the same object and the plan writes it once.

    The copy is two levels deep (the object and each of its fields): set or change `obj[k]` and
    `obj[k][j]` freely; to change anything deeper, replace the field with a clone. Copying whole
    objects deeply cost more than all the planning on a large batch."""

    def __init__(self) -> None:
        self.plan = Plan()
        self._edits: dict[tuple[str, str], Obj] = {}
        self._created: dict[tuple[str, str], Obj] = {}
        self._deleted: set[tuple[str, str]] = set()
        self._expected: set[tuple[str, str]] = set()

    def edit(self, table: str, obj: Obj) -> Obj:
        key = (table, obj["ID"])
        if key in self._created:
            return self._created[key]
        if key not in self._edits:
            copy = _two_level_copy(obj)
            self._edits[key] = copy
            self.plan.updates.append((table, copy))
        return self._edits[key]

    def create(self, table: str, obj: Obj) -> Obj:
        self._created[(table, obj["ID"])] = obj
        self.plan.creates.append((table, obj))
        return obj

    def delete(self, table: str, obj: Obj) -> None:
        key = (table, obj["ID"])
        if key in self._deleted:
            return
        self._deleted.add(key)
        self.plan.deletes.append((table, obj))

    def expect(self, table: str, obj: Obj) -> None:
        """The plan is only valid while obj is unchanged (see Plan.expects)."""
        key = (table, obj["ID"])
        if key not in self._expected:
            self._expected.add(key)
            self.plan.expects.append((table, obj))

    def current(self, table: str, obj: Obj) -> Obj:
        """obj as this plan will leave it (its edited copy, if any)."""
        key = (table, obj["ID"])
        return self._created.get(key) or self._edits.get(key) or obj

    def created_tasks(self) -> list[Obj]:
        return [obj for (table, _), obj in self._created.items() if table == TASKS]

    def is_deleted(self, table: str, obj_id: str) -> bool:
        return (table, obj_id) in self._deleted


def _two_level_copy(obj: Obj) -> Obj:
    copy: Obj = {}
    for field_name, value in obj.items():
        if isinstance(value, dict):
            copy[field_name] = dict(value)
        elif isinstance(value, list):
            copy[field_name] = list(value)
        else:
            copy[field_name] = value
    return copy


def apply_plan(tx: Tx, plan: Plan) -> None:
    """Stage a plan in a transaction; any object changed since it was read aborts the whole plan."""
    for table, obj in plan.expects:
        current = tx.get(table, obj["ID"])
        if current is None or version_of(current) != version_of(obj):
            raise errors.OutOfSequence()
    # The plan's objects are its own (created, or copied by edit()); the store keeps what it decodes
    # from the committed payload, never these dicts.
    for table, obj in plan.creates:
        tx.create(table, obj)
    for table, obj in plan.updates:
        tx.update(table, obj)
    for table, obj in plan.deletes:
        current = tx.get(table, obj["ID"])
        if current is None:
            continue
        if version_of(current) != version_of(obj):
            raise errors.OutOfSequence()
        tx.delete(table, obj["ID"])
