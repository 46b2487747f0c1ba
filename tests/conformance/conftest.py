"""The executor conformance suite's registry: every executor that can run here is tested alike.

`process` always runs, and beside it `process-python-shim` (the fallback shim) and, as root,
`process-plain` (no namespaces, as a non-root daemon runs tasks). `docker` runs when a dockerd
answers (DOCKER_HOST or /var/run/docker.sock); otherwise its tests skip with the reason. A test needing a capability the
executor lacks skips with the executor's own reason."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from shoal.api.errors import InvalidArgument
from shoal.base.ids import new_id
from shoal.executor.base import ContainerStatus, Controller, Executor, TaskRuntime
from shoal.executor.process.executor import isolation_unavailable_reason
from shoal.network.tasknet import TaskNetConfig, remove_bridge, remove_orphan_bridges
from shoal.testing import docker_engine

T = TypeVar("T")
TIMEOUT = 30.0
_slots = itertools.count(1)


@dataclass(frozen=True)
class ExecutorKind:
    """How to make one kind of executor, and what its workloads can use."""

    name: str
    make: Callable[[Path], Executor]
    image: str
    # a command serving `hostname` over HTTP on a port, for the task-address test
    serve_hostname: Callable[[int], tuple[str, ...]]


def _process_kind(network: TaskNetConfig, *, python_shim: bool = False, plain: bool = False) -> ExecutorKind:
    """Process executors share the session's bridge and one shim build (kept beside the network).
    With python_shim, tasks are held by the fallback Python shim instead of the C one; with plain,
    tasks get no namespaces even as root (what a non-root daemon does)."""
    from shoal.executor.process import ProcessExecutor
    from shoal.executor.process.shimbuild import python_shim as python_shim_command

    shim = python_shim_command() if python_shim else None
    isolate = False if plain else None
    name = "process-plain" if plain else "process-python-shim" if python_shim else "process"

    server = (
        "import http.server,socket,sys\n"
        "class H(http.server.BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        "        body=socket.gethostname().encode()\n"
        "        self.send_response(200); self.send_header('Content-Length',str(len(body)))\n"
        "        self.end_headers(); self.wfile.write(body)\n"
        "http.server.HTTPServer(('0.0.0.0',int(sys.argv[1])),H).serve_forever()\n"
    )
    return ExecutorKind(
        name=name,
        make=lambda state: ProcessExecutor(
            state, isolate=isolate, network=network, shim_cache=network.state_dir / "bin", shim=shim
        ),
        image="host:latest",
        serve_hostname=lambda port: ("python3", "-c", server, str(port)),
    )


def _docker_kind() -> ExecutorKind | str:
    """The docker executor's kind, or why it cannot run here."""
    host = os.environ.get("DOCKER_HOST", "")
    if not host and not Path("/var/run/docker.sock").exists():
        return "no dockerd: DOCKER_HOST unset and /var/run/docker.sock missing"
    if not docker_engine.engine_reachable():
        return "dockerd does not answer"
    image = docker_engine.TEST_IMAGE

    def serve(port: int) -> tuple[str, ...]:
        script = f"mkdir -p /tmp/www && hostname > /tmp/www/index.html && exec httpd -f -p {port} -h /tmp/www"
        return ("sh", "-c", script)

    return ExecutorKind("docker", docker_engine.make_executor, image, serve)


OCI_IMAGE = "shoal-conformance-busybox:latest"


def _busybox_serve(port: int) -> tuple[str, ...]:
    script = f"mkdir -p /tmp/www && hostname > /tmp/www/index.html && exec httpd -f -p {port} -h /tmp/www"
    return ("sh", "-c", script)


def _oci_unavailable() -> str | None:
    from shoal.executor.oci.rootfs import busybox_missing_reason
    from shoal.executor.oci.runtime import choose_runtime, unavailable_reason

    return unavailable_reason(choose_runtime()) or busybox_missing_reason()


def _oci_kind(network: TaskNetConfig) -> ExecutorKind:
    """The oci executor on the session's bridge, running a busybox image built once per session
    (beside the network's state) and served by a local image source."""
    from shoal.executor.oci import LocalImageSource, OciExecutor
    from shoal.executor.oci.rootfs import build_busybox_rootfs, directory_image

    rootfs = build_busybox_rootfs(network.state_dir / "busybox-rootfs")
    images = LocalImageSource({OCI_IMAGE: directory_image(rootfs)})
    return ExecutorKind(
        name="oci",
        make=lambda state: OciExecutor(
            state, images, network=network, shim_cache=network.state_dir / "bin", run_dir=state / "run"
        ),
        image=OCI_IMAGE,
        serve_hostname=_busybox_serve,
    )


def executor_factories() -> list[Any]:
    """One pytest param per executor: a function of the session's task network giving its kind."""
    params = [
        pytest.param(_process_kind, id="process"),
        pytest.param(lambda network: _process_kind(network, python_shim=True), id="process-python-shim"),
    ]
    if isolation_unavailable_reason() is None:  # else `process` is plain already
        params.append(pytest.param(lambda network: _process_kind(network, plain=True), id="process-plain"))
    oci_reason = _oci_unavailable()
    if oci_reason:
        params.append(pytest.param(None, id="oci", marks=pytest.mark.skip(reason=oci_reason)))
    else:
        params.append(pytest.param(_oci_kind, id="oci"))
    docker = _docker_kind()
    if isinstance(docker, str):
        params.append(pytest.param(None, id="docker", marks=pytest.mark.skip(reason=docker)))
    else:
        params.append(pytest.param(lambda _network: docker, id="docker", marks=pytest.mark.docker))
    return params


@pytest.fixture(scope="session")
def task_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TaskNetConfig]:
    """One bridge for the whole session (not one per test), removed at the end."""
    if isolation_unavailable_reason() is None:
        asyncio.run(remove_orphan_bridges())  # from earlier runs killed before their teardown
    config = TaskNetConfig.for_scope(f"shoal-conformance-{os.getpid()}", tmp_path_factory.mktemp("net"))
    yield config
    if config.bridge_exists():
        asyncio.run(remove_bridge(config))


@dataclass(frozen=True)
class Outcome:
    """A task run for a ContainerSpec field: rejected at prepare (with why), or its exit and output."""

    rejected: str | None = None
    exit_code: int | None = None
    output: list[str] = field(default_factory=list)


@dataclass
class Harness:
    kind: ExecutorKind
    state_dir: Path
    executor: Executor
    controllers: list[Controller] = field(default_factory=list)
    executors: list[Executor] = field(default_factory=list)

    def runtime(self, script: str, *, container_spec: dict[str, Any] | None = None, **overrides: Any) -> TaskRuntime:
        """A task running `sh -c script` (or overrides' command/args); `container_spec`: ContainerSpec
        fields beyond the runtime's (mounts, capabilities, ...), handed in as the agent does."""
        values: dict[str, Any] = {
            "task_id": new_id(),
            "service_id": new_id(),
            "service_name": "conformance",
            "node_id": new_id(),
            "slot": next(_slots),
            "image": self.kind.image,
            "command": ("sh", "-c"),
            "args": (script,),
            "stop_grace_period": 5.0,
            "labels": {"com.docker.swarm.service.name": "conformance"},
        }
        if container_spec is not None:
            values["raw_task"] = {"Spec": {"ContainerSpec": container_spec}}
        values.update(overrides)
        return TaskRuntime(**values)

    def controller(self, runtime: TaskRuntime, executor: Executor | None = None) -> Controller:
        controller = (executor or self.executor).controller(runtime)
        self.controllers.append(controller)
        return controller

    async def started(self, script: str, **overrides: Any) -> Controller:
        controller = self.controller(self.runtime(script, **overrides))
        await controller.prepare()
        await controller.start()
        return controller

    async def finished(self, script: str, **overrides: Any) -> tuple[Controller, ContainerStatus]:
        controller = await self.started(script, **overrides)
        return controller, await within(controller.wait())

    async def outcome(self, script: str, container_spec: dict[str, Any], **overrides: Any) -> Outcome:
        """Run a task to its end, or learn why prepare() rejected it."""
        controller = self.controller(self.runtime(script, container_spec=container_spec, **overrides))
        try:
            await controller.prepare()
        except InvalidArgument as exc:
            return Outcome(rejected=str(exc))
        await controller.start()
        status = await within(controller.wait())
        lines = [line.data.decode().rstrip("\n") async for line in controller.logs()]
        return Outcome(exit_code=status.exit_code, output=lines)

    def reopen(self) -> Executor:
        """A second executor instance on the same state, as after a daemon restart."""
        executor = self.kind.make(self.state_dir)
        self.executors.append(executor)
        return executor

    def require(self, capability: str) -> None:
        caps = self.executor.capabilities
        if capability not in caps:
            pytest.skip(f"{self.kind.name} executor lacks {capability}: {caps.why_missing(capability)}")


async def within(awaitable: Awaitable[T], timeout: float = TIMEOUT) -> T:
    return await asyncio.wait_for(awaitable, timeout)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = TIMEOUT) -> None:
    """Poll `check` until true (a wait, not a timing assertion)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.05)


@pytest.fixture(params=executor_factories())
async def harness(
    request: pytest.FixtureRequest, tmp_path: Path, task_network: TaskNetConfig
) -> AsyncIterator[Harness]:
    kind: ExecutorKind = request.param(task_network)
    state = tmp_path / "state"
    executor = kind.make(state)
    h = Harness(kind, state, executor, executors=[executor])
    try:
        yield h
    finally:
        for controller in reversed(h.controllers):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(controller.remove(), TIMEOUT)
        for ex in h.executors:
            with contextlib.suppress(Exception):
                await ex.close()
