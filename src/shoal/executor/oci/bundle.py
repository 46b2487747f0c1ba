"""The OCI runtime config (config.json) for one task, with Docker's container defaults (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shoal.api.defaults import NANOS
from shoal.executor.base import Resources
from shoal.executor.oci.passwd import ContainerUser
from shoal.executor.taskfiles import BIND_OPTIONS
from shoal.executor.taskoptions import MountSpec, TaskOptions

# dockerd's default capability set (oci/caps/defaults.go)
DEFAULT_CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
    "CAP_KILL", "CAP_AUDIT_WRITE",
)
MASKED_PATHS = (
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
    "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
)
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
INIT_PATH = "/sbin/docker-init"
CFS_PERIOD = 100_000


def capabilities(options: TaskOptions, all_caps: Sequence[str]) -> list[str]:
    """Docker's rule: start from the defaults (or everything for ALL), add, then drop."""
    caps = list(all_caps) if "ALL" in options.cap_add else list(DEFAULT_CAPABILITIES)
    caps += [c for c in options.cap_add if c != "ALL" and c not in caps]
    if "ALL" in options.cap_drop:
        caps = [c for c in caps if c in options.cap_add]
    return [c for c in caps if c not in options.cap_drop]


def _default_mounts() -> list[dict[str, Any]]:
    return [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["ro", "nosuid", "noexec", "nodev"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"]},
    ]


def user_mount(mount: MountSpec, source: Path | None) -> dict[str, Any]:
    """A --mount entry; `source` is the host directory (a bind's own, a volume's data dir)."""
    ro = ["ro"] if mount.read_only else ["rw"]
    if mount.type == "tmpfs":
        options = ["nosuid", "nodev", "noexec", f"mode={oct(mount.tmpfs_mode or 0o1777)[2:]}"]
        if mount.tmpfs_size:
            options.append(f"size={mount.tmpfs_size}")
        return {"destination": mount.target, "type": "tmpfs", "source": "tmpfs", "options": options + ro}
    propagation = mount.propagation or "rprivate"
    return {"destination": mount.target, "type": "bind", "source": str(source), "options": ["rbind", propagation, *ro]}


@dataclass(frozen=True)
class BundleInputs:
    argv: Sequence[str]
    env: Sequence[str]
    cwd: str
    user: ContainerUser
    hostname: str
    tty: bool
    options: TaskOptions
    resources: Resources
    etc_files: Mapping[str, Path]  # /etc/hosts, /etc/hostname, /etc/resolv.conf → the task's copies
    mount_sources: Sequence[Path | None]  # one per options.mounts
    cgroups_path: str
    all_capabilities: Sequence[str]
    seccomp: Mapping[str, Any] | None  # OCI form, or None: unconfined
    network_hook: str | None  # shell run with the container's pid as $1 once namespaces exist
    init_binary: Path | None  # bind-mounted at /sbin/docker-init when options.init
    # secrets and configs: (target in the container, file on the task's tmpfs) from executor.taskfiles
    task_files: Sequence[tuple[str, Path]] = ()


def runtime_config(inputs: BundleInputs) -> dict[str, Any]:
    opts = inputs.options
    caps = capabilities(opts, inputs.all_capabilities)
    argv = list(inputs.argv)
    mounts = _default_mounts()
    for target, copy in inputs.etc_files.items():
        mounts.append({"destination": target, "type": "bind", "source": str(copy), "options": ["rbind", "rprivate"]})
    for mount, source in zip(opts.mounts, inputs.mount_sources, strict=True):
        mounts.append(user_mount(mount, source))
    for target, source in inputs.task_files:  # after the user's mounts: a secret over a volume stays visible
        mounts.append({"destination": target, "type": "bind", "source": str(source), "options": list(BIND_OPTIONS)})
    if opts.init and inputs.init_binary is not None:
        mounts.append({"destination": INIT_PATH, "type": "bind", "source": str(inputs.init_binary),
                       "options": ["rbind", "ro"]})
        argv = [INIT_PATH, "--", *argv]
    linux: dict[str, Any] = {
        "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
        "maskedPaths": list(MASKED_PATHS),
        "readonlyPaths": list(READONLY_PATHS),
        "cgroupsPath": inputs.cgroups_path,
        "resources": _resources(inputs.resources),
        "sysctl": dict(opts.sysctls),
    }
    if inputs.seccomp is not None:
        linux["seccomp"] = dict(inputs.seccomp)
    config: dict[str, Any] = {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,  # a task's terminal is the supervisor's pty, inherited as stdio
            "user": {"uid": inputs.user.uid, "gid": inputs.user.gid,
                     "additionalGids": list(inputs.user.additional_gids)},
            "args": argv,
            "env": list(inputs.env),
            "cwd": inputs.cwd,
            "capabilities": {k: caps for k in ("bounding", "effective", "permitted")},
            "rlimits": [{"type": f"RLIMIT_{u.name.upper()}", "soft": u.soft, "hard": u.hard} for u in opts.ulimits],
            "noNewPrivileges": opts.no_new_privileges,
            "oomScoreAdj": 0,
        },
        "root": {"path": "rootfs", "readonly": opts.read_only},
        "hostname": inputs.hostname,
        "mounts": mounts,
        "linux": linux,
    }
    if inputs.network_hook:
        # runtime hooks get the container's state (JSON with "pid") on stdin
        script = 'set -- "$(tr , "\\n" | sed -n "s/^ *\\"pid\\": *\\([0-9]*\\).*/\\1/p")"\n' + inputs.network_hook
        config["hooks"] = {"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", script]}]}
    return config


def _resources(resources: Resources) -> dict[str, Any]:
    out: dict[str, Any] = {"devices": [{"allow": False, "access": "rwm"}]}
    if resources.memory_bytes:
        out["memory"] = {"limit": resources.memory_bytes}
    if resources.pids_limit:
        out["pids"] = {"limit": resources.pids_limit}
    if resources.nano_cpus:
        out["cpu"] = {"quota": resources.nano_cpus * CFS_PERIOD // NANOS, "period": CFS_PERIOD}
    return out
