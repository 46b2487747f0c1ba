"""The oci executor's Controller: a task's container is an OCI bundle in its state directory (the
image's layers under an overlay with a writable layer of its own, and a config.json), started by the
runtime under the shim (`run --detach`; the shim adopts the container's pid 1 as conmon does).
Waiting, status, stop signals and logs are the process controller's: the shim writes the same files."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shoal.api.errors import ShoalError
from shoal.base.ids import new_container_id
from shoal.executor.base import TaskRuntime
from shoal.executor.errors import InvalidTaskSpec
from shoal.executor.limits_check import check_limits
from shoal.executor.oci.bundle import BundleInputs, runtime_config
from shoal.executor.oci.context import OciContext
from shoal.executor.oci.passwd import ContainerUser, container_user
from shoal.executor.oci.plan import process_plan
from shoal.executor.oci.rootmount import mount_rootfs, unmount
from shoal.executor.oci.seccomp import oci_seccomp
from shoal.executor.process import cgroups as cg
from shoal.executor.process.context import ProcessContext
from shoal.executor.process.controller import MAX_LOG_BYTES, ProcessController
from shoal.executor.process.etcfiles import hosts_file, resolv_conf
from shoal.executor.process.launch import launch
from shoal.executor.process.taskdir import TaskRecord
from shoal.executor.taskfiles import mount_files, unmount_files
from shoal.executor.taskoptions import CAPABILITIES, check_bind_sources, container_spec, task_options
from shoal.network.tasknet import network_attachments, setup_script

log = logging.getLogger(__name__)

_ALL_CAPS = tuple("CAP_" + c for c in CAPABILITIES)
_UNSUPPORTED = {
    "Privileges.SELinuxContext": "SELinux labels are not supported yet",
    "Privileges.CredentialSpec": "credential specs are for Windows containers",
}


class OciController(ProcessController):
    def __init__(self, context: ProcessContext, oci: OciContext, runtime: TaskRuntime) -> None:
        super().__init__(context, runtime)
        self._oci = oci

    # paths inside the task's state directory
    @property
    def bundle(self) -> Path:
        return self._dir.path / "bundle"

    @property
    def rootfs(self) -> Path:
        return self.bundle / "rootfs"

    async def _prepare(self) -> None:
        if self._dir.exists():
            return
        rt = self._runtime
        options = task_options(rt)
        check_bind_sources(options)
        for field, flag in options.requested():
            if field in _UNSUPPORTED:
                raise InvalidTaskSpec(f"oci executor cannot apply {flag} ({field}): {_UNSUPPORTED[field]}")
        if options.seccomp_mode == "custom":
            try:
                json.loads(options.seccomp_profile)
            except ValueError as exc:
                raise InvalidTaskSpec(f"decoding seccomp profile failed: {exc}") from None
        if options.init and self._oci.init_binary is None:
            raise InvalidTaskSpec("--init: no docker-init (tini) on this node (apt-get install tini)")
        # --with-registry-auth: the service carries the client's X-Registry-Auth to every node
        auth = (container_spec(rt).get("PullOptions") or {}).get("RegistryAuth") or None
        try:
            image = await self._oci.images.ensure(rt.image, auth)
        except ShoalError as exc:  # not found, refused credentials...: the task is rejected, as Swarm's
            raise InvalidTaskSpec(str(exc)) from None
        check_limits(rt)  # dockerd refuses these when it creates the container, after the pull
        container_id = new_container_id()
        hostname = rt.hostname or container_id[:12]
        plan = process_plan(rt, image.container_config, hostname)
        address = None
        if (book := self._ctx.addresses) is not None:
            address = str(book.allocate(container_id))
        record = TaskRecord(
            runtime=dataclasses.replace(self._with_chosen_host_ports(rt), stop_signal=plan.stop_signal),
            container_id=container_id,
            created_at=self._ctx.clock.now(),
            hostname=hostname,
            argv=plan.argv,
            env=plan.env,
            isolated=True,
            address=address,
            cgroups=(),
            options=options,
        )
        self._dir.path.mkdir(parents=True, exist_ok=True)
        (self._dir.path / "image.json").write_text(
            json.dumps({"id": image.id, "layers": [str(p) for p in image.layers], "cwd": plan.cwd,
                        "user": plan.user, "exposed_ports": list(plan.exposed_ports),
                        "healthcheck": image.container_config.get("Healthcheck")})
        )
        self._dir.write_record(record)

    async def _start(self) -> None:
        record = self._record()
        if self._dir.started():
            return
        image = json.loads((self._dir.path / "image.json").read_text())
        await mount_rootfs([Path(p) for p in image["layers"]], self._dir.path / "upper", self._dir.path / "work",
                           self.rootfs)
        user = self._container_user(record, image["user"])
        hook = None
        if self._ctx.network is not None and record.address is not None:
            await self._ctx.ensure_network()
            hook = setup_script(self._ctx.network, record.container_id, ipaddress.IPv4Address(record.address),
                                network_attachments(self._runtime.raw_task))
        # secrets and configs: a tmpfs of the task's own, each file bound read-only onto its target
        task_files = await mount_files(self._runtime.files, self._dir.path / "files")
        inputs = BundleInputs(
            task_files=task_files,
            argv=record.argv,
            env=_with_home(record.env, user.home),
            cwd=image["cwd"],
            user=user,
            hostname=record.hostname,
            tty=record.runtime.tty,
            options=record.options,
            resources=record.runtime.resources,
            etc_files=self._etc_files_for(record),
            mount_sources=[self._mount_source(m.type, m.source, i) for i, m in enumerate(record.options.mounts)],
            cgroups_path=f"{self._oci.cgroup_parent}/{record.container_id}",
            all_capabilities=_ALL_CAPS,
            seccomp=None,
            network_hook=hook,
            init_binary=self._oci.init_binary,
        )
        config = runtime_config(inputs)
        profile = self._seccomp_profile(record)
        if profile is not None:
            caps = config["process"]["capabilities"]["effective"]
            config["linux"]["seccomp"] = oci_seccomp(profile, caps)
        (self.bundle / "config.json").write_text(json.dumps(config, indent=1))
        groups = [Path(f"/sys/fs/cgroup/memory{self._oci.cgroup_parent}/{record.container_id}")]
        self._dir.write_record(dataclasses.replace(record, cgroups=tuple(map(str, groups))))
        pid_file = self._dir.path / "container.pid"
        runtime_log = self._dir.path / "runtime.log"
        shim = await self._ctx.shim()
        cmd = [*shim, "run", "-s", str(self._dir.path), "-m", str(MAX_LOG_BYTES), "-P", str(pid_file)]
        if record.runtime.tty:
            cmd.append("-T")
        cmd += ["--", *self._oci.runtime_argv_with_log(runtime_log, "run", "--detach", "--pid-file", str(pid_file),
                                                      "--bundle", str(self.bundle), record.container_id)]
        try:
            await launch(cmd, ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"])
        except InvalidTaskSpec:
            raise
        except Exception as exc:
            why = _runtime_error(runtime_log)
            raise type(exc)(f"{exc}: {why}" if why else str(exc)) from None

    async def _remove(self) -> None:
        if not self._dir.exists():
            return
        record = self._record()
        if self._dir.started() and self._dir.exit() is None:
            await self.terminate()
        await _quiet(*self._oci.runtime_argv("delete", "--force", record.container_id))
        _remove_empty_cgroup_parents(self._oci.cgroup_parent)
        await unmount(self.rootfs)
        await unmount_files(self._dir.path / "files")
        if (book := self._ctx.addresses) is not None:
            book.release(record.container_id)
        self._dir.remove()

    def image_healthcheck(self) -> Mapping[str, Any] | None:
        """The image's HEALTHCHECK (the agent merges the service's Healthcheck over it)."""
        path = self._dir.path / "image.json"
        if not path.exists():
            return None
        check = json.loads(path.read_text()).get("healthcheck")
        return check if isinstance(check, dict) else None

    # ------------------------------------------------------- calls on the container (docker kill, ...)

    def groups(self) -> dict[str, Path]:
        """The runtime made the container's groups at its cgroupsPath, in every controller."""
        return cg.groups_of(f"{self._oci.cgroup_parent}/{self._record().container_id}")

    async def filesystem_root(self) -> str:
        """Through the container's pid while it runs (its volumes and /etc files included), else
        its root filesystem, mounted until the task is removed."""
        status = await self.inspect()
        if status.running and status.pid is not None:
            return f"/proc/{status.pid}/root"
        return str(self.rootfs)

    async def _relaunch(self) -> None:
        await _quiet(*self._oci.runtime_argv("delete", "--force", self._record().container_id))
        (self._dir.path / "container.pid").unlink(missing_ok=True)
        await super()._relaunch()

    async def _release(self) -> None:
        record = self._record()
        await _quiet(*self._oci.runtime_argv("delete", "--force", record.container_id))
        _remove_empty_cgroup_parents(self._oci.cgroup_parent)
        await unmount(self.rootfs)
        await unmount_files(self._dir.path / "files")
        if (book := self._ctx.addresses) is not None:
            book.release(record.container_id)

    # ------------------------------------------------------------------------------------ helpers

    def _seccomp_profile(self, record: TaskRecord) -> Mapping[str, Any] | None:
        """Docker's default profile, the task's own (custom), or none (unconfined)."""
        mode = record.options.seccomp_mode
        if mode == "unconfined":
            return None
        if mode == "custom":
            profile: dict[str, Any] = json.loads(record.options.seccomp_profile)
            return profile
        return self._oci.seccomp_profile

    def _container_user(self, record: TaskRecord, spec: str) -> ContainerUser:
        return container_user(self.rootfs, spec, record.options.groups)

    def _etc_files_for(self, record: TaskRecord) -> dict[str, Path]:
        opts = record.options
        try:
            host_resolv = Path("/etc/resolv.conf").read_text()
        except OSError:
            host_resolv = ""
        contents = {
            "hosts": hosts_file(record.hostname, record.address, opts.extra_hosts),
            "hostname": record.hostname + "\n",
            "resolv.conf": resolv_conf(
                host_resolv, opts.dns_nameservers or self._ctx.dns_servers, opts.dns_search, opts.dns_options
            ),
        }
        files = {}
        for name, text in contents.items():
            (self._dir.path / name).write_text(text)
            files[f"/etc/{name}"] = self._dir.path / name
        return files

    def _mount_source(self, kind: str, source: str, index: int) -> Path | None:
        if kind == "bind":
            return Path(source)
        if kind == "volume":
            if source:
                return self._oci.volumes.data_dir(source)
            anonymous = self._dir.path / "volumes" / str(index)  # goes with the task
            anonymous.mkdir(parents=True, exist_ok=True)
            return anonymous
        return None


def _remove_empty_cgroup_parents(parent: str, root: Path = Path("/sys/fs/cgroup")) -> None:
    """The runtime deletes a container's cgroups but not the executor's parent it made beside them
    in every controller; rmdir it where nothing else is left in it (rmdir fails otherwise)."""
    for group in root.glob("*" + parent):
        with contextlib.suppress(OSError):
            group.rmdir()


def _with_home(env: tuple[str, ...], home: str) -> tuple[str, ...]:
    if any(e.startswith("HOME=") for e in env):
        return env
    return (*env, f"HOME={home}")


def _runtime_error(log_path: Path) -> str:
    """The runtime's last error line (runc and crun write JSON lines with --log-format json)."""
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    for line in reversed(lines):
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if entry.get("level") in ("error", "fatal"):
                return str(entry.get("msg", ""))
    return lines[-1] if lines else ""


async def _quiet(*argv: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    await proc.wait()
