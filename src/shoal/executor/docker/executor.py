"""The docker executor: tasks as containers on a local Docker Engine.

Each executor instance has an id, kept in its state directory and put on every container it creates,
so adopt() and containers() only ever see this daemon's tasks even when several shoald share one
dockerd (as cluster tests do)."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

from shoal.api.defaults import NANOS
from shoal.base.ids import new_id
from shoal.executor.base import (
    AdoptedTask,
    Capabilities,
    ContainerInfo,
    ContainerStatus,
    ExecInfo,
    LogLine,
    NodeDescription,
    Plugin,
    PortBinding,
    ResourceSample,
    TaskRuntime,
)
from shoal.executor.docker import labels
from shoal.executor.docker.address import DEFAULT_SOCKET
from shoal.executor.docker.controller import DockerController
from shoal.executor.docker.engine import (
    EngineClient,
    EngineConflict,
    EngineNotFound,
    Params,
)
from shoal.executor.docker.execsession import DockerExecSession
from shoal.executor.docker.hijack import open_hijacked
from shoal.executor.docker.logstream import stream_logs
from shoal.executor.docker.probe import capabilities_from_info, engine_info_blocking
from shoal.executor.docker.stats import sample_from_stats
from shoal.executor.docker.status import exec_info_from_inspect, info_from_list, status_from_inspect
from shoal.executor.errors import ContainerNotFound, ContainerNotRunning, ExecNotFound

INSTANCE_FILE = "docker-executor-instance"
DEFAULT_NETWORK = "bridge"


def load_instance_id(state_dir: Path) -> str:
    """This executor's id, made once per state directory and kept across restarts."""
    path = state_dir / INSTANCE_FILE
    try:
        existing = path.read_text().strip()
    except FileNotFoundError:
        existing = ""
    if existing:
        return existing
    state_dir.mkdir(parents=True, exist_ok=True)
    instance_id = new_id()
    temporary = path.with_suffix(".tmp")
    temporary.write_text(instance_id + "\n")
    temporary.replace(path)
    return instance_id


def node_description(info: dict[str, Any]) -> NodeDescription:
    plugins = tuple(
        Plugin(type=kind, name=str(name))
        for kind in ("Log", "Network", "Volume")
        for name in sorted((info.get("Plugins") or {}).get(kind) or ())
    )
    engine_labels = dict(label.split("=", 1) if "=" in label else (label, "") for label in info.get("Labels") or ())
    return NodeDescription(
        hostname=str(info.get("Name", "")),
        os=str(info.get("OSType", "linux")),
        architecture=str(info.get("Architecture", "")),
        nano_cpus=int(info.get("NCPU", 0)) * NANOS,
        memory_bytes=int(info.get("MemTotal", 0)),
        engine_version=str(info.get("ServerVersion", "")),
        engine_labels=engine_labels,
        plugins=plugins,
    )


class DockerExecutor:
    def __init__(
        self,
        *,
        state_dir: Path | str,
        socket_path: str = DEFAULT_SOCKET,
        instance_id: str | None = None,
        network: str = DEFAULT_NETWORK,
    ) -> None:
        """`socket_path`: the engine's unix socket, or any `-H` form (`unix:///path`, `tcp://host:port`).
        `network`: the engine network task containers join (their address is their IP on it)."""
        self.socket_path = socket_path
        self.instance_id = instance_id or load_instance_id(Path(state_dir))
        self.network = network
        self._engine = EngineClient(socket_path)
        self._capabilities: Capabilities | None = None

    @property
    def name(self) -> str:
        return "docker"

    @property
    def capabilities(self) -> Capabilities:
        if self._capabilities is None:
            self._capabilities = capabilities_from_info(engine_info_blocking(self.socket_path), network=self.network)
        return self._capabilities

    async def describe(self) -> NodeDescription:
        info = await self._engine.call("GET", "/info")
        self._capabilities = capabilities_from_info(info, network=self.network)
        return node_description(info)

    def controller(self, runtime: TaskRuntime) -> DockerController:
        return DockerController(self._engine, runtime, instance_id=self.instance_id, network=self.network)

    def _own_filter(self, *extra_labels: str) -> dict[str, list[str]]:
        return {"label": [f"{labels.EXECUTOR_INSTANCE}={self.instance_id}", *extra_labels]}

    async def _list(self, *, all: bool, extra_labels: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        params: Params = {"all": all, "filters": self._own_filter(*extra_labels)}
        listed: list[dict[str, Any]] = await self._engine.call("GET", "/containers/json", params=params)
        return listed

    async def adopt(self) -> list[AdoptedTask]:
        """This instance's task containers, inspected in parallel (a node may hold hundreds)."""
        found = [
            (entry["Id"], runtime)
            for entry in await self._list(all=True, extra_labels=(labels.TASK_ID,))
            # A container without a readable runtime cannot be rebuilt into a task: left alone.
            if (runtime := labels.runtime_from_labels(entry.get("Labels") or {})) is not None
        ]
        statuses = await asyncio.gather(*(self._status_or_none(container_id) for container_id, _ in found))
        return [
            AdoptedTask(runtime=runtime, status=status)
            for (_, runtime), status in zip(found, statuses, strict=True)
            if status is not None
        ]

    async def _status_or_none(self, container_id: str) -> ContainerStatus | None:
        try:
            return status_from_inspect(await self._engine.call("GET", f"/containers/{container_id}/json"))
        except EngineNotFound:
            return None  # removed while we looked

    async def containers(self, *, all: bool = False) -> list[ContainerInfo]:
        return [dataclasses.replace(info_from_list(entry), bindings=_bound_ports(entry.get("Ports")))
                for entry in await self._list(all=all)]

    async def logs(
        self,
        container_id: str,
        *,
        follow: bool = False,
        tail: int | None = None,
        since: datetime | None = None,
    ) -> AsyncIterator[LogLine]:
        async for line in stream_logs(self._engine, container_id, follow=follow, tail=tail, since=since):
            yield line

    async def exec_create(
        self,
        container_id: str,
        cmd: list[str],
        *,
        env: list[str] | None = None,
        user: str | None = None,
        workdir: str | None = None,
        tty: bool = False,
        stdin: bool = False,
    ) -> str:
        body: dict[str, Any] = {
            "Cmd": cmd,
            "AttachStdin": stdin,
            "AttachStdout": True,
            "AttachStderr": True,
            "Tty": tty,
            "Env": env or [],
        }
        if user:
            body["User"] = user
        if workdir:
            body["WorkingDir"] = workdir
        try:
            created = await self._engine.call("POST", f"/containers/{container_id}/exec", body=body)
        except EngineNotFound:
            raise ContainerNotFound(container_id) from None
        except EngineConflict:
            raise ContainerNotRunning(container_id) from None
        return str(created["Id"])

    async def _exec_inspect_raw(self, exec_id: str) -> dict[str, Any]:
        try:
            inspect: dict[str, Any] = await self._engine.call("GET", f"/exec/{exec_id}/json")
        except EngineNotFound:
            raise ExecNotFound(exec_id) from None
        return inspect

    async def exec_start(self, exec_id: str) -> DockerExecSession:
        inspect = await self._exec_inspect_raw(exec_id)
        tty = bool((inspect.get("ProcessConfig") or {}).get("tty"))
        path = await self._engine.versioned(f"/exec/{exec_id}/start")
        try:
            stream = await open_hijacked(self._engine.address, path, {"Detach": False, "Tty": tty})
        except EngineNotFound:
            raise ExecNotFound(exec_id) from None
        except EngineConflict:
            raise ContainerNotRunning(str(inspect.get("ContainerID", ""))) from None
        return DockerExecSession(self._engine, exec_id, stream, tty=tty)

    async def exec_inspect(self, exec_id: str) -> ExecInfo:
        return exec_info_from_inspect(await self._exec_inspect_raw(exec_id))

    # -- calls on one container (ContainerCalls): passed on to the engine, which answers in its words

    async def _inspect(self, container_id: str) -> dict[str, Any]:
        try:
            found: dict[str, Any] = await self._engine.call("GET", f"/containers/{container_id}/json")
        except EngineNotFound:
            raise ContainerNotFound(container_id) from None
        return found

    async def kill(self, container_id: str, sig: signal.Signals) -> None:
        await self._engine.call("POST", f"/containers/{container_id}/kill", params={"signal": int(sig)})

    async def stop(self, container_id: str, grace: float | None) -> bool:
        if not status_from_inspect(await self._inspect(container_id)).running:
            return False
        params: Params = {"t": int(grace)} if grace is not None else {}
        await self._engine.call("POST", f"/containers/{container_id}/stop", params=params, timeout_s=None)
        return True

    async def restart(self, container_id: str, grace: float | None) -> None:
        params: Params = {"t": int(grace)} if grace is not None else {}
        await self._engine.call("POST", f"/containers/{container_id}/restart", params=params, timeout_s=None)

    async def remove_container(self, container_id: str, force: bool) -> str:
        full = str((await self._inspect(container_id))["Id"])
        await self._engine.call("DELETE", f"/containers/{full}", params={"force": force})
        return full

    async def pause(self, container_id: str) -> None:
        await self._engine.call("POST", f"/containers/{container_id}/pause")

    async def unpause(self, container_id: str) -> None:
        await self._engine.call("POST", f"/containers/{container_id}/unpause")

    async def paused(self, container_id: str) -> bool:
        return bool(((await self._inspect(container_id)).get("State") or {}).get("Paused"))

    async def wait_exit(self, container_id: str) -> ContainerStatus:
        await self._engine.call("POST", f"/containers/{container_id}/wait", params={"condition": "not-running"},
                                timeout_s=None)
        return status_from_inspect(await self._inspect(container_id))

    async def sample(self, container_id: str) -> ResourceSample:
        stats = await self._engine.call("GET", f"/containers/{container_id}/stats",
                                        params={"stream": False, "one-shot": True})
        return sample_from_stats(stats)

    async def pids(self, container_id: str) -> list[int]:
        top = await self._engine.call("GET", f"/containers/{container_id}/top", params={"ps_args": "-eo pid"})
        return sorted(int(row[0]) for row in top.get("Processes") or [] if row and str(row[0]).isdigit())

    async def filesystem_root(self, container_id: str) -> str:
        """Through the container's pid while it runs; else the engine's merged overlay directory."""
        inspect = await self._inspect(container_id)
        pid = int((inspect.get("State") or {}).get("Pid") or 0)
        if pid:
            return f"/proc/{pid}/root"
        merged = ((inspect.get("GraphDriver") or {}).get("Data") or {}).get("MergedDir")
        if not merged:
            raise ContainerNotRunning(str(inspect["Id"]))
        return str(merged)

    # -- volumes: the engine's own (its containers mount them)

    async def volume_call(self, method: str, path: str, *, params: Params | None = None,
                          body: Any = None) -> Any:
        """A /volumes call passed on to the engine as is; its answer, or its error in its words."""
        return await self._engine.call(method, path, params=params, body=body)

    async def close(self) -> None:
        await self._engine.close()


def _bound_ports(entries: list[dict[str, Any]] | None) -> tuple[PortBinding, ...]:
    """The host ports the engine bound for a container (its list entry's Ports with a PublicPort), on
    each address it gives (0.0.0.0 and :: where the engine binds IPv6 too)."""
    return tuple(
        PortBinding(int(e["PrivatePort"]), str(e.get("Type") or "tcp"), int(e["PublicPort"]),
                    str(e.get("IP") or "0.0.0.0"))
        for e in entries or ()
        if e.get("PublicPort")
    )
