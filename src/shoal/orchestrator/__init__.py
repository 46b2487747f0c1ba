"""The manager's decision-makers. The leader runs `components(store, clock)` in a TaskGroup; the
control API uses `is_task_dirty` (the `_up-to-date` filter) and `new_task`. Port conflicts are checked
with shoal.allocator.ports.check_port_conflicts and constraints with
shoal.scheduler.constraints.validate_constraints."""

from shoal.orchestrator.components import components, planners
from shoal.orchestrator.dirty import is_task_dirty
from shoal.orchestrator.task import new_task

__all__ = ["components", "is_task_dirty", "new_task", "planners"]
