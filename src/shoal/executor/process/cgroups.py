"""Resource limits through cgroups: v2 (memory.max, pids.max, cpu.max) or v1 (memory, pids and cpu
hierarchies), whichever mounts the controller. A task gets a group only for the limits it sets,
under shoal/<scope>/<container id> where the scope names one daemon's state dir, so several daemons
on one machine never touch each other's groups."""

from __future__ import annotations

import asyncio
import errno
import os
from dataclasses import dataclass, field
from pathlib import Path

from shoal.api.defaults import NANOS
from shoal.executor.base import CAP_CPU_LIMIT, CAP_MEMORY_LIMIT, CAP_PIDS_LIMIT, Resources

CPU_PERIOD_US = 100_000
_CAPABILITY = {"memory": CAP_MEMORY_LIMIT, "pids": CAP_PIDS_LIMIT, "cpu": CAP_CPU_LIMIT}


@dataclass(frozen=True)
class Mount:
    path: Path
    version: int  # 1 or 2


def find_mounts(mountinfo: str) -> dict[str, Mount]:
    """Controller → where it is mounted, from /proc/self/mountinfo text. v1 wins in a hybrid setup
    (there the v2 tree carries no controllers we need)."""
    found: dict[str, Mount] = {}
    v2: Path | None = None
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        fields, rfields = left.split(), right.split()
        if len(fields) < 5 or len(rfields) < 3:
            continue
        mount_point, fstype, options = Path(fields[4]), rfields[0], rfields[2].split(",")
        if fstype == "cgroup2":
            v2 = mount_point
        elif fstype == "cgroup":
            for controller in _CAPABILITY:
                if controller in options:
                    found[controller] = Mount(mount_point, 1)
    if v2 is not None:
        try:
            available = (v2 / "cgroup.controllers").read_text().split()
        except OSError:
            available = []
        for controller in _CAPABILITY:
            if controller in available and controller not in found:
                found[controller] = Mount(v2, 2)
    return found


def limit_files(resources: Resources, version: int) -> dict[str, dict[str, str]]:
    """Controller → {file: value} for the limits set (pure: the arithmetic lives here)."""
    files: dict[str, dict[str, str]] = {}
    if resources.memory_bytes:
        name = "memory.max" if version == 2 else "memory.limit_in_bytes"
        files["memory"] = {name: str(resources.memory_bytes)}
    if resources.pids_limit:
        files["pids"] = {"pids.max": str(resources.pids_limit)}
    if resources.nano_cpus:
        quota = max(1000, resources.nano_cpus * CPU_PERIOD_US // NANOS)
        if version == 2:
            files["cpu"] = {"cpu.max": f"{quota} {CPU_PERIOD_US}"}
        else:
            files["cpu"] = {"cpu.cfs_period_us": str(CPU_PERIOD_US), "cpu.cfs_quota_us": str(quota)}
    return files


@dataclass
class Cgroups:
    """The cgroup side of one executor: probed once, then used per task."""

    scope: str
    mounts: dict[str, Mount] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)  # capability → why not

    @classmethod
    def probe(cls, scope: str) -> Cgroups:
        try:
            mountinfo = Path("/proc/self/mountinfo").read_text()
        except OSError:
            mountinfo = ""
        mounts = find_mounts(mountinfo)
        usable: dict[str, Mount] = {}
        missing: dict[str, str] = {}
        for controller, capability in _CAPABILITY.items():
            mount = mounts.get(controller)
            if mount is None:
                missing[capability] = f"no cgroup {controller} controller is mounted"
                continue
            try:
                _make_base(mount, controller, scope)
                _remove_if_empty(_base(mount, controller, scope))  # made again by the first task
                usable[controller] = mount
            except OSError as exc:
                missing[capability] = f"cannot create a cgroup under {mount.path}: {exc.strerror}"
        return cls(scope, usable, missing)

    @property
    def capabilities(self) -> set[str]:
        return {_CAPABILITY[c] for c in self.mounts}

    def unsupported(self, resources: Resources) -> list[str]:
        """Reasons for limits the task sets that this host cannot enforce."""
        wanted = limit_files(resources, 2)
        return [self.missing[_CAPABILITY[c]] for c in wanted if c not in self.mounts]

    def create(self, container_id: str, resources: Resources) -> list[Path]:
        """Make the task's groups with its limits; returns their directories."""
        made: list[Path] = []
        for controller, mount in self.mounts.items():
            files = limit_files(resources, mount.version).get(controller)
            if not files:
                continue
            _make_base(mount, controller, self.scope)
            group = _base(mount, controller, self.scope) / container_id
            group.mkdir(exist_ok=True)
            made.append(group)
            for name, value in files.items():
                (group / name).write_text(value)
        return sorted(set(made))


async def remove_groups(groups: list[Path] | tuple[str, ...], *, attempts: int = 20) -> None:
    """rmdir each group, then its scope if that is now empty. The kernel may take a moment to empty
    a group whose processes were just killed (EBUSY), so this retries for a second; a group that
    still holds a process after that (a daemon the workload left behind) is left."""
    for group in map(Path, groups):
        for _ in range(attempts):
            if not _remove_if_empty(group):
                break
            await asyncio.sleep(0.05)
        _remove_if_empty(group.parent)


def _remove_if_empty(group: Path) -> bool:
    """rmdir; True if the group is still there because it is busy."""
    try:
        os.rmdir(group)
    except OSError as exc:
        if exc.errno == errno.EBUSY:
            return True
        if exc.errno not in (errno.ENOENT, errno.ENOTEMPTY):
            raise
    return False


def oom_kills(groups: tuple[str, ...] | list[Path]) -> int:
    """How many processes the kernel killed in these groups for exceeding the memory limit
    (`oom_kill` in memory.events on v2, memory.oom_control on v1)."""
    total = 0
    for group in map(Path, groups):
        for name in ("memory.events", "memory.oom_control"):
            try:
                text = (group / name).read_text()
            except OSError:
                continue
            for line in text.splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill" and value.strip().isdigit():
                    total += int(value)
    return total


def _base(mount: Mount, controller: str, scope: str) -> Path:
    return mount.path / "shoal" / scope


def _make_base(mount: Mount, controller: str, scope: str) -> None:
    base = _base(mount, controller, scope)
    base.mkdir(parents=True, exist_ok=True)
    if mount.version == 2:
        # v2 hands a controller down only if each ancestor enables it for its children
        for level in (mount.path, mount.path / "shoal", base):
            with open(level / "cgroup.subtree_control", "w") as f:
                f.write(f"+{controller}")
