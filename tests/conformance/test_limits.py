"""Resource limits are visible to the workload through its cgroup."""

from __future__ import annotations

from shoal.executor.base import CAP_CPU_LIMIT, CAP_MEMORY_LIMIT, CAP_OOM_KILLED, CAP_PIDS_LIMIT, STDOUT, Resources

from .conftest import Harness


def read_own_cgroup_file(controller: str, v1_name: str, v2_name: str) -> str:
    """Shell that prints a limit file of the workload's own cgroup, on cgroup v1 or v2, whether the
    runtime shows the host's hierarchy (path from /proc/self/cgroup) or a namespaced one (root)."""
    return (
        f"p=$(grep -E '^[0-9]+:([^:]*,)?{controller}(,[^:]*)?:' /proc/self/cgroup | head -1 | cut -d: -f3); "
        "q=$(grep '^0::' /proc/self/cgroup | cut -d: -f3); "
        f"for f in /sys/fs/cgroup/{controller}$p/{v1_name} /sys/fs/cgroup$q/{v2_name} "
        f"/sys/fs/cgroup/{controller}/{v1_name} /sys/fs/cgroup/{v2_name}; do "
        '[ -r "$f" ] && { cat "$f"; exit 0; }; done; exit 1'
    )


async def limit_seen(harness: Harness, script: str, resources: Resources) -> str:
    controller, status = await harness.finished(script, resources=resources)
    lines = [line.data.decode().strip() async for line in controller.logs() if line.stream == STDOUT]
    assert status.exit_code == 0, lines
    return lines[0]


async def test_memory_limit(harness: Harness) -> None:
    harness.require(CAP_MEMORY_LIMIT)
    script = read_own_cgroup_file("memory", "memory.limit_in_bytes", "memory.max")
    assert await limit_seen(harness, script, Resources(memory_bytes=64 * 1024 * 1024)) == str(64 * 1024 * 1024)


async def test_pids_limit(harness: Harness) -> None:
    harness.require(CAP_PIDS_LIMIT)
    script = read_own_cgroup_file("pids", "pids.max", "pids.max")
    assert await limit_seen(harness, script, Resources(pids_limit=77)) == "77"


async def test_cpu_limit(harness: Harness) -> None:
    harness.require(CAP_CPU_LIMIT)
    script = read_own_cgroup_file("cpu", "cpu.cfs_quota_us", "cpu.max")
    seen = await limit_seen(harness, script, Resources(nano_cpus=500_000_000))
    assert seen.split()[0] == "50000"  # half a CPU: 50 ms per 100 ms period


async def test_exceeding_the_memory_limit_kills_the_task(harness: Harness) -> None:
    harness.require(CAP_MEMORY_LIMIT)
    hog = 'x=$(head -c 200000000 /dev/zero | tr "\\0" a); echo survived'
    controller, status = await harness.finished(hog, resources=Resources(memory_bytes=16 * 1024 * 1024))
    lines = [line.data async for line in controller.logs()]
    assert b"survived\n" not in lines
    assert status.exit_code != 0
    if status.exit_code == 137 and CAP_OOM_KILLED in harness.executor.capabilities:
        assert status.oom_killed  # the shell holding the memory was the one killed
