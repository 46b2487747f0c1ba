"""The containers, execs and volumes on this node (its tasks' containers), for `docker ps`, `inspect`,
`logs`, `exec`, `kill`, `stop`, `rm`, `pause`, `wait`, `stats`, `top`, `cp` and `docker volume`.
What is done to a container through the API also goes out on `docker events`, as dockerd sends it."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import AsyncIterator, Callable

from shoal.api import errors
from shoal.api.objects import Obj
from shoal.engineapi.backend import (
    ContainerListQuery,
    ExecStartOptions,
    ExecStream,
    Filters,
    LogMessage,
    LogOptions,
)
from shoal.executor.base import ContainerInfo
from shoal.executor.docker.executor import DockerExecutor
from shoal.executor.oci.volumes import LocalVolumes, Volume
from shoal.executor.process.executor import ProcessExecutor
from shoal.node.backend_base import BackendBase, Json
from shoal.node.events import container_action_message
from shoal.node.local_tasks import task_logs

VOLUME_FILTERS = ("name", "driver", "label", "dangling")
LOCAL_VOLUME_OPTIONS = ("type", "device", "o")


class _EventedExec:
    """An exec's stream that says `exec_die` on `docker events` once the process is gone."""

    def __init__(self, stream: ExecStream, on_exit: AsyncIterator[None]) -> None:
        self._stream = stream
        self._on_exit = on_exit

    async def output(self) -> AsyncIterator[tuple[int, bytes]]:
        async for chunk in self._stream.output():
            yield chunk
        async for _ in self._on_exit:
            pass

    async def write_stdin(self, data: bytes) -> None:
        await self._stream.write_stdin(data)

    async def close_stdin(self) -> None:
        await self._stream.close_stdin()


class ContainerCalls(BackendBase):
    # -- events
    def _publish(self, action: str, info: ContainerInfo, **extra: str) -> None:
        name = info.names[0].lstrip("/") if info.names else ""
        self._node.events.publish(container_action_message(action, info.id, name, info.image, info.labels, **extra))

    # -- list, inspect, logs
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
            # dockerd's json-file keeps no attributes for a task's container (only those its log-opts
            # name), so `docker logs --details` shows none; `docker service logs` has the swarm ones
            yield dataclasses.replace(message, attrs={})

    # -- kill, stop, rm, pause, wait
    async def container_kill(self, ref: str, signal: str) -> None:
        info, sig = await self._local.kill(ref, signal)
        self._publish("kill", info, signal=str(int(sig)))

    async def container_stop(self, ref: str, timeout: int | None) -> bool:
        info = await self._local.find(ref)
        if info.state.value == "running":
            self._publish("kill", info, signal="15")
        _, stopped = await self._local.stop(ref, timeout)
        if stopped:
            self._publish("stop", info)
        return stopped

    async def container_restart(self, ref: str, timeout: int | None) -> None:
        info = await self._local.find(ref)
        if info.state.value == "running":
            self._publish("kill", info, signal="15")
        self._publish("restart", await self._local.restart(ref, timeout))

    async def container_remove(self, ref: str, force: bool, volumes: bool) -> None:
        info = await self._local.remove(ref, force)
        if info.state.value == "running":
            self._publish("kill", info, signal="9")
        self._publish("destroy", info)

    async def container_pause(self, ref: str) -> None:
        self._publish("pause", await self._local.set_paused(ref, True))

    async def container_unpause(self, ref: str) -> None:
        self._publish("unpause", await self._local.set_paused(ref, False))

    async def container_wait(self, ref: str, condition: str) -> Json:
        return await self._local.wait(ref, condition)

    # -- stats, top, cp
    async def container_stats(self, ref: str, stream: bool, one_shot: bool) -> AsyncIterator[Json]:
        return await self._local.stats(ref, stream, one_shot)

    async def container_attach(self, ref: str, stream: bool, logs: bool) -> AsyncIterator[tuple[int, bytes]]:
        info = await self._local.find(ref)
        lines = self._node.executor.logs(info.id, follow=stream and info.state.value == "running",
                                         tail=None if logs else 0)

        async def output() -> AsyncIterator[tuple[int, bytes]]:
            async for line in lines:
                yield line.stream, line.data

        return output()

    async def container_top(self, ref: str, ps_args: str) -> Json:
        return await self._local.top(ref, ps_args)

    async def container_archive_stat(self, ref: str, path: str) -> Json:
        return await self._local.archive_stat(ref, path)

    async def container_archive_get(self, ref: str, path: str) -> tuple[Json, AsyncIterator[bytes]]:
        return await self._local.archive_get(ref, path)

    async def container_archive_put(self, ref: str, path: str, body: AsyncIterator[bytes],
                                    no_overwrite_dir_non_dir: bool) -> None:
        await self._local.archive_put(ref, path, body, no_overwrite_dir_non_dir)

    # -- exec
    async def exec_create(self, container_ref: str, config: Json) -> str:
        exec_id = await self._local.exec_create(container_ref, config)
        info = await self._local.find(container_ref)
        self._publish(f"exec_create: {' '.join(config.get('Cmd') or [])}", info, execID=exec_id)
        return exec_id

    async def exec_start(self, exec_id: str, options: ExecStartOptions) -> ExecStream:
        described = await self._local.exec_inspect(exec_id)
        stream = await self._local.exec_start(exec_id)
        command = " ".join([described["ProcessConfig"]["entrypoint"], *described["ProcessConfig"]["arguments"]])
        info = await self._local.find(described["ContainerID"])
        self._publish(f"exec_start: {command}", info, execID=exec_id)

        async def died() -> AsyncIterator[None]:
            code = (await self._local.exec_inspect(exec_id))["ExitCode"]
            self._publish("exec_die", info, execID=exec_id, exitCode=str(code if code is not None else 0))
            yield None

        return _EventedExec(stream, died())

    async def exec_inspect(self, exec_id: str) -> Json:
        return await self._local.exec_inspect(exec_id)

    async def exec_resize(self, exec_id: str, height: int, width: int) -> None:
        return None

    # -- volumes: this node's, with the local driver
    def _volumes(self) -> tuple[LocalVolumes, ProcessExecutor]:
        executor = self._node.executor
        if not isinstance(executor, ProcessExecutor):
            raise errors.NotImplementedYet(f"volumes are not served with the {executor.name} executor yet")
        return executor.volumes, executor

    def _engine_volumes(self) -> DockerExecutor | None:
        """With the docker executor the volumes are the engine's: every call goes there."""
        executor = self._node.executor
        return executor if isinstance(executor, DockerExecutor) else None

    async def volumes_list(self, filters: Filters) -> Json:
        if engine := self._engine_volumes():
            found: Json = await engine.volume_call("GET", "/volumes", params={"filters": filters} if filters else {})
            return found
        volumes, executor = self._volumes()
        for key in filters:
            if key not in VOLUME_FILTERS:
                raise errors.InvalidArgument(f"Invalid filter '{key}'")
        shown = [v.to_docker() for v in volumes.list() if _volume_matches(v, filters, executor.volume_users)]
        return {"Volumes": shown, "Warnings": None}

    async def volume_create(self, request: Json) -> Json:
        if engine := self._engine_volumes():
            created: Json = await engine.volume_call("POST", "/volumes/create", body=request)
            return created
        volumes, _ = self._volumes()
        name = str(request.get("Name") or "")
        driver = str(request.get("Driver") or "local")
        if driver != "local":
            raise errors.NotFound(f'create {name}: error looking up volume plugin {driver}: plugin "{driver}" '
                                  "not found")
        for key in request.get("DriverOpts") or {}:
            if key not in LOCAL_VOLUME_OPTIONS:
                raise errors.InvalidArgument(f'create {name}: invalid option key: "{key}"')
            raise errors.NotImplementedYet(f"create {name}: local volume options (type, device, o) are not "
                                           "supported by shoal yet")
        if not name:
            name = _anonymous_name()
        return volumes.create(name, dict(request.get("Labels") or {})).to_docker()

    async def volume_inspect(self, name: str) -> Json:
        if engine := self._engine_volumes():
            found: Json = await engine.volume_call("GET", f"/volumes/{name}")
            return found
        volumes, _ = self._volumes()
        return volumes.get(name).to_docker()

    async def volume_remove(self, name: str, force: bool) -> None:
        if engine := self._engine_volumes():
            await engine.volume_call("DELETE", f"/volumes/{name}", params={"force": force})
            return
        volumes, executor = self._volumes()
        volumes.remove(name, executor.volume_users(name), force)

    async def volumes_prune(self, filters: Filters) -> Json:
        if engine := self._engine_volumes():
            pruned: Json = await engine.volume_call("POST", "/volumes/prune",
                                                    params={"filters": filters} if filters else {})
            return pruned
        volumes, executor = self._volumes()
        for key in filters:
            if key not in ("label", "label!"):
                raise errors.InvalidArgument(f"Invalid filter '{key}'")

        def keep(volume: Volume) -> bool:
            return not _labels_match(volume, filters.get("label", []), True) or (
                bool(filters.get("label!")) and _labels_match(volume, filters["label!"], False))

        removed, freed = volumes.prune(executor.volume_users, keep)
        return {"VolumesDeleted": removed or None, "SpaceReclaimed": freed}


    # -- docker system df
    async def system_df(self) -> Json:
        containers = await self._local.list(ContainerListQuery(all=True))
        images: list[Json] = []
        if self._images is not None:
            images = [dict(row) for row in await self._images.list({})]
        for image in images:
            names = set(image.get("RepoTags") or []) | {image.get("Id")}
            image["Containers"] = sum(1 for c in containers if c.get("Image") in names)
        for container in containers:
            container.setdefault("SizeRw", 0)
            container.setdefault("SizeRootFs", 0)
        volumes: list[Json] = []
        executor = self._node.executor
        if isinstance(executor, ProcessExecutor):
            for volume in executor.volumes.list():
                shown = volume.to_docker()
                shown["UsageData"] = {"Size": executor.volumes.size(volume.name),
                                      "RefCount": len(executor.volume_users(volume.name))}
                volumes.append(shown)
        return {"LayersSize": sum(int(i.get("Size") or 0) for i in images), "Images": images,
                "Containers": containers, "Volumes": volumes, "BuildCache": []}


def _anonymous_name() -> str:
    return secrets.token_hex(32)  # as dockerd names a volume created without a name


def _labels_match(volume: Volume, wanted: list[str], all_of: bool) -> bool:
    def one(item: str) -> bool:
        key, sep, value = item.partition("=")
        return key in volume.labels and (not sep or volume.labels[key] == value)

    if not wanted:
        return all_of
    return all(one(w) for w in wanted) if all_of else any(one(w) for w in wanted)


def _volume_matches(volume: Volume, filters: Filters, users_of: Callable[[str], list[str]]) -> bool:
    if filters.get("name") and not any(w in volume.name for w in filters["name"]):
        return False
    if filters.get("driver") and "local" not in filters["driver"]:
        return False
    if not _labels_match(volume, filters.get("label", []), True):
        return False
    if filters.get("dangling"):
        wanted = filters["dangling"][0].lower() in ("1", "true")
        used = bool(users_of(volume.name))
        if used == wanted:
            return False
    return True
