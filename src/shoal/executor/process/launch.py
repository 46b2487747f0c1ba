"""Building the shim's command lines (pure), and running the shim to start a task."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from shoal.executor.errors import ExecutorError, TemporaryExecutorError
from shoal.executor.process.users import Identity


def identity_args(identity: Identity | None) -> list[str]:
    if identity is None:
        return []
    return ["-u", str(identity.uid), "-g", str(identity.gid), "-G", ",".join(map(str, identity.groups))]


def run_argv(
    shim: Sequence[str],
    *,
    state: Path,
    argv: list[str] | tuple[str, ...],
    isolated: bool,
    hostname: str | None,
    identity: Identity | None,
    workdir: str | None,
    cgroup_procs: list[Path],
    hook: str | None,
    binds: list[tuple[Path, Path]],
    max_log_bytes: int,
    tty: bool = False,
    init: bool = False,
    rlimits: list[tuple[str, int, int]] | None = None,
    readonly_root: bool = False,
    mounts: list[str] | None = None,
) -> list[str]:
    """`shim run ...` for one task. Hostname, hook, binds and init only mean something with
    namespaces (init: a signal-forwarding pid 1 instead of the workload itself, as --init)."""
    cmd = [*shim, "run", "-s", str(state), "-m", str(max_log_bytes)]
    if isolated:
        cmd.append("-n")
        if hostname:
            cmd += ["-h", hostname]
        if hook:
            cmd += ["-k", hook]
        for source, target in binds:
            cmd += ["-b", f"{source}:{target}"]
        if init:
            cmd.append("-I")
        for spec in mounts or ():
            cmd += ["-x", spec]
        if readonly_root:
            cmd.append("-R")
    if tty:
        cmd.append("-T")
    for name, soft, hard in rlimits or ():
        cmd += ["-r", f"{name}={soft}:{hard}"]
    cmd += identity_args(identity)
    if workdir:
        cmd += ["-w", workdir]
    for procs in cgroup_procs:
        cmd += ["-c", str(procs)]
    return [*cmd, "--", *argv]


def exec_argv(
    shim: Sequence[str],
    *,
    target_pid: int,
    argv: list[str],
    isolated: bool,
    identity: Identity | None,
    workdir: str | None,
    cgroup_procs: list[Path],
    tty: bool = False,
) -> list[str]:
    cmd = [*shim, "exec", "-t", str(target_pid)]
    if isolated:
        cmd.append("-n")
    if tty:
        cmd.append("-T")
    cmd += identity_args(identity)
    if workdir:
        cmd += ["-w", workdir]
    for procs in cgroup_procs:
        cmd += ["-c", str(procs)]
    return [*cmd, "--", *argv]


def parse_report(text: str) -> int:
    """The shim's one-line answer: "ok <pid>" → pid; "error <why>" → ExecutorError(why)."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    verb, _, rest = line.partition(" ")
    if verb == "ok" and rest.isdigit():
        return int(rest)
    if verb == "error":
        raise ExecutorError(f"starting container process failed: {rest}")
    raise TemporaryExecutorError(f"task supervisor gave no answer: {text.strip()!r}")


async def launch(cmd: list[str], env: list[str]) -> int:
    """Run the shim launcher; it returns once the supervisor is detached and the workload started."""
    environment = dict(entry.partition("=")[::2] for entry in env)
    proc = await asyncio.create_subprocess_exec(
        *cmd,
        env=environment,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await proc.communicate()
    return parse_report(output.decode(errors="replace"))
