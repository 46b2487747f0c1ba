"""`docker exec` as the OCI runtime's exec, with the whole process given as a file (the container's
own process, its args, env, cwd, user and terminal replaced) so nothing of the task's user leaks into
an exec as another user; wrapped so a command that never started exits 126 as Docker's does (the
runtime exits 255 then, like a command of its own could)."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from shoal.executor.oci.passwd import ContainerUser

# $1: the pid file the runtime writes once the process runs, $2 the process file; then the runtime's
# command line. Both files go once the exec is over.
_WRAPPER = 'pf=$1; jf=$2; shift 2; "$@"; rc=$?; [ -s "$pf" ] || rc=126; rm -f "$pf" "$jf"; exit $rc'


def exec_process(
    container_process: Mapping[str, Any],
    *,
    argv: Sequence[str],
    env: Sequence[str],
    user: ContainerUser,
    cwd: str | None,
    tty: bool,
) -> dict[str, Any]:
    """The exec's process: the container's (capabilities, rlimits, no-new-privileges) with these."""
    process = copy.deepcopy(dict(container_process))
    process.update({
        "args": list(argv),
        "env": list(env),
        "user": {"uid": user.uid, "gid": user.gid, "additionalGids": list(user.additional_gids)},
        "terminal": tty,
    })
    if cwd:
        process["cwd"] = cwd
    return process


def exec_command(
    runtime: Sequence[str], *, container_id: str, process_file: Path, pid_file: Path, tty: bool
) -> list[str]:
    cmd = [*runtime, "exec", "--pid-file", str(pid_file), "--process", str(process_file)]
    if tty:
        cmd.append("--tty")
    return ["/bin/sh", "-c", _WRAPPER, "sh", str(pid_file), str(process_file), *cmd, container_id]
