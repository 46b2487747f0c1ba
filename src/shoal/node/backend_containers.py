"""The containers and execs on this node (its tasks' containers), for `docker ps`, `inspect`, `logs`
and `exec`."""

from __future__ import annotations

from collections.abc import AsyncIterator

from shoal.api.objects import Obj
from shoal.engineapi.backend import ContainerListQuery, ExecStartOptions, ExecStream, LogMessage, LogOptions
from shoal.node.backend_base import BackendBase, Json
from shoal.node.local_tasks import task_logs


class ContainerCalls(BackendBase):
    async def containers_list(self, query: ContainerListQuery) -> list[Json]:
        return await self._local.list(query)

    async def container_inspect(self, ref: str) -> Json:
        return await self._local.inspect(ref)

    def container_logs(self, ref: str, options: LogOptions) -> AsyncIterator[LogMessage]:
        return self._container_logs(ref, options)

    async def _container_logs(self, ref: str, options: LogOptions) -> AsyncIterator[LogMessage]:
        info = await self._local.find(ref)
        task: Obj = {"ID": info.labels.get("com.docker.swarm.task.id", ""), "Status": {
            "ContainerStatus": {"ContainerID": info.id}}}
        async for message in task_logs(self._node.executor, [task], options):
            yield message

    async def exec_create(self, container_ref: str, config: Json) -> str:
        return await self._local.exec_create(container_ref, config)

    async def exec_start(self, exec_id: str, options: ExecStartOptions) -> ExecStream:
        return await self._local.exec_start(exec_id)

    async def exec_inspect(self, exec_id: str) -> Json:
        return await self._local.exec_inspect(exec_id)

    async def exec_resize(self, exec_id: str, height: int, width: int) -> None:
        return None
