"""The one registry of the leader's components. Each is a planner run as one asyncio loop over the
store; the leader starts them all in one TaskGroup and cancels them when it stops leading. They never
call each other. (The composition root holds the registry because it names planners from the
orchestrator, scheduler and allocator packages, which must not import each other's loops.)"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any

from shoal.allocator.allocator import AllocatorPlanner
from shoal.base.clock import Clock
from shoal.orchestrator.enforcer import ConstraintEnforcerPlanner
from shoal.orchestrator.orchestrator import OrchestratorPlanner
from shoal.orchestrator.reaper import TaskReaperPlanner
from shoal.planner import Planner, run_component
from shoal.scheduler.scheduler import SchedulerPlanner
from shoal.store.memory import MemoryStore

LoopFactory = Callable[[], Coroutine[Any, Any, None]]


def planners() -> list[Planner]:
    """A fresh instance of every component's planner (a new leader starts with no memory)."""
    return [
        AllocatorPlanner(),
        SchedulerPlanner(),
        OrchestratorPlanner(),
        TaskReaperPlanner(),
        ConstraintEnforcerPlanner(),
    ]


def manager_loops(store: MemoryStore, clock: Clock) -> list[tuple[str, LoopFactory]]:
    """(name, start) for each component; start() makes a fresh run, so a failed loop can be restarted."""
    return [(planner.name, partial(run_component, store, clock, planner)) for planner in planners()]
