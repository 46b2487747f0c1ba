"""An in-memory Executor for agent and orchestrator tests: no processes, no sleeping.

Tasks "run" until the test says they exit (`exit_task`); steps can be made to fail (`fail`); every
call is recorded (`calls`). Time comes from an injected clock, so a grace period under FakeClock only
passes when the test advances it. `restarted()` gives a new executor over the same containers, to
test re-adoption after a daemon restart.

    executor = FakeExecutor()
    executor.fail("prepare", InvalidTaskSpec("bad user"), task_id="t1")
    executor.exit_task("t2", 3)
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import datetime

from shoal.base.clock import Clock, SystemClock
from shoal.base.ids import new_container_id
from shoal.executor.base import (
    CAP_ADOPT,
    CAP_CPU_LIMIT,
    CAP_EXEC,
    CAP_HOSTNAME,
    CAP_ISOLATION,
    CAP_MEMORY_LIMIT,
    CAP_PIDS_LIMIT,
    CAP_TASK_ADDRESS,
    CAP_USER,
    STDOUT,
    AdoptedTask,
    Capabilities,
    ContainerInfo,
    ContainerState,
    ContainerStatus,
    ExecInfo,
    LogLine,
    NodeDescription,
    TaskRuntime,
)
from shoal.executor.errors import CommandRequired, ContainerNotFound, ContainerNotRunning, ExecNotFound

STEPS = ("prepare", "start", "wait", "shutdown", "terminate", "remove")
_pids = itertools.count(1000)


@dataclass
class FakeContainer:
    runtime: TaskRuntime
    status: ContainerStatus
    logs: list[LogLine] = field(default_factory=list)
    ignores_stop: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def update(self, **changes: object) -> None:
        self.status = replace(self.status, **changes)  # type: ignore[arg-type]
        self.changed.set()
        self.changed = asyncio.Event()


class FakeController:
    def __init__(self, executor: FakeExecutor, runtime: TaskRuntime) -> None:
        self._executor = executor
        self._runtime = runtime

    @property
    def runtime(self) -> TaskRuntime:
        return self._runtime

    @property
    def _container(self) -> FakeContainer:
        try:
            return self._executor.containers_by_task[self._runtime.task_id]
        except KeyError:
            raise ContainerNotFound(self._runtime.container_name) from None

    async def prepare(self) -> None:
        self._executor.record("prepare", self._runtime)
        if self._runtime.task_id in self._executor.containers_by_task:
            return
        if not self._runtime.argv and self._executor.require_command:
            raise CommandRequired("fake")
        container_id = new_container_id()
        status = ContainerStatus(
            container_id=container_id,
            state=ContainerState.CREATED,
            created_at=self._executor.clock.now(),
            hostname=self._runtime.hostname or container_id[:12],
        )
        self._executor.containers_by_task[self._runtime.task_id] = FakeContainer(self._runtime, status)

    async def start(self) -> None:
        self._executor.record("start", self._runtime)
        container = self._container
        if container.status.state is ContainerState.CREATED:
            container.update(state=ContainerState.RUNNING, pid=next(_pids), started_at=self._executor.clock.now())

    async def wait(self) -> ContainerStatus:
        self._executor.record("wait", self._runtime)
        container = self._container
        if container.status.state is ContainerState.CREATED:
            raise ContainerNotRunning(container.status.container_id)
        while container.status.state is not ContainerState.EXITED:
            await container.changed.wait()
        return container.status

    async def inspect(self) -> ContainerStatus:
        return self._container.status

    async def shutdown(self, grace: float | None = None) -> None:
        self._executor.record("shutdown", self._runtime)
        container = self._container
        if container.status.state is not ContainerState.RUNNING:
            return
        if container.ignores_stop:
            await self._executor.clock.sleep(self._runtime.stop_grace_period if grace is None else grace)
            self._executor.exit_task(self._runtime.task_id, 137)
        else:
            self._executor.exit_task(self._runtime.task_id, 143)

    async def terminate(self) -> None:
        self._executor.record("terminate", self._runtime)
        if self._container.status.state is ContainerState.RUNNING:
            self._executor.exit_task(self._runtime.task_id, 137)

    async def remove(self) -> None:
        self._executor.record("remove", self._runtime)
        container = self._executor.containers_by_task.pop(self._runtime.task_id, None)
        if container is not None and container.status.state is ContainerState.RUNNING:
            container.update(state=ContainerState.EXITED, exit_code=137, pid=None)

    def logs(
        self, *, follow: bool = False, tail: int | None = None, since: datetime | None = None
    ) -> AsyncIterator[LogLine]:
        return self._executor.logs(self._container.status.container_id, follow=follow, tail=tail, since=since)


class FakeExecSession:
    def __init__(self, exec_id: str, output: bytes, exit_code: int) -> None:
        self._exec_id = exec_id
        self._output = [(STDOUT, output)] if output else []
        self._exit_code = exit_code

    @property
    def exec_id(self) -> str:
        return self._exec_id

    async def read(self) -> tuple[int, bytes] | None:
        return self._output.pop(0) if self._output else None

    async def write(self, data: bytes) -> None:
        self._output.append((STDOUT, data))  # a cat-like echo, enough to test plumbing

    async def close_stdin(self) -> None:
        return None

    async def wait(self) -> int:
        return self._exit_code


class FakeExecutor:
    def __init__(
        self,
        *,
        clock: Clock | None = None,
        hostname: str = "fake-node",
        nano_cpus: int = 2_000_000_000,
        memory_bytes: int = 4 << 30,
        require_command: bool = True,
    ) -> None:
        self.clock: Clock = clock or SystemClock()
        self.hostname = hostname
        self.nano_cpus = nano_cpus
        self.memory_bytes = memory_bytes
        self.require_command = require_command
        self.containers_by_task: dict[str, FakeContainer] = {}
        self.calls: list[tuple[str, str]] = []  # (step, task id)
        self.failures: dict[tuple[str, str | None], Exception] = {}
        self.exec_results: dict[tuple[str, ...], tuple[bytes, int]] = {}
        self._execs: dict[str, ExecInfo] = {}

    # ------------------------------------------------------------------------------ test controls

    def fail(self, step: str, error: Exception, *, task_id: str | None = None) -> None:
        """Make `step` raise `error` for one task (or every task with task_id=None) until cleared."""
        assert step in STEPS, step
        self.failures[(step, task_id)] = error

    def clear_failures(self) -> None:
        self.failures.clear()

    def record(self, step: str, runtime: TaskRuntime) -> None:
        self.calls.append((step, runtime.task_id))
        error = self.failures.get((step, runtime.task_id)) or self.failures.get((step, None))
        if error is not None:
            raise error

    def exit_task(self, task_id: str, exit_code: int = 0) -> None:
        """The workload exits now: wait() returns."""
        container = self.containers_by_task[task_id]
        if container.status.state is not ContainerState.EXITED:
            container.update(state=ContainerState.EXITED, exit_code=exit_code, pid=None, finished_at=self.clock.now())

    def ignore_stop(self, task_id: str) -> None:
        """The workload ignores its stop signal: shutdown waits out the grace period, then kills."""
        self.containers_by_task[task_id].ignores_stop = True

    def emit_log(self, task_id: str, data: bytes, stream: int = STDOUT) -> None:
        line = data if data.endswith(b"\n") else data + b"\n"
        self.containers_by_task[task_id].logs.append(LogLine(stream, self.clock.now(), line))

    def restarted(self) -> FakeExecutor:
        """A new executor over the same containers, as after a daemon restart."""
        other = FakeExecutor(
            clock=self.clock,
            hostname=self.hostname,
            nano_cpus=self.nano_cpus,
            memory_bytes=self.memory_bytes,
            require_command=self.require_command,
        )
        other.containers_by_task = self.containers_by_task
        return other

    def steps(self, task_id: str) -> list[str]:
        return [step for step, tid in self.calls if tid == task_id]

    # ------------------------------------------------------------------------------ the protocol

    @property
    def name(self) -> str:
        return "fake"

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(
            frozenset(
                {
                    CAP_ADOPT,
                    CAP_CPU_LIMIT,
                    CAP_EXEC,
                    CAP_HOSTNAME,
                    CAP_ISOLATION,
                    CAP_MEMORY_LIMIT,
                    CAP_PIDS_LIMIT,
                    CAP_TASK_ADDRESS,
                    CAP_USER,
                }
            )
        )

    async def describe(self) -> NodeDescription:
        return NodeDescription(
            hostname=self.hostname,
            os="linux",
            architecture="x86_64",
            nano_cpus=self.nano_cpus,
            memory_bytes=self.memory_bytes,
            engine_version="fake",
        )

    def controller(self, runtime: TaskRuntime) -> FakeController:
        return FakeController(self, runtime)

    async def adopt(self) -> list[AdoptedTask]:
        return [AdoptedTask(c.runtime, c.status) for c in self.containers_by_task.values()]

    async def containers(self, *, all: bool = False) -> list[ContainerInfo]:
        rows = []
        for c in self.containers_by_task.values():
            if not all and c.status.state is not ContainerState.RUNNING:
                continue
            rows.append(
                ContainerInfo(
                    id=c.status.container_id,
                    names=(f"/{c.runtime.container_name}",),
                    image=c.runtime.image,
                    command=" ".join(c.runtime.argv),
                    created=int(c.status.created_at.timestamp()) if c.status.created_at else 0,
                    state=c.status.state,
                    status=c.status.state.value,
                    labels=dict(c.runtime.labels),
                    ports=c.runtime.ports,
                    argv=tuple(c.runtime.argv),
                    detail=c.status,
                )
            )
        return rows

    def _by_id(self, container_id: str) -> FakeContainer:
        for c in self.containers_by_task.values():
            if c.status.container_id == container_id or c.runtime.container_name == container_id.lstrip("/"):
                return c
        raise ContainerNotFound(container_id)

    async def logs(
        self,
        container_id: str,
        *,
        follow: bool = False,
        tail: int | None = None,
        since: datetime | None = None,
    ) -> AsyncIterator[LogLine]:
        container = self._by_id(container_id)
        lines = [line for line in container.logs if since is None or line.timestamp >= since]
        if tail is not None:
            lines = lines[-tail:] if tail > 0 else []
        for line in lines:
            yield line
        if follow:
            seen = len(container.logs)
            while container.status.state is not ContainerState.EXITED:
                await container.changed.wait()
            for line in container.logs[seen:]:
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
        container = self._by_id(container_id)
        if container.status.state is not ContainerState.RUNNING:
            raise ContainerNotRunning(container_id)
        exec_id = new_container_id()
        self._execs[exec_id] = ExecInfo(
            exec_id, container.status.container_id, tuple(cmd), False, None, None, tty, user or ""
        )
        return exec_id

    async def exec_start(self, exec_id: str) -> FakeExecSession:
        info = await self.exec_inspect(exec_id)
        output, code = self.exec_results.get(info.argv, (b"", 0))
        self._execs[exec_id] = replace(info, exit_code=code, pid=next(_pids))
        return FakeExecSession(exec_id, output, code)

    async def exec_inspect(self, exec_id: str) -> ExecInfo:
        try:
            return self._execs[exec_id]
        except KeyError:
            raise ExecNotFound(exec_id) from None

    async def close(self) -> None:
        return None
