"""ProcessExecutor: runs each task's command as host processes, held by the shim.

With root on Linux (and `ip`, `nsenter` installed) each task gets its own pid, mount, UTS, IPC and
network namespaces and an address on the node bridge; without, tasks are plain host processes sharing
the host's network (documented in capabilities()). State lives under `state_dir`:
    tasks/<task id>/   spec.json, supervisor, pid, exit, error, log   (taskdir.py)
    net/               addresses.json                                 (network/tasknet.py)
    bin/               the compiled shim                              (shimbuild.py)
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import signal
import socket
import sys
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shoal.api import version as api_version
from shoal.api.defaults import NANOS
from shoal.base.clock import Clock, SystemClock
from shoal.executor.base import (
    CAP_ADOPT,
    CAP_EXEC,
    CAP_HOSTNAME,
    CAP_ISOLATION,
    CAP_MEMORY_LIMIT,
    CAP_OOM_KILLED,
    CAP_TASK_ADDRESS,
    CAP_USER,
    AdoptedTask,
    Capabilities,
    ContainerInfo,
    ContainerState,
    ContainerStatus,
    ExecInfo,
    LogLine,
    NodeDescription,
    Plugin,
    ResourceSample,
    TaskRuntime,
)
from shoal.executor.errors import ContainerNotFound, ContainerNotRunning
from shoal.executor.port_shapes import requested_bindings
from shoal.executor.process.cgroups import Cgroups
from shoal.executor.process.context import ProcessContext
from shoal.executor.process.controller import ProcessController, status_of, task_logs
from shoal.executor.process.execs import ExecRegistry, ProcessExecSession, TtyExecSession
from shoal.executor.process.launch import exec_argv
from shoal.executor.process.status import env_dict, inspect_extra, ps_command, status_text
from shoal.executor.process.taskdir import TaskDir, TaskRecord
from shoal.executor.process.users import resolve_user, with_groups
from shoal.network.tasknet import TaskNetConfig, remove_bridge

if TYPE_CHECKING:
    from shoal.executor.oci.volumes import LocalVolumes

ENGINE_VERSION = api_version.ENGINE_VERSION  # what `docker version` and `docker info` say
PLUGINS = (
    Plugin("Log", "json-file"),
    Plugin("Network", "bridge"),
    Plugin("Network", "host"),
    Plugin("Network", "null"),
    Plugin("Network", "overlay"),
    Plugin("Volume", "local"),
)


def isolation_unavailable_reason() -> str | None:
    """Why tasks cannot get namespaces here, or None if they can."""
    if not sys.platform.startswith("linux"):
        return "namespaces need Linux"
    if os.geteuid() != 0:
        return "namespaces and the task bridge need root"
    missing = [tool for tool in ("ip", "nsenter", "iptables") if shutil.which(tool) is None]
    if missing:
        return f"missing {', '.join(missing)} (apt-get install iproute2 util-linux iptables)"
    return None


class ProcessExecutor:
    def __init__(
        self,
        state_dir: Path,
        *,
        isolate: bool | None = None,
        network: TaskNetConfig | None = None,
        scope: str | None = None,
        clock: Clock | None = None,
        engine_version: str = ENGINE_VERSION,
        shim_cache: Path | None = None,
        shim: Sequence[str] | None = None,
        dns_servers: Sequence[str] = (),
    ) -> None:
        """`isolate`: None picks namespaces when possible; True insists (ValueError if impossible).
        `network`: the bridge and subnet (default: derived from `scope`, itself defaulting to the
        state dir's path, so daemons with different data roots never share a bridge).
        `shim_cache`: where the compiled shim is kept (default <state_dir>/bin). `shim`: the shim's
        command line, instead of building shim.c (e.g. shimbuild.python_shim()). `dns_servers`:
        the nameservers isolated tasks get (an embedded DNS); default the host's, minus loopback."""
        state_dir = Path(state_dir).absolute()
        reason = isolation_unavailable_reason()
        if isolate and reason:
            raise ValueError(f"process executor cannot isolate tasks: {reason}")
        isolated = reason is None if isolate is None else isolate
        scope = scope or str(state_dir)
        if isolated and network is None:
            network = TaskNetConfig.for_scope(scope, state_dir / "net")
        scope_key = hashlib.sha256(scope.encode()).hexdigest()[:12]
        self._ctx = ProcessContext(
            state_dir=state_dir,
            isolate=isolated,
            network=network if isolated else None,
            cgroups=Cgroups.probe(scope_key),
            clock=clock or SystemClock(),
            daemon_path=os.environ.get("PATH"),
            shim_cache=Path(shim_cache) if shim_cache else state_dir / "bin",
            dns_servers=tuple(dns_servers),
            _shim=list(shim) if shim else None,
        )
        self._engine_version = engine_version
        self._isolation_reason = reason if not isolated else None
        if isolate is False and reason is None:
            self._isolation_reason = "turned off by configuration"
        self._execs = ExecRegistry()

    @property
    def name(self) -> str:
        return "process"

    @property
    def network(self) -> TaskNetConfig | None:
        return self._ctx.network

    @property
    def capabilities(self) -> Capabilities:
        supported = {CAP_EXEC, CAP_ADOPT, CAP_USER, *self._ctx.cgroups.capabilities}
        if CAP_MEMORY_LIMIT in supported:
            supported.add(CAP_OOM_KILLED)
        missing = dict(self._ctx.cgroups.missing)
        if self._ctx.isolate:
            supported |= {CAP_ISOLATION, CAP_TASK_ADDRESS, CAP_HOSTNAME}
        else:
            why = self._isolation_reason or "off"
            for cap in (CAP_ISOLATION, CAP_TASK_ADDRESS, CAP_HOSTNAME):
                missing[cap] = f"tasks run as plain host processes: {why}"
        if os.geteuid() != 0:
            supported.discard(CAP_USER)
            missing[CAP_USER] = "switching users needs root"
        return Capabilities(frozenset(supported), missing)

    async def describe(self) -> NodeDescription:
        return NodeDescription(
            hostname=socket.gethostname(),
            os=platform.system().lower(),
            architecture=platform.machine(),
            nano_cpus=(os.cpu_count() or 1) * NANOS,
            memory_bytes=_memory_total(),
            engine_version=self._engine_version,
            plugins=PLUGINS,
        )

    def controller(self, runtime: TaskRuntime) -> ProcessController:
        return ProcessController(self._ctx, runtime)

    async def adopt(self) -> list[AdoptedTask]:
        adopted = []
        for task_dir in self._ctx.task_dirs():
            record = task_dir.read_record()
            controller = self.controller(record.runtime)
            controller.settle_if_unsupervised()
            adopted.append(AdoptedTask(record.runtime, await controller.inspect()))
        return adopted

    async def containers(self, *, all: bool = False) -> list[ContainerInfo]:
        now = self._ctx.clock.now()
        rows = []
        for task_dir in self._ctx.task_dirs():
            if _removed(task_dir):
                continue
            record = task_dir.read_record()
            status = status_of(task_dir, record)
            if not all and status.state is not ContainerState.RUNNING:
                continue
            rt = record.runtime
            rows.append(
                ContainerInfo(
                    id=record.container_id,
                    names=(f"/{rt.container_name}",),
                    image=rt.image,
                    command=ps_command(record.argv),
                    created=int(record.created_at.timestamp()),
                    state=status.state,
                    status=status_text(
                        status.state,
                        exit_code=status.exit_code,
                        started_at=status.started_at,
                        finished_at=status.finished_at,
                        now=now,
                    ),
                    labels=dict(rt.labels),
                    # dockerd shows no port for an ingress one (the mesh's); a host-mode port is bound
                    # by the node's mesh, which reaches only tasks with an address of their own
                    bindings=rt.host_bindings if record.isolated and status.running else (),
                    argv=record.argv,
                    detail=status,
                    inspect_extra=_with_port_bindings(inspect_extra(record, self._ctx.state_dir / "volumes"), rt),
                )
            )
        rows.sort(key=lambda row: row.created, reverse=True)
        return rows

    def logs(
        self,
        container_id: str,
        *,
        follow: bool = False,
        tail: int | None = None,
        since: datetime | None = None,
    ) -> AsyncIterator[LogLine]:
        task_dir, _ = self._find(container_id)
        return task_logs(task_dir, follow=follow, tail=tail, since=since)

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
        task_dir, record = self._find(container_id)
        status = status_of(task_dir, record)
        if status.state is not ContainerState.RUNNING or status.pid is None:
            raise ContainerNotRunning(record.container_id)
        environment = env_dict(record.env) | env_dict(env or [])
        shim_cmd = exec_argv(
            await self._ctx.shim(),
            target_pid=status.pid,
            argv=cmd,
            isolated=record.isolated,
            identity=resolve_user(user) if user is not None else with_groups(
                resolve_user(record.runtime.user), record.options.groups
            ),
            workdir=workdir or record.runtime.workdir,
            cgroup_procs=[Path(g) / "cgroup.procs" for g in record.cgroups],
            tty=tty,
        )
        if tty:
            environment.setdefault("TERM", "xterm")
        return self._execs.create(record.container_id, cmd, shim_cmd, environment, stdin, tty, user or "")

    async def exec_start(self, exec_id: str) -> ProcessExecSession | TtyExecSession:
        return await self._execs.start(exec_id)

    async def exec_resize(self, exec_id: str, height: int, width: int) -> None:
        """The terminal size of a tty exec (POST /exec/{id}/resize); not part of the protocol."""
        self._execs.resize(exec_id, height, width)

    async def exec_inspect(self, exec_id: str) -> ExecInfo:
        return self._execs.info(exec_id)

    async def close(self) -> None:
        """Nothing to release: tasks and their supervisors live on without us."""

    async def purge(self) -> int:
        """Kill and remove every task of this state dir, then the node network (for `swarm leave`
        and test teardown: tasks otherwise outlive the daemon by design). Returns how many."""
        tasks = [task_dir.read_record().runtime for task_dir in self._ctx.task_dirs()]
        for runtime in tasks:
            await self.controller(runtime).remove()
        await self.remove_network()
        return len(tasks)

    async def remove_network(self) -> bool:
        """Delete the node bridge and its firewall rules if no task is left (for `swarm leave` and
        test teardown; a daemon that merely stops keeps them for its tasks). True if removed."""
        if self._ctx.network is None or self._ctx.task_dirs():
            return False
        await remove_bridge(self._ctx.network)
        self._ctx.forget_network()
        return True

    @property
    def volumes(self) -> LocalVolumes:
        """This node's named volumes (volumes/<name>/_data under the state dir, as the shim mounts them)."""
        from shoal.executor.oci.volumes import LocalVolumes  # the oci package imports this module

        return LocalVolumes(self._ctx.state_dir / "volumes")

    def volume_users(self, name: str) -> list[str]:
        """The containers (not removed) whose mounts name the volume: `docker volume rm` waits for them."""
        users = []
        for task_dir in self._ctx.task_dirs():
            if _removed(task_dir):
                continue
            record = task_dir.read_record()
            if any(m.type == "volume" and m.source == name for m in record.options.mounts):
                users.append(record.container_id)
        return users

    # -- calls on one container (ContainerCalls: docker kill|stop|rm|pause|stats|top|cp|wait)

    def _container(self, reference: str) -> ProcessController:
        _, record = self._find(reference)
        return self.controller(record.runtime)

    async def kill(self, container_id: str, sig: signal.Signals) -> None:
        await self._container(container_id).kill(sig)

    async def stop(self, container_id: str, grace: float | None) -> bool:
        controller = self._container(container_id)
        if not (await controller.inspect()).running:
            return False
        await controller.shutdown(grace)
        return True

    async def restart(self, container_id: str, grace: float | None) -> None:
        await self._container(container_id).restart(grace)

    async def remove_container(self, container_id: str, force: bool) -> str:
        controller = self._container(container_id)
        await controller.remove_keeping_exit(force)
        return (await controller.inspect()).container_id

    async def pause(self, container_id: str) -> None:
        await self._container(container_id).set_paused(True)

    async def unpause(self, container_id: str) -> None:
        await self._container(container_id).set_paused(False)

    async def paused(self, container_id: str) -> bool:
        if "freezer" not in self._ctx.cgroups.mounts:
            self._find(container_id)  # still NotFound for an unknown one
            return False  # no freezer group is ever made for this executor's tasks
        return self._container(container_id).paused()

    async def wait_exit(self, container_id: str) -> ContainerStatus:
        controller = self._container(container_id)
        status = await controller.inspect()
        if status.state is ContainerState.RUNNING:
            return await controller.wait()
        return status

    async def sample(self, container_id: str) -> ResourceSample:
        return await self._container(container_id).sample()

    async def pids(self, container_id: str) -> list[int]:
        return await self._container(container_id).pids()

    async def filesystem_root(self, container_id: str) -> str:
        return await self._container(container_id).filesystem_root()

    def _find(self, reference: str) -> tuple[TaskDir, TaskRecord]:
        """A container by full id, unique id prefix or name (with or without the leading "/")."""
        name = reference.removeprefix("/")
        matches = []
        for task_dir in self._ctx.task_dirs():
            if _removed(task_dir):
                continue
            record = task_dir.read_record()
            if record.container_id == reference or record.runtime.container_name == name:
                return task_dir, record
            if len(reference) >= 1 and record.container_id.startswith(reference):
                matches.append((task_dir, record))
        if len(matches) == 1:
            return matches[0]
        raise ContainerNotFound(reference)


def _removed(task_dir: TaskDir) -> bool:
    """`docker rm` took its container; the task's records wait for the agent to remove the task."""
    return (task_dir.path / ProcessController.REMOVED_MARK).exists()


def _memory_total() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _with_port_bindings(extra: dict[str, Any], runtime: TaskRuntime) -> dict[str, Any]:
    """The task's host-mode ports in inspect's HostConfig.PortBindings, running or not, as dockerd keeps them."""
    return {**extra, "HostConfig": {**extra["HostConfig"], "PortBindings": requested_bindings(runtime.host_bindings)}}
