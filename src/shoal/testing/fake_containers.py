"""The fake backend's containers and execs (put in place by tests with add_container)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from shoal.api import errors
from shoal.base.ids import new_container_id
from shoal.engineapi.backend import ContainerListQuery, ExecStartOptions, Json, LogMessage, LogOptions
from shoal.testing.fake_core import FakeCore, FakeExec, FakeExecStream, _drain


class FakeContainerCalls(FakeCore):
    def add_container(self, name: str, labels: dict[str, str] | None = None) -> str:
        container_id = new_container_id()
        self.containers[container_id] = {
            "Id": container_id,
            "Names": [f"/{name}"],
            "Image": "busybox:latest",
            "Command": "sh",
            "Created": int(datetime.now(UTC).timestamp()),
            "State": "running",
            "Status": "Up 1 second",
            "Ports": [],
            "Labels": labels or {},
        }
        return container_id

    def _container(self, ref: str) -> Json:
        for container in self.containers.values():
            if container["Id"].startswith(ref) or f"/{ref}" in container["Names"]:
                return container
        raise errors.NotFound(f"No such container: {ref}")

    async def containers_list(self, query: ContainerListQuery) -> list[Json]:
        names = query.filters.get("name", [])
        found = [
            c
            for c in self.containers.values()
            if (query.all or c["State"] == "running") and (not names or any(n in c["Names"][0] for n in names))
        ]
        return found[: query.limit] if query.limit else found

    async def container_inspect(self, ref: str) -> Json:
        container = self._container(ref)
        return {"Id": container["Id"], "Name": container["Names"][0], "Config": {"Tty": False}}

    async def container_logs(self, ref: str, options: LogOptions) -> AsyncIterator[LogMessage]:
        container = self._container(ref)
        service_id = container["Labels"].get("com.docker.swarm.service.id", "")
        task_id = container["Labels"].get("com.docker.swarm.task.id")
        async for message in self._follow_lines(service_id, options, task_id):
            yield message

    async def exec_create(self, container_ref: str, config: Json) -> str:
        container = self._container(container_ref)
        exec_id = new_container_id()
        self.execs[exec_id] = FakeExec(
            exec_id,
            container["Id"],
            list(config.get("Cmd") or []),
            attach_stdin=config.get("AttachStdin") is True,
            tty=config.get("Tty") is True,
        )
        return exec_id

    def _exec(self, exec_id: str) -> FakeExec:
        if exec_id not in self.execs:
            raise errors.NotFound(f"No such exec instance: {exec_id}")
        return self.execs[exec_id]

    async def exec_start(self, exec_id: str, options: ExecStartOptions) -> FakeExecStream:
        session = self._exec(exec_id)
        if session.running:
            raise errors.Conflict(f"Error: Exec command {exec_id} is already running")
        if session.exit_code is not None:
            raise errors.Conflict(f"Error: Exec command {exec_id} has already run")
        session.running = True
        stream = FakeExecStream(session)
        if options.detach:  # nobody reads the output: run it to the end in the background
            task = asyncio.create_task(_drain(stream))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        return stream

    async def exec_inspect(self, exec_id: str) -> Json:
        session = self._exec(exec_id)
        return {
            "ID": exec_id,
            "ContainerID": session.container_id,
            "Running": session.running,
            "ExitCode": session.exit_code,
            "ProcessConfig": {"entrypoint": session.command[:1], "arguments": session.command[1:]},
        }

    async def exec_resize(self, exec_id: str, height: int, width: int) -> None:
        self._exec(exec_id)
