"""`docker service logs` for a service or a task, on any manager, for tasks on any node: the leader's
log broker asks the nodes that hold the tasks (shoal.dispatcher.logbroker); a manager that does not
lead reaches that broker over the cluster port. A worker answers Swarm's "not a swarm manager"."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator

from shoal.api import errors
from shoal.controlapi.services import find_service
from shoal.controlapi.tasks import find_task
from shoal.dispatcher.logbroker import BrokerLine, LogSelector, SubscriptionOptions, remote_logs
from shoal.engineapi.backend import STDERR, STDOUT, LogMessage, LogOptions
from shoal.node.backend_base import BackendBase
from shoal.node.manager import Manager
from shoal.rpc.leader import NO_LEADER


class LogCalls(BackendBase):
    def service_logs(self, ref: str, options: LogOptions) -> AsyncIterator[LogMessage]:
        manager = self._node.require_manager()
        service = find_service(manager.store.view(), ref)  # NotFound before the stream starts
        return self._logs(manager, LogSelector(service_id=service["ID"]), options)

    def task_logs(self, ref: str, options: LogOptions) -> AsyncIterator[LogMessage]:
        manager = self._node.require_manager()
        task = find_task(manager.store.view(), ref)
        return self._logs(manager, LogSelector(task_id=task["ID"]), options)

    async def _logs(self, manager: Manager, selector: LogSelector, options: LogOptions) -> AsyncIterator[LogMessage]:
        wanted = {STDOUT} if not options.stderr else ({STDERR} if not options.stdout else {STDOUT, STDERR})
        lines = self._broker_lines(manager, selector,
                                   SubscriptionOptions(options.follow, options.tail, options.since))
        try:
            async for line in lines:
                if line.stream in wanted and (options.until is None or line.timestamp <= options.until):
                    yield LogMessage(line.stream, line.timestamp, line.data, line.attrs)
        finally:
            await lines.aclose()

    async def _broker_lines(self, manager: Manager, selector: LogSelector,
                            options: SubscriptionOptions) -> AsyncGenerator[BrokerLine, None]:
        """The leader's broker: here when this manager leads, else across the cluster port (the
        agents hold their publisher streams with the leader)."""
        if manager.is_leader():
            lines: AsyncGenerator[BrokerLine, None] = manager.logbroker.subscribe(selector, options)
        else:
            address = manager.leader_address()
            if address is None:
                raise errors.Unavailable(NO_LEADER)
            lines = remote_logs(manager.client, address, selector, options)
        try:
            async for line in lines:
                yield line
        finally:
            await lines.aclose()

