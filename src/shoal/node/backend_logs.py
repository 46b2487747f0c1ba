"""`docker service logs` for a service or a task."""

from __future__ import annotations

from collections.abc import AsyncIterator

from shoal.controlapi.services import find_service
from shoal.controlapi.tasks import find_task
from shoal.engineapi.backend import LogMessage, LogOptions
from shoal.node.backend_base import BackendBase
from shoal.node.local_tasks import follow_service_tasks, task_logs


class LogCalls(BackendBase):
    def service_logs(self, ref: str, options: LogOptions) -> AsyncIterator[LogMessage]:
        store = self._store()
        view = store.view()
        service = find_service(view, ref)
        tasks = sorted(view.tasks_of_service(service["ID"]), key=lambda t: t.get("CreatedAt", ""))
        # Following also shows tasks that start later (replacements, scale-up), as swarmkit's log broker.
        more = follow_service_tasks(store, service["ID"]) if options.follow else None
        return task_logs(self._node.executor, tasks, options, more_tasks=more)

    def task_logs(self, ref: str, options: LogOptions) -> AsyncIterator[LogMessage]:
        store = self._store()
        return task_logs(self._node.executor, [find_task(store.view(), ref)], options)
