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
from shoal.executor.base import CAP_CPU_LIMIT, CAP_MEMORY_LIMIT, CAP_PIDS_LIMIT, BlockIo, Resources

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


# -- reading what a container used (`docker stats`) and pausing it (`docker pause`) -------------------

STAT_CONTROLLERS = ("cpuacct", "cpu", "memory", "pids", "blkio", "freezer")
TICK_NS = NANOS // os.sysconf("SC_CLK_TCK")


def groups_of(path: str, root: Path = Path("/sys/fs/cgroup")) -> dict[str, Path]:
    """Controller → the directory of cgroup `path` (an OCI cgroupsPath) in each hierarchy that has
    it: one directory for all on cgroup v2, one per controller on v1."""
    relative = path.lstrip("/")
    if (root / "cgroup.controllers").exists():
        group = root / relative
        return {c: group for c in STAT_CONTROLLERS} if group.is_dir() else {}
    found: dict[str, Path] = {}
    try:
        hierarchies = list(root.iterdir())
    except OSError:
        return {}
    for hierarchy in hierarchies:
        names = hierarchy.name.split(",")
        for controller in STAT_CONTROLLERS:
            if controller in names and (hierarchy / relative).is_dir():
                found[controller] = hierarchy / relative
    return found


def groups_by_controller(groups: tuple[str, ...] | list[Path]) -> dict[str, Path]:
    """The process executor's recorded group directories, keyed by the controller each lies under."""
    found: dict[str, Path] = {}
    for group in map(Path, groups):
        for part in group.parts:
            for controller in part.split(","):
                if controller in STAT_CONTROLLERS:
                    found.setdefault(controller, group)
    return found


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _number(text: str) -> int:
    text = text.strip()
    return int(text) if text.isdigit() else 0


def _keyed(text: str) -> dict[str, int]:
    values = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            values[key] = int(value)
    return values


def system_cpu_ns(stat_text: str) -> int:
    """The host's CPU time as /proc/stat's first line counts it (user … softirq), as dockerd sums it."""
    for line in stat_text.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            return sum(int(v) for v in fields[1:8]) * TICK_NS
    return 0


def read_usage(groups: dict[str, Path]) -> dict[str, object]:
    """The figures `docker stats` shows, from the container's cgroup files (v1 or v2); keys as
    ResourceSample's fields. A controller that is not there leaves its figures out."""
    usage: dict[str, object] = {}
    v2 = any((g / "cgroup.controllers").exists() for g in groups.values())
    cpu = groups.get("cpu")
    if v2 and cpu is not None:
        stat = _keyed(_read(cpu / "cpu.stat"))
        usage.update(cpu_total_ns=stat.get("usage_usec", 0) * 1000, cpu_user_ns=stat.get("user_usec", 0) * 1000,
                     cpu_kernel_ns=stat.get("system_usec", 0) * 1000, periods=stat.get("nr_periods", 0),
                     throttled_periods=stat.get("nr_throttled", 0), throttled_ns=stat.get("throttled_usec", 0) * 1000)
    elif (acct := groups.get("cpuacct")) is not None:
        ticks = _keyed(_read(acct / "cpuacct.stat"))
        usage.update(cpu_total_ns=_number(_read(acct / "cpuacct.usage")),
                     cpu_percpu_ns=tuple(int(v) for v in _read(acct / "cpuacct.usage_percpu").split()),
                     cpu_user_ns=ticks.get("user", 0) * TICK_NS, cpu_kernel_ns=ticks.get("system", 0) * TICK_NS)
        if cpu is not None:
            stat = _keyed(_read(cpu / "cpu.stat"))
            usage.update(periods=stat.get("nr_periods", 0), throttled_periods=stat.get("nr_throttled", 0),
                         throttled_ns=stat.get("throttled_time", 0))
    if (memory := groups.get("memory")) is not None:
        if v2:
            usage.update(memory_usage=_number(_read(memory / "memory.current")),
                         memory_max_usage=_number(_read(memory / "memory.peak")),
                         memory_limit=_number(_read(memory / "memory.max")))
        else:
            usage.update(memory_usage=_number(_read(memory / "memory.usage_in_bytes")),
                         memory_max_usage=_number(_read(memory / "memory.max_usage_in_bytes")),
                         memory_limit=_number(_read(memory / "memory.limit_in_bytes")))
        usage["memory_stats"] = _keyed(_read(memory / "memory.stat"))
    if (pids := groups.get("pids")) is not None:
        usage.update(pids_current=_number(_read(pids / "pids.current")), pids_limit=_number(_read(pids / "pids.max")))
    if (blkio := groups.get("blkio")) is not None and not v2:
        usage["block_io"] = tuple(_block_io_v1(_read(blkio / "blkio.throttle.io_service_bytes")))
    elif v2 and (io := groups.get("cpu") or groups.get("memory")) is not None:
        usage["block_io"] = tuple(_block_io_v2(_read(io / "io.stat")))
    return usage


def _block_io_v1(text: str) -> list[BlockIo]:
    rows = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 3 and ":" in fields[0]:
            major, _, minor = fields[0].partition(":")
            rows.append(BlockIo(int(major), int(minor), fields[1], int(fields[2])))
    return rows


def _block_io_v2(text: str) -> list[BlockIo]:
    rows = []
    for line in text.splitlines():
        device, *pairs = line.split()
        major, _, minor = device.partition(":")
        counters = dict(p.split("=", 1) for p in pairs if "=" in p)
        for key, op in (("rbytes", "read"), ("wbytes", "write")):
            if counters.get(key, "").isdigit():
                rows.append(BlockIo(int(major), int(minor), op, int(counters[key])))
    return rows


def freeze(groups: dict[str, Path], frozen: bool) -> bool:
    """Freeze or thaw the group (v1 freezer.state, v2 cgroup.freeze); False if it has no freezer."""
    group = groups.get("freezer")
    if group is None:
        return False
    if (group / "cgroup.freeze").exists():
        (group / "cgroup.freeze").write_text("1" if frozen else "0")
    else:
        (group / "freezer.state").write_text("FROZEN" if frozen else "THAWED")
    return True


def is_frozen(groups: dict[str, Path]) -> bool:
    group = groups.get("freezer")
    if group is None:
        return False
    if (group / "cgroup.freeze").exists():
        return _read(group / "cgroup.freeze").strip() == "1"
    return _read(group / "freezer.state").strip() in ("FROZEN", "FREEZING")


def group_pids(groups: dict[str, Path]) -> list[int]:
    """Every process in the container's group (any controller lists them all)."""
    for group in groups.values():
        text = _read(group / "cgroup.procs")
        if text:
            return sorted(int(p) for p in text.split())
    return []
