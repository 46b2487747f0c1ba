"""The leader's components, each one asyncio loop over the store. Started when this node leads,
cancelled when it stops leading; they never call each other."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any

from shoal.allocator.component import run_component
from shoal.base.clock import Clock
from shoal.orchestrator.components import planners
from shoal.store.memory import MemoryStore

LoopFactory = Callable[[], Coroutine[Any, Any, None]]


def manager_loops(store: MemoryStore, clock: Clock) -> list[tuple[str, LoopFactory]]:
    """(name, start) for each component; start() makes a fresh run, so a failed loop can be restarted."""
    return [(planner.name, partial(run_component, store, clock, planner)) for planner in planners()]
