"""The orchestrators (replicated, global, restart, rolling update, reaper, constraint enforcer). The
leader runs their planners from shoal.node.manager_components; the control API uses `is_task_dirty`
(the `_up-to-date` filter) and `new_task`."""

from shoal.orchestrator.dirty import is_task_dirty
from shoal.orchestrator.task import new_task

__all__ = ["is_task_dirty", "new_task"]
