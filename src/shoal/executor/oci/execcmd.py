"""`docker exec` as the OCI runtime's exec, wrapped so a command that never started exits 126 as
Docker's does (the runtime exits 255 then, like a command of its own could)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

# $1: the pid file the runtime writes once the process runs; the rest: the runtime's command line
_WRAPPER = 'pf=$1; shift; "$@"; rc=$?; [ -s "$pf" ] || rc=126; rm -f "$pf"; exit $rc'


def exec_command(
    runtime: Sequence[str],
    *,
    container_id: str,
    argv: Sequence[str],
    env: Sequence[str],
    user: str | None,
    workdir: str | None,
    tty: bool,
    pid_file: Path,
    extra_groups: Sequence[str] = (),
) -> list[str]:
    cmd = [*runtime, "exec", "--pid-file", str(pid_file)]
    for entry in env:
        cmd += ["--env", entry]
    if user:
        cmd += ["--user", user]
    for group in extra_groups:
        if group.isdigit():
            cmd += ["--additional-gids", group]
    if workdir:
        cmd += ["--cwd", workdir]
    if tty:
        cmd.append("--tty")
    return ["/bin/sh", "-c", _WRAPPER, "sh", str(pid_file), *cmd, container_id, *argv]
