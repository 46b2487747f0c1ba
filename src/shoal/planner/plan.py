"""The shape every manager component shares: a planner decides over a store snapshot and returns a
Plan (objects to create, update, delete, and when to look again); run_component is the thin loop that
feeds it snapshots after each batch of commits, or when its timer fires, and writes the plan back in
one transaction.

Planning is level-triggered: each pass looks at the whole current state, so a lost event or a stale
plan costs one more pass, never a wrong result. A plan is written atomically: if any object it edits
changed since the snapshot (`update out of sequence`), nothing is written and the planner runs again.

This module sits in allocator because it is the lowest of the three manager-component packages
(imports flow orchestrator → scheduler → allocator)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from shoal.api import errors
from shoal.api.objects import TASKS, Obj, version_of
from shoal.base.clock import Clock
from shoal.store.memory import MemoryStore, ReadView, Tx
from shoal.store.watch import Event, Subscription

log = logging.getLogger(__name__)

# After a planner crashes, wait this long before trying again (a bug must not spin the CPU).
CRASH_BACKOFF = 1.0
# The shortest timer honoured after a pass that changed nothing.
MIN_IDLE_WAKE = 0.05
# Stale plans are re-planned at once this many times before waiting for the next event.
MAX_STALE_RETRIES = 5


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


class Planner(Protocol):
    name: str

    def interested(self, event: Event) -> bool:
        """Whether an event may change what this planner decides."""
        ...

    def plan(self, view: ReadView, now: datetime) -> Plan: ...


PlanObserver = Callable[[Plan], None]


async def run_component(
    store: MemoryStore, clock: Clock, planner: Planner, on_plan: PlanObserver | None = None
) -> None:
    """Plan at start, then after every batch of relevant commits and whenever the planner's timer is
    due; write each non-empty plan in one transaction. Runs until cancelled."""
    subscription = store.watch(planner.interested)
    try:
        while True:
            wake_after = await _plan_and_apply(store, clock, planner, on_plan)
            await _wait_for_work(subscription, clock, wake_after)
    finally:
        subscription.close()


async def _plan_and_apply(
    store: MemoryStore, clock: Clock, planner: Planner, on_plan: PlanObserver | None
) -> float | None:
    for _ in range(MAX_STALE_RETRIES):
        try:
            plan = planner.plan(store.view(), clock.now())
        except Exception:
            log.exception("%s: planning failed", planner.name)
            return CRASH_BACKOFF
        if plan.is_empty():
            # A timer that is already due but changes nothing must not spin the loop.
            return None if plan.wake_after is None else max(plan.wake_after, MIN_IDLE_WAKE)
        try:
            await store.update(_writer(plan))
        except errors.OutOfSequence:
            continue  # something it read changed meanwhile: plan again over the fresh state
        except errors.Unavailable:
            return CRASH_BACKOFF  # the store cannot commit (no quorum); try again later
        except Exception:
            log.exception("%s: writing the plan failed", planner.name)
            return CRASH_BACKOFF
        if on_plan is not None:
            on_plan(plan)
        return plan.wake_after
    return CRASH_BACKOFF


def _writer(plan: Plan) -> Callable[[Tx], None]:
    def write(tx: Tx) -> None:
        apply_plan(tx, plan)

    return write


async def _wait_for_work(subscription: Subscription, clock: Clock, wake_after: float | None) -> None:
    """Return once an event arrived (after draining everything queued) or the timer fired."""
    if subscription.get_nowait() is None:
        waiters: set[asyncio.Future[object]] = {asyncio.ensure_future(_next(subscription))}
        if wake_after is not None:
            waiters.add(asyncio.ensure_future(_sleep(clock, wake_after)))
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
    # Batch: everything already queued is covered by the next full pass.
    while subscription.get_nowait() is not None:
        pass


async def _next(subscription: Subscription) -> object:
    return await subscription.get()


async def _sleep(clock: Clock, seconds: float) -> object:
    await clock.sleep(seconds)
    return None
