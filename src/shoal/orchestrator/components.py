"""The manager's decision-makers, ready to run: the leader starts every entry of components() in one
TaskGroup when it gains leadership and cancels them when it loses it. They never call each other;
each reads the store and writes its decisions back."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from shoal.allocator.allocator import AllocatorPlanner
from shoal.allocator.component import Planner, run_component
from shoal.base.clock import Clock
from shoal.orchestrator.enforcer import ConstraintEnforcerPlanner
from shoal.orchestrator.orchestrator import OrchestratorPlanner
from shoal.orchestrator.reaper import TaskReaperPlanner
from shoal.scheduler.scheduler import SchedulerPlanner
from shoal.store.memory import MemoryStore


def planners() -> list[Planner]:
    return [
        AllocatorPlanner(),
        SchedulerPlanner(),
        OrchestratorPlanner(),
        TaskReaperPlanner(),
        ConstraintEnforcerPlanner(),
    ]


def components(store: MemoryStore, clock: Clock) -> list[Callable[[], Awaitable[None]]]:
    """One coroutine factory per component; each runs until cancelled."""

    def runner(planner: Planner) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            await run_component(store, clock, planner)

        run.__name__ = f"run_{planner.name.replace('-', '_')}"
        return run

    return [runner(planner) for planner in planners()]
