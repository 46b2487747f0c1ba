"""Which OCI runtime runs containers here (crun preferred, runc otherwise) and whether the oci
executor can run at all: root, overlayfs, a runtime that works with this host's cgroups."""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RuntimeChoice:
    path: str | None
    why: str  # why this runtime, or why none


def _filesystems() -> str:
    try:
        return Path("/proc/filesystems").read_text()
    except OSError:
        return ""


def cgroup_hybrid_with_controllers(root: Path = Path("/sys/fs/cgroup")) -> bool:
    """cgroup v1 with a v2 tree that owns controllers: crun refuses such hosts, runc copes."""
    unified = root / "unified" / "cgroup.controllers"
    try:
        return bool(unified.read_text().split())
    except OSError:
        return False


def choose_runtime(preferred: str | None = None) -> RuntimeChoice:
    """`preferred` (a name or path) if given; else crun, unless this host's cgroup layout defeats it."""
    if preferred:
        path = shutil.which(preferred)
        return RuntimeChoice(path, f"{preferred} as configured" if path else f"{preferred} not found")
    crun, runc = shutil.which("crun"), shutil.which("runc")
    if crun and not cgroup_hybrid_with_controllers():
        return RuntimeChoice(crun, "crun found")
    if runc:
        why = "runc found" if not crun else "runc: crun refuses this host's hybrid cgroup layout"
        return RuntimeChoice(runc, why)
    if crun:
        return RuntimeChoice(None, "crun refuses this host's hybrid cgroup layout and runc is not installed")
    return RuntimeChoice(None, "no OCI runtime found (apt-get install crun or runc)")


def unavailable_reason(runtime: RuntimeChoice) -> str | None:
    """Why the oci executor cannot run here, or None."""
    if not sys.platform.startswith("linux"):
        return "containers need Linux"
    if os.geteuid() != 0:
        return "containers need root"
    if "overlay" not in _filesystems():
        return "the kernel has no overlayfs"
    for tool in ("ip", "nsenter", "iptables", "mount", "umount"):
        if shutil.which(tool) is None:
            return f"{tool} missing (apt-get install iproute2 util-linux iptables mount)"
    if runtime.path is None:
        return runtime.why
    return None
