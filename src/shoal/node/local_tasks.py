"""This node's task containers as dockerd shows them: `docker ps`, container inspect, exec and logs,
answered by the executor."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from shoal.agent.health import HealthBook
from shoal.api import errors
from shoal.api.objects import Obj, dig
from shoal.engineapi.backend import ContainerListQuery, LogMessage, LogOptions
from shoal.executor.base import (
    ContainerCalls,
    ContainerInfo,
    ContainerState,
    ExecSession,
    Executor,
    LogLine,
    ResourceSample,
    parse_signal,
)
from shoal.executor.port_shapes import exposed_ports, network_ports, port_key, requested_bindings
from shoal.node.container_archive import path_stat, read_archive, write_archive
from shoal.node.container_port_filters import port_filters
from shoal.node.container_stats import run_ps, stats_json, stats_stream, top_json

Json = dict[str, Any]
CONTAINER_FILTERS = ("id", "name", "label", "status", "publish", "expose")


class ExecAdapter:
    """An executor's ExecSession as the Engine API's ExecStream."""

    def __init__(self, session: ExecSession) -> None:
        self._session = session

    async def output(self) -> AsyncIterator[tuple[int, bytes]]:
        while (chunk := await self._session.read()) is not None:
            yield chunk
        # The output pipes can reach EOF before the process is reaped. The CLI reads the exit code
        # (exec inspect) as soon as the stream ends, and a code not yet known reads as 0: end the
        # stream only once the exit code is recorded, as dockerd does.
        await self._session.wait()

    async def write_stdin(self, data: bytes) -> None:
        await self._session.write(data)

    async def close_stdin(self) -> None:
        await self._session.close_stdin()


def _matches(info: ContainerInfo, filters: dict[str, list[str]]) -> bool:
    """Whether the container passes the filters (their names were checked by LocalTasks.list)."""
    names = [n.lstrip("/") for n in info.names]
    if "id" in filters and not any(info.id.startswith(v) for v in filters["id"]):
        return False
    if "name" in filters and not any(v.lstrip("/") in name for v in filters["name"] for name in names):
        return False
    if "status" in filters and info.state.value not in filters["status"]:
        return False
    for item in filters.get("label", []):
        key, sep, value = item.partition("=")
        if key not in info.labels or (sep and info.labels[key] != value):
            return False
    return True


_HEALTH_SUFFIX = {"starting": " (health: starting)", "healthy": " (healthy)", "unhealthy": " (unhealthy)"}


class LocalTasks:
    def __init__(self, executor: Executor, health: HealthBook | None = None) -> None:
        self._executor = executor
        self._health = health  # the agent's verdicts; without one, what the executor reports (dockerd's)

    def _health_of(self, info: ContainerInfo) -> Json | None:
        """State.Health of a container with a health check: the agent's monitor, else the executor's."""
        monitor = self._health.get(info.id) if self._health is not None else None
        if monitor is not None:
            return monitor.to_docker()
        word = info.detail.health if info.detail is not None else None
        return {"Status": word, "FailingStreak": 0, "Log": []} if word else None

    async def list(self, query: ContainerListQuery) -> list[Json]:
        for key in query.filters:  # refused up front, as dockerd does, even with no container to match
            if key not in CONTAINER_FILTERS:
                raise errors.InvalidArgument(f"Invalid filter '{key}'")
        ports = port_filters(query.filters)
        infos = await self._executor.containers(all=query.all)
        found = [await self._shown(info) for info in infos if _matches(info, query.filters)]
        found = [row for row in found if ports.keeps(row["Ports"])]
        if query.limit is not None and query.limit > 0:
            found = found[: query.limit]
        return found

    async def _paused(self, container_id: str) -> bool:
        """Whether a listed container is paused; one removed since it was listed (its task went) is not."""
        if not isinstance(self._executor, ContainerCalls):
            return False
        try:
            return await self._executor.paused(container_id)
        except errors.NotFound:
            return False

    async def _shown(self, info: ContainerInfo) -> Json:
        """A `docker ps` row; a paused container says so, as dockerd shows it."""
        row = info.to_docker()
        if info.state is not ContainerState.RUNNING:
            row["Ports"] = []  # dockerd releases a container's ports when it stops and lists none
        if info.state is ContainerState.RUNNING and await self._paused(info.id):
            row["State"], row["Status"] = "paused", f"{row['Status']} (Paused)"
        elif info.state is ContainerState.RUNNING and (health := self._health_of(info)) is not None:
            row["Status"] += _HEALTH_SUFFIX.get(str(health["Status"]), "")  # "Up 5 seconds (healthy)"
        return row

    async def find(self, ref: str) -> ContainerInfo:
        infos = await self._executor.containers(all=True)
        for info in infos:
            if info.id == ref or ref in (n.lstrip("/") for n in info.names):
                return info
        prefixed = [info for info in infos if info.id.startswith(ref)]
        if len(prefixed) == 1:
            return prefixed[0]
        if len(prefixed) > 1:
            raise errors.InvalidArgument(f"multiple IDs found with provided prefix: {ref}")
        raise errors.NotFound(f"No such container: {ref}")

    async def inspect(self, ref: str) -> Json:
        info = await self.find(ref)
        detail = info.detail
        running = info.state is ContainerState.RUNNING
        paused = running and await self._paused(info.id)
        # an executor that gives no argv leaves only the display form, split on spaces
        argv = list(info.argv) or info.command.split(" ")
        created = detail.created_at if detail is not None and detail.created_at else None
        shown: Json = {
            "Id": info.id,
            "Created": _rfc3339(created or datetime.fromtimestamp(info.created, UTC)),
            "Path": argv[0] if argv else "",
            "Args": argv[1:],
            "State": {
                "Status": "paused" if paused else info.state.value, "Running": running, "Paused": paused,
                "Restarting": False,
                "OOMKilled": False, "Dead": False,
                "Pid": (detail.pid or 0) if detail is not None and running else 0,
                "ExitCode": (detail.exit_code or 0) if detail is not None else 0,
                "Error": detail.error if detail is not None else "",
                "StartedAt": _rfc3339(detail.started_at if detail is not None else None),
                "FinishedAt": _rfc3339(detail.finished_at if detail is not None else None),
                **({"Health": health} if (health := self._health_of(info)) is not None else {}),
            },
            "Image": info.image,
            "Name": info.names[0] if info.names else "",
            "RestartCount": 0,
            "Driver": self._executor.name,
            "Config": {
                "Hostname": (detail.hostname if detail is not None else None) or info.id[:12],
                "Image": info.image, "Labels": dict(info.labels), "Cmd": argv,
            },
            "HostConfig": {"RestartPolicy": {"Name": "no", "MaximumRetryCount": 0}},
            "NetworkSettings": {"Networks": {}, "Ports": network_ports(info.ports, info.bindings) if running else {}},
            "Mounts": [],
        }
        _add_requested_ports(shown, info)
        extra = info.inspect_extra
        for key in ("Config", "HostConfig"):
            shown[key] = {**shown[key], **(extra.get(key) or {})}
        if "Mounts" in extra:
            shown["Mounts"] = list(extra["Mounts"])
        return shown

    # -- docker kill|stop|rm|pause|unpause|wait|stats|top|cp on a task's container

    def _calls(self) -> ContainerCalls:
        if not isinstance(self._executor, ContainerCalls):
            raise errors.NotImplementedYet(f"the {self._executor.name} executor does not offer this container call")
        return self._executor

    async def kill(self, ref: str, signal_name: str) -> tuple[ContainerInfo, signal.Signals]:
        try:
            sig = parse_signal(signal_name) if signal_name else signal.SIGKILL
        except ValueError:
            raise errors.InvalidArgument(f"Invalid signal: {signal_name}") from None
        info = await self.find(ref)
        await self._calls().kill(info.id, sig)
        return info, sig

    async def stop(self, ref: str, timeout: int | None) -> tuple[ContainerInfo, bool]:
        """False when it was not running (dockerd answers 304)."""
        info = await self.find(ref)
        grace = float(timeout) if timeout is not None and timeout >= 0 else None
        return info, await self._calls().stop(info.id, grace)

    async def restart(self, ref: str, timeout: int | None) -> ContainerInfo:
        info = await self.find(ref)
        await self._calls().restart(info.id, float(timeout) if timeout is not None and timeout >= 0 else None)
        return info

    async def remove(self, ref: str, force: bool) -> ContainerInfo:
        info = await self.find(ref)
        await self._calls().remove_container(info.id, force)
        return info

    async def set_paused(self, ref: str, paused: bool) -> ContainerInfo:
        info = await self.find(ref)
        calls = self._calls()
        await (calls.pause(info.id) if paused else calls.unpause(info.id))
        return info

    async def wait(self, ref: str, condition: str) -> Json:
        if condition not in ("", "not-running", "next-exit", "removed"):
            raise errors.InvalidArgument(f"invalid condition: {condition!r}")
        info = await self.find(ref)
        status = await self._calls().wait_exit(info.id)
        return {"StatusCode": status.exit_code or 0, "Error": None}

    async def stats(self, ref: str, stream: bool, one_shot: bool) -> AsyncIterator[Json]:
        info = await self.find(ref)
        calls = self._calls()
        host_memory = (await self._executor.describe()).memory_bytes
        name = info.names[0] if info.names else ""

        async def read() -> ResourceSample:
            return await calls.sample(info.id)

        async def still_running() -> bool:
            try:
                return (await self.find(info.id)).state is ContainerState.RUNNING
            except errors.NotFound:
                return False

        return stats_stream(read, lambda s, prev: stats_json(name, info.id, s, prev, host_memory),
                            stream=stream and info.state is ContainerState.RUNNING, one_shot=one_shot,
                            still_there=still_running)

    async def top(self, ref: str, ps_args: str) -> Json:
        info = await self.find(ref)
        if info.state is not ContainerState.RUNNING:
            raise errors.Conflict(f"Container {info.id} is not running")
        pids = await self._calls().pids(info.id)
        return top_json(await run_ps(ps_args or "-ef"), pids, ps_args or "-ef")

    async def archive_stat(self, ref: str, path: str) -> Json:
        info = await self.find(ref)
        return path_stat(await self._calls().filesystem_root(info.id), _checked_path(path), ref)

    async def archive_get(self, ref: str, path: str) -> tuple[Json, AsyncIterator[bytes]]:
        info = await self.find(ref)
        return await read_archive(await self._calls().filesystem_root(info.id), _checked_path(path), ref)

    async def archive_put(self, ref: str, path: str, body: AsyncIterator[bytes], no_overwrite_dir_non_dir: bool,
                          ) -> None:
        info = await self.find(ref)
        await write_archive(await self._calls().filesystem_root(info.id), _checked_path(path), ref, body,
                            no_overwrite_dir_non_dir)

    async def exec_create(self, ref: str, config: Json) -> str:
        info = await self.find(ref)
        if info.state.value != "running":
            raise errors.Conflict(f"Container {info.id} is not running")
        cmd = config.get("Cmd")
        if not cmd:
            raise errors.InvalidArgument("No exec command specified")
        return await self._executor.exec_create(
            info.id, list(cmd), env=config.get("Env") or None, user=config.get("User") or None,
            workdir=config.get("WorkingDir") or None, tty=bool(config.get("Tty")),
            stdin=bool(config.get("AttachStdin")),
        )

    async def exec_start(self, exec_id: str) -> ExecAdapter:
        return ExecAdapter(await self._executor.exec_start(exec_id))

    async def exec_inspect(self, exec_id: str) -> Json:
        info = await self._executor.exec_inspect(exec_id)
        return {
            "ID": info.id, "Running": info.running, "ExitCode": info.exit_code, "ContainerID": info.container_id,
            "Pid": info.pid or 0, "OpenStdin": False, "OpenStdout": True, "OpenStderr": True,
            "ProcessConfig": {"entrypoint": info.argv[0] if info.argv else "", "arguments": list(info.argv[1:]),
                              "tty": info.tty, "privileged": False, "user": info.user},
            "CanRemove": False, "DetachKeys": "",
        }


def _add_requested_ports(shown: Json, info: ContainerInfo) -> None:
    """Config.ExposedPorts and HostConfig.PortBindings: what the executor recorded for the task, else
    what the container has bound (an engine's listing tells no more)."""
    extra = info.inspect_extra
    asked = (extra.get("HostConfig") or {}).get("PortBindings")
    if asked is None:
        asked = requested_bindings(info.bindings)
    shown["HostConfig"]["PortBindings"] = asked
    keys = [*asked, *(port_key(p.target, p.protocol) for p in info.ports), *(b.key for b in info.bindings)]
    exposed = (extra.get("Config") or {}).get("ExposedPorts") or exposed_ports(keys)
    if exposed:
        shown["Config"]["ExposedPorts"] = exposed


def _checked_path(path: str) -> str:
    if not path:
        raise errors.InvalidArgument("Path cannot be empty")
    return path


def _rfc3339(moment: datetime | None) -> str:
    """Docker's time format in inspect; Go's zero time when there is none."""
    if moment is None:
        return "0001-01-01T00:00:00Z"
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def task_attrs(task: Obj) -> dict[str, str]:
    return {
        "com.docker.swarm.node.id": task.get("NodeID", ""),
        "com.docker.swarm.service.id": task.get("ServiceID", ""),
        "com.docker.swarm.task.id": task["ID"],
    }


async def task_logs(executor: Executor, tasks: list[Obj], options: LogOptions) -> AsyncIterator[LogMessage]:
    """Lines of every task's container, in time order; with follow, merged as they come."""
    sources = [(t, dig(t, "Status", "ContainerStatus", "ContainerID")) for t in tasks]
    sources = [(t, cid) for t, cid in sources if cid]
    wanted = {1} if not options.stderr else ({2} if not options.stdout else {1, 2})

    def keep(line: LogLine) -> bool:
        if line.stream not in wanted:
            return False
        return options.until is None or line.timestamp <= options.until

    if not options.follow:
        lines: list[LogMessage] = []
        for task, container_id in sources:
            with contextlib.suppress(errors.NotFound):
                async for line in executor.logs(container_id, tail=options.tail, since=options.since):
                    if keep(line):
                        lines.append(LogMessage(line.stream, line.timestamp, line.data, task_attrs(task)))
        for message in sorted(lines, key=lambda m: m.timestamp):
            yield message
        return
    queue: asyncio.Queue[LogMessage | None] = asyncio.Queue()

    async def pump(task: Obj, container_id: str, tail: int | None) -> None:
        try:
            async for line in executor.logs(container_id, follow=True, tail=tail, since=options.since):
                if keep(line):
                    await queue.put(LogMessage(line.stream, line.timestamp, line.data, task_attrs(task)))
        except errors.NotFound:
            pass

    pumps = [asyncio.create_task(pump(t, cid, options.tail)) for t, cid in sources]
    try:
        while True:
            item = await queue.get()
            if item is not None:
                yield item
    finally:
        for job in pumps:
            job.cancel()
