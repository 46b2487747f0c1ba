"""Namespaced sysctls for an isolated task: shell lines for the network hook (run on the host with
the task's pid as $1) that write them inside the task's network or IPC namespace."""

from __future__ import annotations

import shlex
from collections.abc import Sequence


def sysctl_script(sysctls: Sequence[tuple[str, str]]) -> str:
    lines = []
    for key, value in sysctls:
        namespace = "net" if key.startswith("net.") else "ipc"  # taskoptions allows only these two kinds
        path = "/proc/sys/" + key.replace(".", "/")
        write = f"printf '%s\\n' {shlex.quote(value)} > {shlex.quote(path)}"
        lines.append(f'nsenter --{namespace}=/proc/$1/ns/{namespace} sh -c {shlex.quote(write)}\n')
    return "".join(lines)
