"""The container calls on the process executor (real processes under the shim): kill, stop, rm that
keeps the exit for the agent, restart, stats and top from the task's cgroups or its process tree, cp's
root, and pause refused with the reason when the task has no freezer group."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shoal.api import errors
from shoal.base.ids import new_id
from shoal.executor.base import ContainerCalls, ContainerState, Resources, TaskRuntime
from shoal.executor.errors import ContainerNotFound, ContainerNotRunning
from shoal.executor.process import ProcessExecutor


@pytest.fixture
async def executor(tmp_path: Path) -> AsyncIterator[ProcessExecutor]:
    ex = ProcessExecutor(tmp_path / "state")
    yield ex
    await ex.purge()


async def started(executor: ProcessExecutor, script: str, **kw: object) -> tuple[TaskRuntime, str]:
    values: dict[str, object] = {"command": ("sh", "-c", script)}
    values.update(kw)
    rt = TaskRuntime(new_id(), "s", "svc", "n", 1, "img", **values)  # type: ignore[arg-type]
    controller = executor.controller(rt)
    await controller.prepare()
    await controller.start()
    return rt, (await controller.inspect()).container_id


async def test_kill_ends_the_task_and_a_second_kill_is_refused(executor: ProcessExecutor) -> None:
    assert isinstance(executor, ContainerCalls)
    rt, container = await started(executor, "sleep 30")
    await executor.kill(container[:12], signal.SIGKILL)
    status = await asyncio.wait_for(executor.controller(rt).wait(), 30)
    assert status.exit_code == 137
    with pytest.raises(ContainerNotRunning):
        await executor.kill(container, signal.SIGTERM)
    with pytest.raises(ContainerNotFound):
        await executor.kill("nosuch", signal.SIGKILL)


async def test_rm_refuses_a_running_task_and_forced_keeps_its_exit_for_the_agent(executor: ProcessExecutor) -> None:
    rt, container = await started(executor, "sleep 30")
    agent_wait = asyncio.create_task(executor.controller(rt).wait())
    with pytest.raises(errors.Conflict, match=f"You cannot remove a running container {container}"):
        await executor.remove_container(container, force=False)
    assert await executor.remove_container(container, force=True) == container
    assert (await asyncio.wait_for(agent_wait, 30)).exit_code == 137  # the agent sees the task end
    assert container not in [c.id for c in await executor.containers(all=True)]
    with pytest.raises(ContainerNotFound):
        await executor.sample(container)
    await executor.controller(rt).remove()  # the agent's removal of the task finishes the job


async def test_stop_restart_and_wait(executor: ProcessExecutor) -> None:
    rt, container = await started(executor, "trap 'exit 3' TERM; while true; do sleep 0.1; done")
    agent_wait = asyncio.create_task(executor.controller(rt).wait())  # as the agent waits on a running task
    await executor.restart(container, 5.0)
    assert (await executor.controller(rt).inspect()).state is ContainerState.RUNNING
    assert (await asyncio.wait_for(agent_wait, 30)).exit_code == 3  # the run it watched, not the new one
    assert await executor.stop(container, 5.0)
    assert (await executor.wait_exit(container)).exit_code == 3
    assert not await executor.stop(container, 5.0)


async def test_stats_and_top_from_the_process_tree_and_its_memory_group(executor: ProcessExecutor) -> None:
    _, container = await started(executor, "sleep 30 & sleep 30 & wait", resources=Resources(memory_bytes=64 << 20))
    sample = await executor.sample(container)
    assert sample.memory_limit == 64 << 20 and sample.memory_usage > 0
    assert sample.system_cpu_ns > 0 and sample.online_cpus >= 1
    pids = await executor.pids(container)
    assert len(pids) >= 3  # sh and its two sleeps
    root = await executor.filesystem_root(container)
    assert Path(root, "proc").is_dir()
    if "freezer" not in executor.controller(executor._find(container)[1].runtime).groups():
        with pytest.raises(errors.Conflict, match="has no freezer cgroup"):
            await executor.pause(container)
