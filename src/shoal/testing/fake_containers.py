"""The fake backend's containers and execs (put in place by tests with add_container)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from shoal.api import errors
from shoal.base.ids import new_container_id
from shoal.engineapi.backend import ContainerListQuery, ExecStartOptions, Filters, Json, LogMessage, LogOptions
from shoal.executor.base import parse_signal
from shoal.testing.fake_core import FakeCore, FakeExec, FakeExecStream, _drain


class FakeContainerCalls(FakeCore):
    @property
    def volumes(self) -> dict[str, Json]:
        """Volume name → its inspect body (made on first use: FakeCore's constructor is not ours)."""
        found: dict[str, Json] = self.__dict__.setdefault("_fake_volumes", {})
        return found

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

    # -- kill, stop, rm, pause, wait, stats, top, cp: the real backend's answers, without processes
    def _running(self, ref: str) -> Json:
        container = self._container(ref)
        if container["State"] not in ("running", "paused"):
            raise errors.Conflict(f"Container {container['Id']} is not running")
        return container

    async def container_kill(self, ref: str, signal: str) -> None:
        try:
            parse_signal(signal or "SIGKILL")
        except ValueError:
            raise errors.InvalidArgument(f"Invalid signal: {signal}") from None
        self._running(ref)["State"] = "exited"

    async def container_stop(self, ref: str, timeout: int | None) -> bool:
        container = self._container(ref)
        if container["State"] not in ("running", "paused"):
            return False
        container["State"] = "exited"
        return True

    async def container_restart(self, ref: str, timeout: int | None) -> None:
        self._container(ref)["State"] = "running"

    async def container_remove(self, ref: str, force: bool, volumes: bool) -> None:
        container = self._container(ref)
        if container["State"] == "running" and not force:
            raise errors.Conflict(f"You cannot remove a running container {container['Id']}. Stop the container "
                                  "before attempting removal or force remove")
        del self.containers[container["Id"]]

    async def container_pause(self, ref: str) -> None:
        container = self._running(ref)
        if container["State"] == "paused":
            raise errors.Conflict(f"Container {container['Id']} is paused")
        container["State"] = "paused"

    async def container_unpause(self, ref: str) -> None:
        container = self._running(ref)
        if container["State"] != "paused":
            raise errors.Conflict(f"Container {container['Id']} is not paused")
        container["State"] = "running"

    async def container_wait(self, ref: str, condition: str) -> Json:
        self._container(ref)
        return {"StatusCode": 0, "Error": None}

    async def container_stats(self, ref: str, stream: bool, one_shot: bool) -> AsyncIterator[Json]:
        container = self._container(ref)

        async def one() -> AsyncIterator[Json]:
            yield {"id": container["Id"], "name": container["Names"][0], "pids_stats": {"current": 1},
                   "cpu_stats": {"cpu_usage": {"total_usage": 0}}, "precpu_stats": {"cpu_usage": {"total_usage": 0}},
                   "memory_stats": {"usage": 0, "limit": 0}}

        return one()

    async def container_attach(self, ref: str, stream: bool, logs: bool) -> AsyncIterator[tuple[int, bytes]]:
        self._container(ref)

        async def nothing() -> AsyncIterator[tuple[int, bytes]]:
            return
            yield

        return nothing()

    async def container_top(self, ref: str, ps_args: str) -> Json:
        self._running(ref)
        return {"Titles": ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"], "Processes": []}

    async def container_archive_stat(self, ref: str, path: str) -> Json:
        raise errors.NotFound(f"Could not find the file {path} in container {self._container(ref)['Id']}")

    async def container_archive_get(self, ref: str, path: str) -> tuple[Json, AsyncIterator[bytes]]:
        raise errors.NotFound(f"Could not find the file {path} in container {self._container(ref)['Id']}")

    async def container_archive_put(self, ref: str, path: str, body: AsyncIterator[bytes],
                                    no_overwrite_dir_non_dir: bool) -> None:
        raise errors.NotFound(f"Could not find the file {path} in container {self._container(ref)['Id']}")

    # -- volumes: names only, in memory
    async def volumes_list(self, filters: Filters) -> Json:
        return {"Volumes": list(self.volumes.values()), "Warnings": None}

    async def volume_create(self, request: Json) -> Json:
        name = str(request.get("Name") or new_container_id())
        volume = self.volumes.setdefault(name, {
            "Name": name, "Driver": "local", "Mountpoint": f"/fake/volumes/{name}/_data", "Scope": "local",
            "Labels": request.get("Labels") or None, "Options": None, "CreatedAt": "2024-01-01T00:00:00Z"})
        return volume

    async def volume_inspect(self, name: str) -> Json:
        if name not in self.volumes:
            raise errors.NotFound(f"get {name}: no such volume")
        return self.volumes[name]

    async def volume_remove(self, name: str, force: bool) -> None:
        if name not in self.volumes and not force:
            raise errors.NotFound(f"get {name}: no such volume")
        self.volumes.pop(name, None)

    async def volumes_prune(self, filters: Filters) -> Json:
        removed = list(self.volumes)
        self.volumes.clear()
        return {"VolumesDeleted": removed or None, "SpaceReclaimed": 0}

    async def system_df(self) -> Json:
        return {"LayersSize": 0, "Images": [], "Containers": list(self.containers.values()),
                "Volumes": list(self.volumes.values()), "BuildCache": []}

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
