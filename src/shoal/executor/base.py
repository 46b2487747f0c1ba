"""The executor protocol: how the agent runs tasks, whatever the runtime (host processes, Docker, ...).

As swarmkit's exec.Executor/exec.Controller: the agent builds a TaskRuntime from the task object,
asks the Executor for one Controller per task and drives it through prepare → start → wait, and
shutdown/terminate/remove when the desired state says so. Everything an executor may report back is a
plain dataclass here; nothing in this module does I/O.

Conventions every executor follows (the conformance suite checks them):
- `wait()` returns the final ContainerStatus when the workload exits, whatever the exit code; the agent
  decides COMPLETE (0) vs FAILED. It raises only when the executor itself failed.
- Exit codes read as a shell reports them: 128+N when killed by signal N (143 for SIGTERM, 137 for KILL).
- Ids are 64 lowercase hex characters; the default hostname is the first 12 of them.
- Errors are shoal.executor.errors types; `temporary` ones are worth a retry.
"""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from shoal.api.defaults import STOP_GRACE_PERIOD, seconds
from shoal.api.names import container_name, task_name

DEFAULT_STOP_SIGNAL = "SIGTERM"
DEFAULT_STOP_GRACE_PERIOD = seconds(STOP_GRACE_PERIOD)
STDOUT = 1
STDERR = 2

# Capability names: what an executor can do on this host. The conformance suite skips a test whose
# capability is missing and prints the executor's reason.
CAP_ISOLATION = "isolation"  # own network/mount/UTS/PID namespaces per task
CAP_TASK_ADDRESS = "task-address"  # each task has its own IP address on the node network
CAP_HOSTNAME = "hostname"  # the task sees its own hostname
CAP_USER = "user"  # ContainerSpec.User is honoured
CAP_MEMORY_LIMIT = "memory-limit"
CAP_PIDS_LIMIT = "pids-limit"
CAP_CPU_LIMIT = "cpu-limit"
CAP_EXEC = "exec"
CAP_ADOPT = "adopt"  # tasks outlive the daemon and are found again by adopt()
CAP_OOM_KILLED = "oom-killed"  # ContainerStatus.oom_killed tells a memory-limit kill


# ---------------------------------------------------------------------------------------------------
# What the agent hands in


@dataclass(frozen=True)
class Resources:
    """Limits from Spec.TaskTemplate.Resources.Limits; 0 means unlimited."""

    nano_cpus: int = 0
    memory_bytes: int = 0
    pids_limit: int = 0


@dataclass(frozen=True)
class PortSpec:
    """A port the task listens on (EndpointSpec.Ports[].TargetPort / Protocol)."""

    target: int
    protocol: str = "tcp"


@dataclass(frozen=True)
class PortBinding:
    """A container port bound to a port of the node (`0.0.0.0:8080->80/tcp` in `docker ps`): a host-mode
    published port. `host_ip` is the address it is bound on, as dockerd's NetworkSettings.Ports gives it."""

    target: int
    protocol: str
    host_port: int
    host_ip: str = "0.0.0.0"

    @property
    def key(self) -> str:
        """Docker's name for the container port: "80/tcp"."""
        return f"{self.target}/{self.protocol}"


def host_mode_bindings(task: Mapping[str, Any]) -> tuple[PortBinding, ...]:
    """The host-mode ports of a task (Docker JSON) that name a published port, in the spec's order; an
    ingress-mode port belongs to the routing mesh and binds nothing on the task's behalf."""
    endpoint = task.get("Endpoint") or {}
    ports = endpoint.get("Ports") or (endpoint.get("Spec") or {}).get("Ports") or []
    return tuple(
        PortBinding(int(p.get("TargetPort") or 0), str(p.get("Protocol") or "tcp").lower(), int(p["PublishedPort"]))
        for p in ports
        if p.get("PublishMode") == "host" and p.get("PublishedPort")
    )


def host_mode_unpublished(task: Mapping[str, Any]) -> tuple[PortSpec, ...]:
    """The host-mode ports of a task published as 0: the node picks a free port for each, as an engine does."""
    endpoint = task.get("Endpoint") or {}
    ports = endpoint.get("Ports") or (endpoint.get("Spec") or {}).get("Ports") or []
    return tuple(PortSpec(int(p.get("TargetPort") or 0), str(p.get("Protocol") or "tcp").lower())
                 for p in ports if p.get("PublishMode") == "host" and not p.get("PublishedPort"))


@dataclass(frozen=True)
class TaskFile:
    """A secret or config the task sees as a file: `target` is an absolute path inside the task
    (secrets: /run/secrets/<name>, on a tmpfs). Its data is never written to the host's disk and
    never persisted with the runtime."""

    target: str
    data: bytes = field(repr=False)
    uid: int = 0
    gid: int = 0
    mode: int = 0o444
    secret: bool = False


@dataclass(frozen=True)
class TaskRuntime:
    """Everything an executor needs about one task. Built by the agent from the task object; the
    hostname is already template-expanded (None: the executor's default, the container id's first 12
    characters). `raw_task` is the task in Docker JSON shape, for executors that read more of it
    (mounts, health checks); the process executor ignores it."""

    task_id: str
    service_id: str
    service_name: str
    node_id: str
    slot: int
    image: str
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    workdir: str | None = None
    user: str | None = None
    hostname: str | None = None
    stop_signal: str = DEFAULT_STOP_SIGNAL
    stop_grace_period: float = DEFAULT_STOP_GRACE_PERIOD
    labels: Mapping[str, str] = field(default_factory=dict)
    resources: Resources = Resources()
    tty: bool = False
    ports: tuple[PortSpec, ...] = ()
    raw_task: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    # host-mode ports as recorded with the runtime (from_json); None: read them from raw_task
    host_ports: tuple[PortBinding, ...] | None = field(default=None, compare=False)
    # the task's secrets and configs, resolved by the agent; left out of to_json (never on disk)
    files: tuple[TaskFile, ...] = field(default=(), compare=False, repr=False)

    @property
    def task_name(self) -> str:
        return task_name(self.service_name, self.slot, self.node_id)

    @property
    def container_name(self) -> str:
        return container_name(self.service_name, self.slot, self.node_id, self.task_id)

    @property
    def host_bindings(self) -> tuple[PortBinding, ...]:
        """The ports this task publishes on its node in host mode (kept across adopt() by to_json)."""
        return self.host_ports if self.host_ports is not None else host_mode_bindings(self.raw_task)

    @property
    def argv(self) -> list[str]:
        """Command first, then Args (as Docker does when Command replaces the entrypoint)."""
        return [*self.command, *self.args]

    def to_json(self) -> dict[str, Any]:
        """A plain-JSON form, so executors can persist the runtime for adopt()."""
        return {
            "task_id": self.task_id,
            "service_id": self.service_id,
            "service_name": self.service_name,
            "node_id": self.node_id,
            "slot": self.slot,
            "image": self.image,
            "command": list(self.command),
            "args": list(self.args),
            "env": list(self.env),
            "workdir": self.workdir,
            "user": self.user,
            "hostname": self.hostname,
            "stop_signal": self.stop_signal,
            "stop_grace_period": self.stop_grace_period,
            "labels": dict(self.labels),
            "resources": {
                "nano_cpus": self.resources.nano_cpus,
                "memory_bytes": self.resources.memory_bytes,
                "pids_limit": self.resources.pids_limit,
            },
            "tty": self.tty,
            "ports": [[p.target, p.protocol] for p in self.ports],
            "host_ports": [[b.target, b.protocol, b.host_port] for b in self.host_bindings],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TaskRuntime:
        res = data.get("resources") or {}
        return cls(
            task_id=data["task_id"],
            service_id=data["service_id"],
            service_name=data["service_name"],
            node_id=data["node_id"],
            slot=int(data["slot"]),
            image=data["image"],
            command=tuple(data.get("command") or ()),
            args=tuple(data.get("args") or ()),
            env=tuple(data.get("env") or ()),
            workdir=data.get("workdir"),
            user=data.get("user"),
            hostname=data.get("hostname"),
            stop_signal=data.get("stop_signal") or DEFAULT_STOP_SIGNAL,
            stop_grace_period=float(data.get("stop_grace_period", DEFAULT_STOP_GRACE_PERIOD)),
            labels=dict(data.get("labels") or {}),
            resources=Resources(
                nano_cpus=int(res.get("nano_cpus", 0)),
                memory_bytes=int(res.get("memory_bytes", 0)),
                pids_limit=int(res.get("pids_limit", 0)),
            ),
            tty=bool(data.get("tty", False)),
            ports=tuple(PortSpec(int(t), str(p)) for t, p in data.get("ports") or ()),
            host_ports=tuple(PortBinding(int(t), str(p), int(h)) for t, p, h in data.get("host_ports") or ()),
        )


def parse_signal(name: str | int) -> signal.Signals:
    """`SIGTERM`, `TERM`, `term` or `15` → signal.SIGTERM (Docker accepts all these spellings)."""
    if isinstance(name, int) or name.strip().isdigit():
        return signal.Signals(int(name))
    upper = name.strip().upper()
    if not upper.startswith("SIG"):
        upper = "SIG" + upper
    try:
        return signal.Signals[upper]
    except KeyError:
        raise ValueError(f"Invalid signal: {name}") from None  # dockerd's text


def exit_code_from_wait_status(status: int) -> int:
    """A waitpid() status → the exit code a shell (and Docker) reports: 128+N when killed by N."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    return 255


# ---------------------------------------------------------------------------------------------------
# What executors report


class ContainerState(StrEnum):
    CREATED = "created"
    RUNNING = "running"
    EXITED = "exited"


@dataclass(frozen=True)
class ContainerStatus:
    """What inspect()/wait() report (Task.Status.ContainerStatus plus what `docker ps` shows)."""

    container_id: str
    state: ContainerState
    pid: int | None = None
    exit_code: int | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str = ""
    address: str | None = None  # the task's IP on the node network, if it has its own
    hostname: str | None = None
    oom_killed: bool = False  # killed by the kernel for exceeding its memory limit
    health: str | None = None  # "starting" | "healthy" | "unhealthy"; None: the task has no health check
    # host ports bound for it now, when the runtime picks them (an engine given PublishedPort 0 chooses one)
    host_ports: tuple[PortBinding, ...] = ()

    @property
    def running(self) -> bool:
        return self.state is ContainerState.RUNNING


@dataclass(frozen=True)
class LogLine:
    """One line of output. `data` ends in b"\\n" (a missing final newline is added)."""

    stream: int  # STDOUT or STDERR
    timestamp: datetime
    data: bytes


@dataclass(frozen=True)
class AdoptedTask:
    """A task found on start: still running (re-attach with controller(runtime)) or exited meanwhile."""

    runtime: TaskRuntime
    status: ContainerStatus


@dataclass(frozen=True)
class ContainerInfo:
    """One row of `docker ps` (GET /containers/json)."""

    id: str
    names: tuple[str, ...]  # with the leading "/", as Docker returns them
    image: str
    command: str
    created: int  # unix seconds
    state: ContainerState
    status: str  # "Up 18 seconds", "Exited (0) 3 seconds ago", "Created"
    labels: Mapping[str, str] = field(default_factory=dict)
    ports: tuple[PortSpec, ...] = ()  # exposed (the image's); a port also in `bindings` is shown bound
    bindings: tuple[PortBinding, ...] = ()  # bound on the node: host-mode published ports
    # optional detail for `docker inspect <container>` (pid, exit code, times, address, hostname)
    argv: tuple[str, ...] = ()  # the command as a list (`command` is its display form)
    detail: ContainerStatus | None = None
    # what `docker inspect` shows beyond the status, in Docker's shape: "Config", "HostConfig" and
    # "Mounts" entries merged over the defaults (an executor fills what it knows)
    inspect_extra: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def to_docker(self) -> dict[str, Any]:
        return {
            "Id": self.id,
            "Names": list(self.names),
            "Image": self.image,
            "ImageID": "",
            "Command": self.command,
            "Created": self.created,
            "State": self.state.value,
            "Status": self.status,
            "Labels": dict(self.labels),
            "Ports": list_ports(self.ports, self.bindings),
        }


def list_ports(exposed: tuple[PortSpec, ...], bindings: tuple[PortBinding, ...]) -> list[dict[str, Any]]:
    """GET /containers/json `Ports`: one entry per binding (IP, PrivatePort, PublicPort, Type), then one
    per exposed port that nothing binds (PrivatePort, Type), as dockerd lists them."""
    bound = {(b.target, b.protocol) for b in bindings}
    shown: list[dict[str, Any]] = [
        {"IP": b.host_ip, "PrivatePort": b.target, "PublicPort": b.host_port, "Type": b.protocol} for b in bindings]
    shown += [{"PrivatePort": p.target, "Type": p.protocol} for p in exposed if (p.target, p.protocol) not in bound]
    return shown


@dataclass(frozen=True)
class Plugin:
    type: str  # "Volume", "Network", "Log"
    name: str


@dataclass(frozen=True)
class NodeDescription:
    hostname: str
    os: str
    architecture: str
    nano_cpus: int
    memory_bytes: int
    engine_version: str
    engine_labels: Mapping[str, str] = field(default_factory=dict)
    plugins: tuple[Plugin, ...] = ()

    def to_docker(self) -> dict[str, Any]:
        """Node.Description in the Docker API's shape."""
        return {
            "Hostname": self.hostname,
            "Platform": {"Architecture": self.architecture, "OS": self.os},
            "Resources": {"NanoCPUs": self.nano_cpus, "MemoryBytes": self.memory_bytes},
            "Engine": {
                "EngineVersion": self.engine_version,
                "Labels": dict(self.engine_labels),
                "Plugins": [{"Type": p.type, "Name": p.name} for p in self.plugins],
            },
        }


@dataclass(frozen=True)
class Capabilities:
    """What this executor can do here, and for each thing it cannot, why."""

    supported: frozenset[str]
    missing: Mapping[str, str] = field(default_factory=dict)

    def __contains__(self, capability: object) -> bool:
        return capability in self.supported

    def why_missing(self, capability: str) -> str:
        return self.missing.get(capability, "not supported by this executor")


@dataclass(frozen=True)
class ExecInfo:
    """GET /exec/{id}/json."""

    id: str
    container_id: str
    argv: tuple[str, ...]
    running: bool
    exit_code: int | None
    pid: int | None
    tty: bool = False
    user: str = ""


# ---------------------------------------------------------------------------------------------------
# The protocols


@runtime_checkable
class ExecSession(Protocol):
    """A started exec. Output arrives as (stream, chunk) pairs until read() returns None."""

    @property
    def exec_id(self) -> str: ...

    async def read(self) -> tuple[int, bytes] | None: ...

    async def write(self, data: bytes) -> None:
        """Feed the process's stdin (only if created with stdin=True)."""
        ...

    async def close_stdin(self) -> None: ...

    async def wait(self) -> int:
        """The exit code, once the process has exited (128+N if killed by signal N)."""
        ...


@runtime_checkable
class Controller(Protocol):
    """Drives one task's container. Each method is idempotent where the agent may retry it:
    prepare() on a prepared task, start() on a running one and remove() on a removed one are no-ops."""

    @property
    def runtime(self) -> TaskRuntime: ...

    async def prepare(self) -> None:
        """Validate the task and create its container (not started). Fatal errors → REJECTED."""
        ...

    async def start(self) -> None:
        """Start the workload; returns once it runs."""
        ...

    async def wait(self) -> ContainerStatus:
        """Return the final status when the workload exits (at once if it already has)."""
        ...

    async def inspect(self) -> ContainerStatus: ...

    async def shutdown(self, grace: float | None = None) -> None:
        """Send the stop signal, then SIGKILL after `grace` seconds (None: the task's grace period).
        Returns when the workload has exited."""
        ...

    async def terminate(self) -> None:
        """SIGKILL now; returns when the workload has exited."""
        ...

    async def remove(self) -> None:
        """Delete the container and everything kept for it (kills it first if still running)."""
        ...

    def logs(
        self, *, follow: bool = False, tail: int | None = None, since: datetime | None = None
    ) -> AsyncIterator[LogLine]:
        """Output lines in order; with follow, keeps yielding until the workload exits."""
        ...


@runtime_checkable
class Executor(Protocol):
    @property
    def name(self) -> str:
        """ "process", "docker", ... (shown as the engine's name where it matters)."""
        ...

    @property
    def capabilities(self) -> Capabilities: ...

    async def describe(self) -> NodeDescription: ...

    def controller(self, runtime: TaskRuntime) -> Controller:
        """The controller for one task; for a task found by adopt(), it re-attaches without restarting."""
        ...

    async def adopt(self) -> list[AdoptedTask]:
        """Tasks left from an earlier daemon run: still running, or exited meanwhile (with exit code)."""
        ...

    async def containers(self, *, all: bool = False) -> list[ContainerInfo]:
        """Task containers on this node, newest first; exited ones only with all=True."""
        ...

    def logs(
        self,
        container_id: str,
        *,
        follow: bool = False,
        tail: int | None = None,
        since: datetime | None = None,
    ) -> AsyncIterator[LogLine]:
        """As Controller.logs, by container id (for `docker logs`)."""
        ...

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
        """Register a command to run in a running container; returns the exec id (64 hex)."""
        ...

    async def exec_start(self, exec_id: str) -> ExecSession: ...

    async def exec_inspect(self, exec_id: str) -> ExecInfo: ...

    async def close(self) -> None:
        """Release what the daemon holds (watchers, connections). Tasks keep running."""
        ...


@runtime_checkable
class Purgeable(Protocol):
    """An executor that holds node-level resources besides its tasks (a bridge, firewall rules): purge()
    removes every task and those resources, for `swarm leave`."""

    async def purge(self) -> int: ...


# ---------------------------------------------------------------------------------------------------
# Calls on one container beyond the task's lifecycle (`docker kill|stop|rm|pause|stats|top|cp|wait`)


@dataclass(frozen=True)
class BlockIo:
    """One line of a cgroup's block I/O counters (`op` is "Read", "Write", "Total"...)."""

    major: int
    minor: int
    op: str
    value: int


@dataclass(frozen=True)
class ResourceSample:
    """One reading of a container's resource use, from its cgroups and network namespace. Times are
    nanoseconds of CPU; a figure the host cannot give stays 0 (or empty)."""

    read_at: datetime
    cpu_total_ns: int = 0
    cpu_percpu_ns: tuple[int, ...] = ()
    cpu_user_ns: int = 0
    cpu_kernel_ns: int = 0
    system_cpu_ns: int = 0  # the whole host's, as the CLI divides by it
    online_cpus: int = 0
    throttled_periods: int = 0
    periods: int = 0
    throttled_ns: int = 0
    memory_usage: int = 0
    memory_max_usage: int = 0
    memory_limit: int = 0
    memory_stats: Mapping[str, int] = field(default_factory=dict)
    pids_current: int = 0
    pids_limit: int = 0
    block_io: tuple[BlockIo, ...] = ()
    networks: Mapping[str, Mapping[str, int]] = field(default_factory=dict)  # interface → rx_bytes, ...


@runtime_checkable
class ContainerCalls(Protocol):
    """What an executor that supports `docker kill|stop|rm|pause|stats|top|cp|wait` on its task
    containers offers (by container id, name or unique id prefix). Stopping or removing a task's
    container behind the agent's back ends its task as Docker's does: the agent sees the workload
    exit, the task fails and the orchestrator replaces it."""

    async def kill(self, container_id: str, sig: signal.Signals) -> None:
        """ContainerNotRunning if it is not running."""
        ...

    async def stop(self, container_id: str, grace: float | None) -> bool:
        """The stop signal, then SIGKILL after `grace` (None: the task's); False if it was not running."""
        ...

    async def restart(self, container_id: str, grace: float | None) -> None:
        """Stop (its task fails and is replaced, as in Swarm) and start the same container again."""
        ...

    async def remove_container(self, container_id: str, force: bool) -> str:
        """Kill (if `force`; Conflict if running without it) and remove; returns the full id. What
        the agent needs to see the exit (its exit record) stays until the agent removes the task."""
        ...

    async def pause(self, container_id: str) -> None: ...

    async def unpause(self, container_id: str) -> None: ...

    async def paused(self, container_id: str) -> bool: ...

    async def wait_exit(self, container_id: str) -> ContainerStatus:
        """Returns once the container is not running (at once if it is not)."""
        ...

    async def sample(self, container_id: str) -> ResourceSample: ...

    async def pids(self, container_id: str) -> list[int]:
        """The host pids of the container's processes (for `docker top`)."""
        ...

    async def filesystem_root(self, container_id: str) -> str:
        """A host path that shows the container's filesystem as its processes see it (for `docker cp`)."""
        ...
