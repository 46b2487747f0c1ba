"""Process-executor specifics the shared suite cannot state: crash of a supervisor, many tasks at
once on one bridge, what remove() cleans up, the node description."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shoal.base.ids import new_id
from shoal.executor.base import ContainerState, Resources, TaskRuntime
from shoal.executor.errors import InvalidTaskSpec
from shoal.executor.process import ProcessExecutor
from shoal.executor.process.controller import VANISHED_EXIT_CODE
from shoal.executor.process.executor import isolation_unavailable_reason
from shoal.executor.process.taskdir import TaskDir
from shoal.network.tasknet import TaskNetConfig, ensure_bridge, remove_bridge, remove_orphan_bridges


@pytest.fixture
async def executor(tmp_path: Path) -> AsyncIterator[ProcessExecutor]:
    ex = ProcessExecutor(tmp_path / "state")
    yield ex
    await ex.purge()


def runtime(script: str, **kw: object) -> TaskRuntime:
    values: dict[str, object] = {"command": ("sh", "-c", script)}
    values.update(kw)
    return TaskRuntime(new_id(), "s", "svc", "n", 1, "img", **values)  # type: ignore[arg-type]


async def test_task_outlives_a_killed_supervisor_and_is_reported_vanished(
    executor: ProcessExecutor, tmp_path: Path
) -> None:
    rt = runtime("sleep 30")
    controller = executor.controller(rt)
    await controller.prepare()
    await controller.start()
    task = TaskDir(tmp_path / "state" / "tasks" / rt.task_id)
    supervisor = task.supervisor()
    assert supervisor is not None
    os.kill(supervisor.pid, signal.SIGKILL)

    successor = ProcessExecutor(tmp_path / "state")
    (adopted,) = await successor.adopt()
    assert adopted.status.state is ContainerState.RUNNING  # the workload still runs
    pid = adopted.status.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    status = await asyncio.wait_for(successor.controller(rt).wait(), 30)
    assert status.exit_code == VANISHED_EXIT_CODE
    assert "vanished" in status.error


async def test_many_tasks_start_at_once_with_distinct_addresses(executor: ProcessExecutor) -> None:
    if isolation_unavailable_reason() is not None:
        pytest.skip(isolation_unavailable_reason() or "")
    controllers = [executor.controller(runtime("sleep 30")) for _ in range(8)]
    await asyncio.gather(*(c.prepare() for c in controllers))
    await asyncio.gather(*(c.start() for c in controllers))
    statuses = [await c.inspect() for c in controllers]
    assert all(s.state is ContainerState.RUNNING for s in statuses)
    addresses = {s.address for s in statuses}
    assert len(addresses) == 8 and None not in addresses


async def test_remove_cleans_up_state_cgroups_and_address(executor: ProcessExecutor, tmp_path: Path) -> None:
    rt = runtime("sleep 30", resources=Resources(memory_bytes=32 << 20))
    controller = executor.controller(rt)
    await controller.prepare()
    await controller.start()
    record = TaskDir(tmp_path / "state" / "tasks" / rt.task_id).read_record()
    await controller.remove()
    assert not (tmp_path / "state" / "tasks" / rt.task_id).exists()
    assert all(not Path(group).exists() for group in record.cgroups)
    if executor.network is not None:
        book = executor.network.state_dir / "addresses.json"
        assert record.container_id not in book.read_text()


async def test_remove_network_only_without_tasks(tmp_path: Path) -> None:
    if isolation_unavailable_reason() is not None:
        pytest.skip(isolation_unavailable_reason() or "")
    config = TaskNetConfig.for_scope(f"remove-network-{os.getpid()}", tmp_path / "net")
    ex = ProcessExecutor(tmp_path / "state", network=config)
    try:
        controller = ex.controller(runtime("sleep 30"))
        await controller.prepare()
        await controller.start()
        assert config.bridge_exists()
        assert not await ex.remove_network()  # a task still uses it
        await controller.remove()
        assert await ex.remove_network()
        assert not config.bridge_exists()
    finally:
        await remove_bridge(config)


async def test_describe(executor: ProcessExecutor) -> None:
    description = await executor.describe()
    assert description.os == "linux"
    assert description.nano_cpus == (os.cpu_count() or 1) * 1_000_000_000
    assert description.memory_bytes > 0
    docker = description.to_docker()
    assert {"Type": "Network", "Name": "overlay"} in docker["Engine"]["Plugins"]


async def test_orphan_bridges_are_found_by_their_owner_alias(tmp_path: Path) -> None:
    if isolation_unavailable_reason() is not None:
        pytest.skip(isolation_unavailable_reason() or "")
    owner = tmp_path / "gone"
    config = TaskNetConfig.for_scope(f"orphan-{os.getpid()}", owner / "net")
    try:
        await ensure_bridge(config)
        assert config.bridge not in await remove_orphan_bridges()  # its owner still exists
        shutil.rmtree(owner)
        assert config.bridge in await remove_orphan_bridges()
        assert not config.bridge_exists()
    finally:
        await remove_bridge(config)


async def test_concurrent_starts_launch_the_task_once(executor: ProcessExecutor, tmp_path: Path) -> None:
    rt = runtime("sleep 30")
    controllers = [executor.controller(rt) for _ in range(3)]
    await asyncio.gather(*(c.prepare() for c in controllers))
    await asyncio.gather(*(c.start() for c in controllers))  # each returns once its launch is done
    container_ids = {(await c.inspect()).container_id for c in controllers}
    assert len(container_ids) == 1
    task_dir = str(tmp_path / "state" / "tasks" / rt.task_id).encode()
    shims = {pid for pid in _pids() if _cmdline(pid)[1:4] == [b"run", b"-s", task_dir]}
    supervisors = [pid for pid in shims if _parent(pid) not in shims]  # not the init forked inside
    assert len(supervisors) == 1


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat", "rb") as f:
        return int(f.read().rsplit(b")", 1)[1].split()[1])


def _cmdline(pid: int) -> list[bytes]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


async def test_purge_removes_every_task_and_the_network(tmp_path: Path) -> None:
    ex = ProcessExecutor(tmp_path / "state")
    controllers = [ex.controller(runtime("sleep 30")) for _ in range(3)]
    for c in controllers:
        await c.prepare()
        await c.start()
    pids = [(await c.inspect()).pid for c in controllers]
    assert await ex.purge() == 3
    assert await ex.adopt() == []
    assert all(_gone(pid) for pid in pids)
    if ex.network is not None:
        assert not ex.network.bridge_exists()


def _gone(pid: int | None) -> bool:
    """No such process, or only a zombie waiting for its parent (init) to reap it."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except OSError:
        return True


@pytest.mark.parametrize("task_id", ["../escape", "", "a/b", ".hidden"])
def test_task_ids_that_are_not_plain_names_are_refused(executor: ProcessExecutor, task_id: str) -> None:
    with pytest.raises(InvalidTaskSpec, match="invalid task id"):
        executor.controller(TaskRuntime(task_id, "s", "svc", "n", 1, "img", command=("true",)))
