"""Pure helpers for what the process executor reports: `docker ps` status text and the environment
a task starts with."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shoal.executor.base import ContainerState

if TYPE_CHECKING:
    from shoal.executor.process.taskdir import TaskRecord

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def human_duration(delta: timedelta) -> str:
    """As Docker's units.HumanDuration ("Up 18 seconds", "About a minute", "3 hours", ...)."""
    seconds = int(delta.total_seconds())
    if seconds < 1:
        return "Less than a second"
    if seconds == 1:
        return "1 second"
    if seconds < 60:
        return f"{seconds} seconds"
    minutes = seconds // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(delta.total_seconds() / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(delta.total_seconds() / 3600 / 24 / 365)} years"


def status_text(
    state: ContainerState,
    *,
    exit_code: int | None,
    started_at: datetime | None,
    finished_at: datetime | None,
    now: datetime,
) -> str:
    if state is ContainerState.RUNNING and started_at is not None:
        return f"Up {human_duration(now - started_at)}"
    if state is ContainerState.EXITED and finished_at is not None:
        return f"Exited ({exit_code}) {human_duration(now - finished_at)} ago"
    return "Created"


def task_environment(
    task_env: tuple[str, ...] | list[str], *, hostname: str, home: str, path: str | None, tty: bool = False
) -> list[str]:
    """PATH (the daemon's: the command runs on this host), HOSTNAME and HOME as Docker sets them,
    then the task's own variables, which win; order kept, one entry per name."""
    merged: dict[str, str] = {"PATH": f"PATH={path or DEFAULT_PATH}", "HOSTNAME": f"HOSTNAME={hostname}"}
    if tty:
        merged["TERM"] = "TERM=xterm"
    for entry in task_env:
        name = entry.partition("=")[0]
        merged[name] = entry if "=" in entry else f"{name}="
    merged.setdefault("HOME", f"HOME={home}")
    return list(merged.values())


def env_dict(entries: list[str] | tuple[str, ...]) -> dict[str, str]:
    return dict(entry.partition("=")[::2] for entry in entries)


def inspect_extra(record: TaskRecord, volume_root: Path) -> dict[str, Any]:
    """The Config, HostConfig and Mounts `docker inspect` shows for a task's container, from what
    prepare recorded (the image's defaults already applied by the oci executor)."""
    rt, options = record.runtime, record.options
    mounts = []
    for mount in options.mounts:
        shown: dict[str, Any] = {"Type": mount.type, "Destination": mount.target, "RW": not mount.read_only,
                                 "Mode": "", "Propagation": mount.propagation if mount.type == "bind" else ""}
        if mount.type == "volume":
            shown.update(Name=mount.source, Driver="local",
                         Source=str(volume_root / mount.source / "_data") if mount.source else "")
        elif mount.type == "bind":
            shown["Source"] = mount.source
        else:
            shown["Source"] = ""
        mounts.append(shown)
    return {
        "Config": {
            "Hostname": record.hostname, "Domainname": "", "User": rt.user or "", "AttachStdin": False,
            "AttachStdout": False, "AttachStderr": False, "Tty": rt.tty, "OpenStdin": False, "StdinOnce": False,
            "Env": list(record.env), "Cmd": list(record.argv), "Image": rt.image, "Volumes": None,
            "WorkingDir": rt.workdir or "", "Entrypoint": None, "OnBuild": None, "Labels": dict(rt.labels),
            "StopSignal": rt.stop_signal, "StopTimeout": int(rt.stop_grace_period),
        },
        "HostConfig": {
            "NetworkMode": "default", "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
            "LogConfig": {"Type": "json-file", "Config": {}}, "Init": options.init,
            "ReadonlyRootfs": options.read_only, "CapAdd": list(options.cap_add) or None,
            "CapDrop": list(options.cap_drop) or None, "GroupAdd": list(options.groups) or None,
            "Memory": rt.resources.memory_bytes, "NanoCpus": rt.resources.nano_cpus,
            "PidsLimit": rt.resources.pids_limit or None,
            "Ulimits": [{"Name": u.name, "Soft": u.soft, "Hard": u.hard} for u in options.ulimits] or None,
            "Sysctls": dict(options.sysctls) or None, "Dns": list(options.dns_nameservers),
            "DnsSearch": list(options.dns_search), "DnsOptions": list(options.dns_options),
            "ExtraHosts": [f"{name}:{address}" for address, names in options.extra_hosts for name in names] or None,
            "Mounts": [{"Type": m["Type"], "Source": m.get("Name") or m["Source"], "Target": m["Destination"],
                        "ReadOnly": not m["RW"]} for m in mounts] or None,
        },
        "Mounts": mounts,
    }


def ps_command(argv: Sequence[str]) -> str:
    """dockerd's COMMAND for `docker ps`: the path, then the arguments, one holding a space in single
    quotes (daemon/list.go), e.g. `sh -c 'echo hi; sleep 600'`."""
    if not argv:
        return ""
    return " ".join([argv[0], *(f"'{arg}'" if " " in arg else arg for arg in argv[1:])])
