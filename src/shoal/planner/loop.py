"""run_component: the loop every manager component runs. It feeds the planner a store snapshot at
start, after each batch of relevant commits and when the planner's timer fires, and writes each
non-empty plan back in one transaction.

Planning is level-triggered: each pass looks at the whole current state, so a lost event or a stale
plan costs one more pass, never a wrong result."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from shoal.api import errors
from shoal.base.clock import Clock
from shoal.planner.plan import Plan, apply_plan
from shoal.store.memory import MemoryStore, ReadView, Tx
from shoal.store.watch import Event, Subscription

log = logging.getLogger(__name__)

# After a planner crashes, wait this long before trying again (a bug must not spin the CPU).
CRASH_BACKOFF = 1.0
# The shortest timer honoured after a pass that changed nothing.
MIN_IDLE_WAKE = 0.05
# Stale plans are re-planned at once this many times before waiting for the next event.
MAX_STALE_RETRIES = 5


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
    """Return once an event arrived (after draining everything queued) or the timer fired. A restored
    snapshot wakes it too (every subscriber gets the Restored marker): the next pass reads the whole
    new state, so a follower-turned-leader's planners never act on what the snapshot replaced."""
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
