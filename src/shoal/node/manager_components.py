"""The leader's components, each one asyncio loop over the store. Started when this node leads,
cancelled when it stops leading; they never call each other."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from shoal.allocator.allocator import AllocatorPlanner
from shoal.allocator.component import run_component
from shoal.base.clock import Clock
from shoal.scheduler.scheduler import SchedulerPlanner
from shoal.store.memory import MemoryStore


def manager_loops(store: MemoryStore, clock: Clock) -> list[tuple[str, Coroutine[Any, Any, None]]]:
    return [
        ("allocator", run_component(store, clock, AllocatorPlanner())),
        ("scheduler", run_component(store, clock, SchedulerPlanner())),
    ]
