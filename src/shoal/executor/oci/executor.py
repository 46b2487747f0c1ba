"""OciExecutor: each task runs its image in a container started by crun or runc under shoal's shim.

State lives under `state_dir` as the process executor's (tasks/<task id>/ with the shim's files, plus
bundle/ (config.json, rootfs: the overlay mount), upper/ and work/ (the task's writable layer),
image.json), volumes/<name>/_data for named volumes, and the runtime's own state under /run (tmpfs,
so a host reboot leaves nothing of it). Everything but prepare/start/remove and exec is shared with
the process executor: the same shim writes the same files."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from shoal.api.errors import Conflict
from shoal.base.clock import Clock
from shoal.executor.base import CAP_EXEC, Capabilities, ContainerInfo, PortSpec, TaskRuntime
from shoal.executor.errors import ContainerNotFound, ContainerNotRunning
from shoal.executor.oci.context import OciContext
from shoal.executor.oci.controller import OciController
from shoal.executor.oci.execcmd import exec_command, exec_process
from shoal.executor.oci.passwd import container_user
from shoal.executor.oci.runtime import RuntimeChoice, choose_runtime, unavailable_reason
from shoal.executor.oci.seccomp import load_profile
from shoal.executor.oci.source import ImageSource
from shoal.executor.oci.volumes import LocalVolumes
from shoal.executor.port_shapes import exposed_ports, port_key
from shoal.executor.process import cgroups as cg
from shoal.executor.process.controller import status_of
from shoal.executor.process.executor import ProcessExecutor
from shoal.executor.process.status import env_dict
from shoal.executor.taskoptions import TaskOptions
from shoal.network.tasknet import TaskNetConfig

INIT_BINARIES = ("/usr/bin/docker-init", "/usr/bin/tini-static")  # static: it runs inside any image


def find_init() -> Path | None:
    for candidate in INIT_BINARIES:
        if os.path.exists(candidate):
            return Path(os.path.realpath(candidate))
    return None


class OciExecutor(ProcessExecutor):
    def __init__(
        self,
        state_dir: Path,
        images: ImageSource,
        *,
        runtime: RuntimeChoice | None = None,
        network: TaskNetConfig | None = None,
        scope: str | None = None,
        clock: Clock | None = None,
        shim_cache: Path | None = None,
        dns_servers: Sequence[str] = (),
        run_dir: Path = Path("/run/shoal-oci"),
    ) -> None:
        """`images`: where images come from (the node's ImageService). `runtime`: default
        choose_runtime(). `run_dir`: where the runtime keeps its state (tmpfs, so a reboot clears it)."""
        runtime = runtime or choose_runtime()
        reason = unavailable_reason(runtime)
        if reason:
            raise ValueError(f"oci executor cannot run here: {reason}")
        assert runtime.path is not None
        state_dir = Path(state_dir).absolute()
        super().__init__(state_dir, isolate=True, network=network, scope=scope, clock=clock,
                         shim_cache=shim_cache, dns_servers=dns_servers)
        key = hashlib.sha256((scope or str(state_dir)).encode()).hexdigest()[:12]
        self.runtime_choice = runtime
        self._oci = OciContext(
            images=images,
            runtime=runtime.path,
            runtime_root=run_dir / key,
            volumes=LocalVolumes(state_dir / "volumes"),
            seccomp_profile=load_profile(),
            init_binary=find_init(),
            cgroup_parent=f"/shoal/{key}",
        )

    @property
    def name(self) -> str:
        return "oci"

    @property
    def capabilities(self) -> Capabilities:
        base = super().capabilities
        return Capabilities(base.supported | {CAP_EXEC}, base.missing)

    @property
    def volumes(self) -> LocalVolumes:
        return self._oci.volumes

    def controller(self, runtime: TaskRuntime) -> OciController:
        return OciController(self._ctx, self._oci, runtime)

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
        if not status.running:
            raise ContainerNotRunning(record.container_id)
        if self.controller(record.runtime).paused():
            raise Conflict(f"Container {record.container_id} is paused, unpause the container before exec")
        environment = env_dict(record.env) | env_dict(env or [])
        if tty:
            environment.setdefault("TERM", "xterm")
        options: TaskOptions = record.options
        # as Docker: the container's user unless the exec names one, resolved in the image's files
        image = json.loads((task_dir.path / "image.json").read_text())
        identity = container_user(task_dir.path / "bundle" / "rootfs", user or image["user"], options.groups)
        stem = task_dir.path / f"exec-{os.urandom(6).hex()}"
        container = json.loads((task_dir.path / "bundle" / "config.json").read_text())
        process = exec_process(container["process"], argv=cmd, env=[f"{k}={v}" for k, v in environment.items()],
                               user=identity, cwd=workdir, tty=tty)
        process_file = stem.with_suffix(".json")
        process_file.write_text(json.dumps(process))
        argv = exec_command(self._oci.runtime_argv(), container_id=record.container_id, process_file=process_file,
                            pid_file=stem.with_suffix(".pid"), tty=tty)
        host_env = {"PATH": os.environ.get("PATH") or "/usr/sbin:/usr/bin:/sbin:/bin"}
        return self._execs.create(record.container_id, cmd, argv, host_env, stdin, tty, user or "")

    async def paused(self, container_id: str) -> bool:
        """Read straight from the runtime's freezer group when given a full id (`docker ps` asks for
        every row), else found by name or prefix first."""
        if len(container_id) != 64:
            container_id = self._find(container_id)[1].container_id
        return cg.is_frozen(cg.groups_of(f"{self._oci.cgroup_parent}/{container_id}"))

    async def containers(self, *, all: bool = False) -> list[ContainerInfo]:
        """As the process executor's, plus the ports the image exposes (in `docker ps`, Config.ExposedPorts
        and NetworkSettings.Ports)."""
        rows = []
        for row in await super().containers(all=all):
            exposed = self._exposed_ports(row.id)
            extra = dict(row.inspect_extra)
            asked = (extra.get("HostConfig") or {}).get("PortBindings") or {}
            declared = exposed_ports([*asked, *(port_key(p.target, p.protocol) for p in exposed)])
            if declared:
                extra["Config"] = {**(extra.get("Config") or {}), "ExposedPorts": declared}
            rows.append(dataclasses.replace(row, ports=exposed, inspect_extra=extra))
        return rows

    def _exposed_ports(self, container_id: str) -> tuple[PortSpec, ...]:
        try:
            task_dir, _ = self._find(container_id)
            image = json.loads((task_dir.path / "image.json").read_text())
        except (ContainerNotFound, OSError, ValueError):
            return ()
        ports = []
        for text in image.get("exposed_ports") or ():
            number, _, protocol = str(text).partition("/")
            if number.isdigit():
                ports.append(PortSpec(int(number), protocol or "tcp"))
        return tuple(ports)

    async def purge(self) -> int:
        count = await super().purge()
        shutil.rmtree(self._oci.runtime_root, ignore_errors=True)
        return count
