"""One task's container through the Engine API: create, start, wait, stop, remove, logs.

The container is found by its name (`<service>.<slot>.<task id>`), so a controller made for an
adopted task re-attaches to the running container without restarting it."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from shoal.executor.base import ContainerState, ContainerStatus, LogLine, TaskRuntime
from shoal.executor.docker import labels
from shoal.executor.docker.containerspec import create_body, stop_timeout_seconds
from shoal.executor.docker.engine import (
    CALL_TIMEOUT_S,
    EngineClient,
    EngineConflict,
    EngineNotFound,
)
from shoal.executor.docker.health import HEALTHY, UNHEALTHY, UnhealthyContainer, has_health_check, next_verdict
from shoal.executor.docker.images import resolve_local_image
from shoal.executor.docker.logstream import stream_logs
from shoal.executor.docker.status import status_from_inspect
from shoal.executor.errors import ContainerNotFound, InvalidTaskSpec
from shoal.executor.port_shapes import bindings_from_network_ports
from shoal.executor.taskoptions import task_options


class DockerController:
    def __init__(self, engine: EngineClient, runtime: TaskRuntime, *, instance_id: str, network: str) -> None:
        self._engine = engine
        self._runtime = runtime
        self._instance_id = instance_id
        self._network = network
        self._container_id: str | None = None

    @property
    def runtime(self) -> TaskRuntime:
        return self._runtime

    @property
    def _ref(self) -> str:
        """The container id once known; its name before (the engine accepts both)."""
        return self._container_id or self._runtime.container_name

    async def _inspect_raw(self) -> dict[str, Any] | None:
        try:
            inspect: dict[str, Any] = await self._engine.call("GET", f"/containers/{self._ref}/json")
        except EngineNotFound:
            return None
        self._check_owner(inspect)
        self._container_id = str(inspect["Id"])
        return inspect

    def _check_owner(self, inspect: dict[str, Any]) -> None:
        found = (inspect.get("Config") or {}).get("Labels") or {}
        if found.get(labels.TASK_ID) != self._runtime.task_id:
            raise InvalidTaskSpec(
                f"container name {self._runtime.container_name} is taken by a container "
                f"that is not task {self._runtime.task_id}"
            )

    async def prepare(self) -> None:
        if await self._inspect_raw() is not None:
            return  # created earlier (a retried prepare, or an adopted task)
        # Swarm's checks (mounts, sysctls, ...): dockerd skips some of them
        if task_options(self._runtime).credential_spec:
            raise InvalidTaskSpec("docker executor cannot apply --credential-spec: it is for Windows containers")
        image = await resolve_local_image(self._engine, self._runtime.image)
        body = create_body(self._runtime, image=image, instance_id=self._instance_id, network=self._network)
        try:
            created = await self._engine.call(
                "POST", "/containers/create", params={"name": self._runtime.container_name}, body=body
            )
        except EngineConflict:
            # Another prepare of the same task won the race for the name; use its container.
            if await self._inspect_raw() is None:
                raise
            return
        except EngineNotFound as error:
            # The image vanished between the check and the create.
            raise InvalidTaskSpec(str(error)) from error
        self._container_id = str(created["Id"])

    async def _require(self) -> dict[str, Any]:
        inspect = await self._inspect_raw()
        if inspect is None:
            raise ContainerNotFound(self._runtime.container_name)
        return inspect

    async def start(self) -> None:
        inspect = await self._require()
        # As Swarm: a container that ever ran is never started again (a restart is a new task).
        if (inspect.get("State") or {}).get("Status") != "created":
            return
        await self._engine.call("POST", f"/containers/{self._ref}/start")
        if has_health_check(inspect):
            # As Swarm: a task with a health check is running only once it is healthy.
            verdict = await next_verdict(self._engine, str(inspect["Id"]), want=frozenset({HEALTHY, UNHEALTHY}))
            if verdict == UNHEALTHY:
                await self.shutdown()
                raise UnhealthyContainer((await self.inspect()).exit_code)

    async def inspect(self) -> ContainerStatus:
        """With the host ports the engine bound (it picks one for a host-mode port published as 0)."""
        inspect = await self._require()
        bound = bindings_from_network_ports((inspect.get("NetworkSettings") or {}).get("Ports"))
        return dataclasses.replace(status_from_inspect(inspect), host_ports=bound)

    async def wait(self) -> ContainerStatus:
        """The final status. A container that turns unhealthy is stopped; its status then carries
        Swarm's `unhealthy container` error."""
        inspect = await self._require()
        status = status_from_inspect(inspect)
        if status.state is ContainerState.EXITED:
            return status
        condition = "next-exit" if status.state is ContainerState.CREATED else "not-running"
        exited = asyncio.ensure_future(self._wait_for_exit(condition))
        if not has_health_check(inspect):
            await exited
            return await self.inspect()
        unhealthy = asyncio.ensure_future(next_verdict(self._engine, status.container_id, want=frozenset({UNHEALTHY})))
        try:
            await asyncio.wait({exited, unhealthy}, return_when=asyncio.FIRST_COMPLETED)
            if exited.done():
                exited.result()
                return await self.inspect()
            if unhealthy.result() != UNHEALTHY:
                await exited
                return await self.inspect()
            await self.shutdown()
            await exited
            return dataclasses.replace(await self.inspect(), error=str(UnhealthyContainer()))
        finally:
            for pending in (exited, unhealthy):
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await pending

    async def _wait_for_exit(self, condition: str) -> None:
        try:
            await self._engine.call(
                "POST", f"/containers/{self._ref}/wait", params={"condition": condition}, timeout_s=None
            )
        except EngineNotFound:
            raise ContainerNotFound(self._runtime.container_name) from None

    async def shutdown(self, grace: float | None = None) -> None:
        seconds = stop_timeout_seconds(self._runtime.stop_grace_period if grace is None else grace)
        try:
            # The engine sends the container's StopSignal, waits, then kills; it answers once exited.
            await self._engine.call(
                "POST",
                f"/containers/{self._ref}/stop",
                params={"t": seconds},
                timeout_s=seconds + CALL_TIMEOUT_S,
            )
        except EngineNotFound:
            return  # never created or already removed: nothing runs

    async def terminate(self) -> None:
        try:
            await self._engine.call("POST", f"/containers/{self._ref}/kill", params={"signal": "SIGKILL"})
        except EngineNotFound:
            return
        except EngineConflict:
            pass  # not running any more
        try:
            await self._engine.call(
                "POST", f"/containers/{self._ref}/wait", params={"condition": "not-running"}, timeout_s=None
            )
        except EngineNotFound:
            return

    async def remove(self) -> None:
        try:
            await self._engine.call("DELETE", f"/containers/{self._ref}", params={"force": True, "v": True})
        except EngineNotFound:
            pass
        except EngineConflict as error:
            if "already in progress" not in error.message:
                raise
        self._container_id = None

    async def logs(
        self, *, follow: bool = False, tail: int | None = None, since: datetime | None = None
    ) -> AsyncIterator[LogLine]:
        async for line in stream_logs(self._engine, self._ref, follow=follow, tail=tail, since=since):
            yield line
