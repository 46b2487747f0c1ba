"""The process executor's Controller: one task, driven through files in its state directory, so a
restarted shoald picks up exactly where the previous one was."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import logging
import os
import re
import signal
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

from shoal.api.errors import Conflict
from shoal.base.clock import parse_rfc3339
from shoal.base.ids import new_container_id
from shoal.executor.base import (
    ContainerState,
    ContainerStatus,
    LogLine,
    PortBinding,
    ResourceSample,
    TaskRuntime,
    host_mode_unpublished,
    parse_signal,
)
from shoal.executor.errors import CommandRequired, ContainerNotFound, ContainerNotRunning, InvalidTaskSpec
from shoal.executor.host_port_choice import choose_host_ports
from shoal.executor.limits_check import check_limits
from shoal.executor.process import cgroups as cg
from shoal.executor.process import procfs
from shoal.executor.process.context import ProcessContext
from shoal.executor.process.etcfiles import hosts_file, resolv_conf
from shoal.executor.process.launch import launch, run_argv
from shoal.executor.process.logfile import follow_lines, read_lines, select
from shoal.executor.process.mounts import check_targets, check_task_files, shim_specs, task_file_specs
from shoal.executor.process.procfs import is_same_process
from shoal.executor.process.status import task_environment
from shoal.executor.process.support import check_supported
from shoal.executor.process.sysctls import sysctl_script
from shoal.executor.process.taskdir import TaskDir, TaskRecord
from shoal.executor.process.users import Identity, current_identity, resolve_user, with_groups
from shoal.executor.taskfiles import mount_files, unmount_files
from shoal.executor.taskoptions import check_bind_sources, task_options
from shoal.network.tasknet import network_attachments, setup_script

log = logging.getLogger(__name__)

MAX_LOG_BYTES = 10 * 1024 * 1024
PREVIOUS_EXIT = "exit.previous"  # the exit of the run before a `docker restart`
VANISHED_EXIT_CODE = 255
_POLL = 0.05


_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


class ProcessController:
    def __init__(self, context: ProcessContext, runtime: TaskRuntime) -> None:
        if not _SAFE_ID.fullmatch(runtime.task_id) or ".." in runtime.task_id:
            raise InvalidTaskSpec(f"invalid task id {runtime.task_id!r}")  # it names a directory
        self._ctx = context
        self._runtime = runtime
        self._dir = context.task_dir(runtime.task_id)

    @property
    def runtime(self) -> TaskRuntime:
        return self._runtime

    # ------------------------------------------------------------------------------------ lifecycle

    async def prepare(self) -> None:
        async with self._ctx.task_lock(self._runtime.task_id):
            await self._prepare()

    async def _prepare(self) -> None:
        if self._dir.exists():
            return
        rt = self._runtime
        if not rt.argv:
            raise CommandRequired("process")
        try:
            parse_signal(rt.stop_signal)
        except ValueError as exc:
            raise InvalidTaskSpec(str(exc)) from None
        check_limits(rt)  # dockerd refuses these when it creates the container
        options = task_options(rt)
        check_bind_sources(options)
        check_supported(options, isolated=self._ctx.isolate)
        check_targets(options.mounts)
        check_task_files(rt.files, self._ctx.isolate)
        identity = with_groups(resolve_user(rt.user), options.groups)
        if rt.workdir and not os.path.isdir(rt.workdir):
            raise InvalidTaskSpec(f"process executor: working directory {rt.workdir} does not exist")
        for reason in self._ctx.cgroups.unsupported(rt.resources):
            log.warning("task %s: limit discarded: %s", rt.task_id, reason)
        container_id = new_container_id()
        hostname = rt.hostname or container_id[:12]
        home = (identity or current_identity()).home
        address = None
        if self._ctx.isolate and (book := self._ctx.addresses) is not None:
            address = str(book.allocate(container_id))
        record = TaskRecord(
            runtime=self._with_chosen_host_ports(rt) if self._ctx.isolate else rt,
            container_id=container_id,
            created_at=self._ctx.clock.now(),
            hostname=hostname,
            argv=tuple(rt.argv),
            env=tuple(task_environment(rt.env, hostname=hostname, home=home, path=self._ctx.daemon_path)),
            isolated=self._ctx.isolate,
            address=address,
            cgroups=(),
            options=options,
        )
        self._dir.write_record(record)

    async def start(self) -> None:
        async with self._ctx.task_lock(self._runtime.task_id):
            await self._start()

    async def _start(self) -> None:
        record = self._record()
        if self._dir.started():
            return
        shim = await self._ctx.shim()
        groups = self._ctx.cgroups.create(record.container_id, record.runtime.resources)
        record = dataclasses.replace(record, cgroups=tuple(map(str, groups)))
        self._dir.write_record(record)
        hook = None
        binds: list[tuple[Path, Path]] = []
        if record.isolated:
            await self._ctx.ensure_network()
            if self._ctx.network is not None and record.address is not None:
                hook = setup_script(self._ctx.network, record.container_id, ipaddress.IPv4Address(record.address),
                                    network_attachments(self._runtime.raw_task))
                hook += sysctl_script(record.options.sysctls)
            binds = self._etc_files(record)
        if record.options.sysctls and hook is None:  # they are written by the network hook
            raise InvalidTaskSpec("process executor cannot apply --sysctl: the task has no network namespace")
        # secrets and configs: on a tmpfs of the task's own, bound by the shim inside its namespace
        file_pairs = await mount_files(self._runtime.files, self._dir.path / "files") if record.isolated else ()
        cmd = run_argv(
            shim,
            state=self._dir.path,
            argv=record.argv,
            isolated=record.isolated,
            hostname=record.hostname,
            identity=_identity(record),
            workdir=record.runtime.workdir,
            cgroup_procs=[g / "cgroup.procs" for g in groups],
            hook=hook,
            binds=binds,
            max_log_bytes=MAX_LOG_BYTES,
            tty=record.runtime.tty,
            init=record.options.init,
            rlimits=[(u.name, u.soft, u.hard) for u in record.options.ulimits],
            readonly_root=record.options.read_only,
            mounts=shim_specs(record.options.mounts, self._ctx.state_dir / "volumes", self._dir.path)
            + task_file_specs(file_pairs),
        )
        await launch(cmd, list(record.env))

    async def wait(self) -> ContainerStatus:
        if not self._dir.started():
            raise ContainerNotRunning(self._record().container_id)
        while self._dir.exit() is None:
            supervisor = self._dir.supervisor()
            if supervisor is not None and is_same_process(supervisor.pid, supervisor.start_time):
                await _until_exit(supervisor.pid)
                if self._dir.exit() is None and self._dir.supervisor() != supervisor:
                    return await self._previous_run()  # `docker restart` ran it again meanwhile
                continue
            if self._dir.exit() is None:
                await asyncio.sleep(_POLL)  # the supervisor writes `exit` just before it goes
                if self._dir.exit() is None:
                    self._mark_vanished()

        return await self.inspect()

    async def inspect(self) -> ContainerStatus:
        """With the host ports the node's mesh routes to it while it runs (an isolated task's)."""
        record = self._record()
        status = status_of(self._dir, record)
        if status.running and record.isolated:
            return dataclasses.replace(status, host_ports=record.runtime.host_bindings)
        return status

    def _with_chosen_host_ports(self, rt: TaskRuntime) -> TaskRuntime:
        """The runtime to record, with a free host port chosen for each host-mode port published as 0
        (Swarm's engine picks one; here the node's mesh routes it to the task's own address)."""
        wanted = host_mode_unpublished(rt.raw_task)
        if not wanted:
            return rt
        taken = {(b.protocol, b.host_port) for task_dir in self._ctx.task_dirs() for b in _recorded_ports(task_dir)}
        try:
            chosen = choose_host_ports(wanted, taken)
        except OSError as exc:
            raise InvalidTaskSpec(f"no free host port for the task: {exc}") from None
        return dataclasses.replace(rt, host_ports=(*rt.host_bindings, *chosen))

    async def shutdown(self, grace: float | None = None) -> None:
        status = await self.inspect()
        if status.state is not ContainerState.RUNNING or status.pid is None:
            return
        if grace is None:
            grace = self._runtime.stop_grace_period
        # the record's: an executor may have taken the image's stop signal at prepare
        self._signal(status.pid, parse_signal(self._record().runtime.stop_signal))
        self.thaw()  # a paused task takes its stop signal once thawed (dockerd unpauses it too)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wait(), timeout=max(grace, 0.0))
            return
        await self.terminate()

    async def terminate(self) -> None:
        status = await self.inspect()
        if status.state is not ContainerState.RUNNING or status.pid is None:
            return
        self._signal(status.pid, signal.SIGKILL)
        if not self._record().isolated:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(status.pid, signal.SIGKILL)  # what the workload forked goes too
        self.thaw()  # frozen processes die only once thawed
        await self.wait()

    async def remove(self) -> None:
        async with self._ctx.task_lock(self._runtime.task_id):
            await self._remove()
        self._ctx.forget_task(self._runtime.task_id)

    async def _remove(self) -> None:
        if not self._dir.exists():
            return
        record = self._record()
        if self._dir.started() and self._dir.exit() is None:
            await self.terminate()
        await cg.remove_groups(record.cgroups)
        if (book := self._ctx.addresses) is not None:
            book.release(record.container_id)
        await unmount_files(self._dir.path / "files")
        self._dir.remove()

    def logs(
        self, *, follow: bool = False, tail: int | None = None, since: datetime | None = None
    ) -> AsyncIterator[LogLine]:
        return task_logs(self._dir, follow=follow, tail=tail, since=since)

    # ------------------------------------------------------- calls on the container (docker kill, ...)

    REMOVED_MARK = "removed"

    def removed(self) -> bool:
        """`docker rm` took it: hidden from the container calls, its exit kept for the agent."""
        return (self._dir.path / self.REMOVED_MARK).exists()

    async def running_pid(self) -> int:
        status = await self.inspect()
        if status.state is not ContainerState.RUNNING or status.pid is None:
            raise ContainerNotRunning(status.container_id)
        return status.pid

    async def kill(self, sig: signal.Signals) -> None:
        pid = await self.running_pid()
        self._signal(pid, sig)
        if sig == signal.SIGKILL and not self._record().isolated:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, sig)
        self.thaw()  # a frozen process takes its signal once thawed, as dockerd unpauses to kill

    def groups(self) -> dict[str, Path]:
        """The container's cgroup directories by controller (the process executor makes groups only
        for the limits a task sets)."""
        return cg.groups_by_controller(self._record().cgroups)

    def thaw(self) -> None:
        with contextlib.suppress(OSError):
            cg.freeze(self.groups(), False)

    async def set_paused(self, paused: bool) -> None:
        status = await self.inspect()
        if status.state is not ContainerState.RUNNING:
            raise ContainerNotRunning(status.container_id)
        groups = self.groups()
        if cg.is_frozen(groups) == paused:
            word = "already paused" if paused else "not paused"
            raise Conflict(f"Container {status.container_id} is {word}")
        if not cg.freeze(groups, paused):
            raise Conflict(f"Cannot pause container {status.container_id}: it has no freezer cgroup "
                                    "(the process executor gives one only to tasks with resource limits)")

    def paused(self) -> bool:
        return cg.is_frozen(self.groups())

    async def sample(self) -> ResourceSample:
        status = await self.inspect()
        now = self._ctx.clock.now()
        groups = self.groups()
        usage = cg.read_usage(groups)
        if status.running and status.pid is not None:
            if "cpu_total_ns" not in usage:  # no cgroup of its own: add up its process tree
                times = [procfs.cpu_ns(pid, cg.TICK_NS) for pid in procfs.tree(status.pid)]
                usage.update(cpu_user_ns=sum(t[0] for t in times), cpu_kernel_ns=sum(t[1] for t in times))
                usage["cpu_total_ns"] = usage["cpu_user_ns"] + usage["cpu_kernel_ns"]  # type: ignore[operator]
            if "memory_usage" not in usage:
                usage["memory_usage"] = sum(procfs.rss_bytes(pid) for pid in procfs.tree(status.pid))
            if "pids_current" not in usage:
                usage["pids_current"] = len(procfs.tree(status.pid))
            usage["networks"] = procfs.network_counters(status.pid) if self._record().isolated else {}
        system = cg.system_cpu_ns(Path("/proc/stat").read_text())
        return ResourceSample(read_at=now, system_cpu_ns=system, online_cpus=os.cpu_count() or 1,
                              **usage)  # type: ignore[arg-type]

    async def pids(self) -> list[int]:
        pid = await self.running_pid()
        return cg.group_pids(self.groups()) or procfs.tree(pid)

    async def filesystem_root(self) -> str:
        """The task's files as it sees them: through its pid's root while it runs. A stopped process
        task has no files of its own (it saw the host's), so there is nothing to copy."""
        status = await self.inspect()
        if status.running and status.pid is not None:
            return f"/proc/{status.pid}/root"
        raise ContainerNotRunning(status.container_id)

    async def restart(self, grace: float | None) -> None:
        """`docker restart`: stop it (its task fails and is replaced, as in Swarm), then run the same
        container again from its state directory; it lives on until the agent removes its task."""
        if (await self.inspect()).running:
            await self.shutdown(grace)
        async with self._ctx.task_lock(self._runtime.task_id):
            await self._relaunch()

    async def _relaunch(self) -> None:
        # a wait() on the stopped run (the agent's) ends with that run's exit, kept aside
        os.replace(self._dir.path / "exit", self._dir.path / PREVIOUS_EXIT)
        for name in ("supervisor", "pid", "error"):
            (self._dir.path / name).unlink(missing_ok=True)
        await self._start()

    async def _previous_run(self) -> ContainerStatus:
        lines = (self._dir.path / PREVIOUS_EXIT).read_text().split("\n")
        return dataclasses.replace(await self.inspect(), state=ContainerState.EXITED, pid=None,
                                   exit_code=int(lines[0]), finished_at=parse_rfc3339(lines[1]))

    async def remove_keeping_exit(self, force: bool) -> None:
        """`docker rm [-f]`: kill it (with force), free what it holds, and hide it; the exit record
        stays for the agent, which sees the task fail and removes the rest with the task."""
        async with self._ctx.task_lock(self._runtime.task_id):
            status = await self.inspect()
            if status.state is ContainerState.RUNNING:
                if not force:
                    word = "paused" if self.paused() else "running"
                    hint = ("Unpause and then stop the container before attempting removal or force remove"
                            if word == "paused" else "Stop the container before attempting removal or force remove")
                    raise Conflict(f"You cannot remove a {word} container {status.container_id}. {hint}")
                if self._dir.started():
                    await self.terminate()
            await self._release()
            (self._dir.path / self.REMOVED_MARK).write_text("")

    async def _release(self) -> None:
        """Free what a stopped container still holds (cgroups, its address), keeping its records."""
        record = self._record()
        await cg.remove_groups(record.cgroups)
        if (book := self._ctx.addresses) is not None:
            book.release(record.container_id)

    # ------------------------------------------------------------------------------------ helpers

    def _record(self) -> TaskRecord:
        if not self._dir.exists():
            raise ContainerNotFound(self._runtime.container_name)
        return self._dir.read_record()

    def _signal(self, pid: int, sig: signal.Signals) -> None:
        process = self._dir.process()
        if process is None or process.pid != pid or not is_same_process(pid, process.start_time):
            return  # gone already, and the pid may name someone else now
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)

    def settle_if_unsupervised(self) -> None:
        """After a daemon restart: a started task whose supervisor is gone (host reboot, shim killed)
        gets an exit record once its workload is gone too, so it is not reported running forever."""
        if not self._dir.started() or self._dir.exit() is not None:
            return
        supervisor = self._dir.supervisor()
        if supervisor is None or not is_same_process(supervisor.pid, supervisor.start_time):
            self._mark_vanished()

    def _mark_vanished(self) -> None:
        """Neither supervisor nor exit file: the host rebooted or the shim was killed."""
        process = self._dir.process()
        if process is not None and is_same_process(process.pid, process.start_time):
            return  # the workload still runs unsupervised; keep reporting it as running
        self._dir.write_exit(VANISHED_EXIT_CODE, self._ctx.clock.now(), "task process vanished (supervisor gone)")

    def _etc_files(self, record: TaskRecord) -> list[tuple[Path, Path]]:
        """The task's own /etc/hosts, /etc/hostname and /etc/resolv.conf (bind-mounted in its
        mount namespace over the host's, which must exist to be covered)."""
        try:
            host_resolv = Path("/etc/resolv.conf").read_text()
        except OSError:
            host_resolv = ""
        opts = record.options
        contents = {
            "hosts": hosts_file(record.hostname, record.address, opts.extra_hosts),
            "hostname": record.hostname + "\n",
            "resolv.conf": resolv_conf(
                host_resolv, opts.dns_nameservers or self._ctx.dns_servers, opts.dns_search, opts.dns_options
            ),
        }
        binds = []
        for name, text in contents.items():
            (self._dir.path / name).write_text(text)
            if Path("/etc", name).exists():
                binds.append((self._dir.path / name, Path("/etc", name)))
        return binds


def _identity(record: TaskRecord) -> Identity | None:
    return with_groups(resolve_user(record.runtime.user), record.options.groups)


def status_of(task_dir: TaskDir, record: TaskRecord) -> ContainerStatus:
    process = task_dir.process()
    exited = task_dir.exit()
    common = {
        "container_id": record.container_id,
        "created_at": record.created_at,
        "address": record.address,
        "hostname": record.hostname,
        "error": task_dir.error(),
    }
    if exited is not None:
        return ContainerStatus(
            state=ContainerState.EXITED,
            pid=None,
            exit_code=exited.code,
            oom_killed=exited.code == 137 and cg.oom_kills(record.cgroups) > 0,
            started_at=process.started_at if process else None,
            finished_at=exited.finished_at,
            **common,  # type: ignore[arg-type]
        )
    if process is not None:
        return ContainerStatus(
            state=ContainerState.RUNNING,
            pid=process.pid,
            started_at=process.started_at,
            **common,  # type: ignore[arg-type]
        )
    return ContainerStatus(state=ContainerState.CREATED, **common)  # type: ignore[arg-type]


async def task_logs(
    task_dir: TaskDir, *, follow: bool, tail: int | None, since: datetime | None
) -> AsyncIterator[LogLine]:
    if not follow:
        for line in select(read_lines(task_dir.log_path), tail=tail, since=since):
            yield line
        return
    finished = lambda: task_dir.exit() is not None or not task_dir.exists()  # noqa: E731
    async for line in follow_lines(task_dir.log_path, tail=tail, since=since, finished=finished):
        yield line


async def _until_exit(pid: int) -> None:
    """Return when process `pid` (not our child) exits: a pidfd where the kernel has them."""
    try:
        fd = os.pidfd_open(pid)
    except (OSError, AttributeError):
        while os.path.exists(f"/proc/{pid}"):
            await asyncio.sleep(_POLL)
        return
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def on_exit() -> None:
        if not done.done():
            done.set_result(None)

    loop.add_reader(fd, on_exit)
    try:
        await done
    finally:
        loop.remove_reader(fd)
        os.close(fd)


def _recorded_ports(task_dir: TaskDir) -> tuple[PortBinding, ...]:
    """The host ports another task of this node holds (none if its record cannot be read)."""
    try:
        return task_dir.read_record().runtime.host_bindings
    except (OSError, ValueError, KeyError):
        return ()
