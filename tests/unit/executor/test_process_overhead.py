"""What holding a task costs: the shim's supervisor (+ the init inside the namespaces), measured.

Budget: ~2 MB per task beyond the workload. RSS counts shared libc pages in full; PSS divides them
among the processes sharing them, which is what a node running many tasks really pays."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoal.base.ids import new_id
from shoal.executor.base import ContainerState, TaskRuntime
from shoal.executor.process import ProcessExecutor
from shoal.executor.process.executor import isolation_unavailable_reason
from shoal.executor.process.procfs import pss_bytes, rss_bytes
from shoal.executor.process.shimbuild import python_shim
from shoal.executor.process.taskdir import TaskDir

BUDGET_RSS = 3 * 1024 * 1024  # generous to RSS, which counts shared pages in full
BUDGET_PSS = 2 * 1024 * 1024


@pytest.mark.parametrize("isolate", [False, True], ids=["plain", "isolated"])
async def test_per_task_overhead(tmp_path: Path, isolate: bool, capsys: pytest.CaptureFixture[str]) -> None:
    if isolate and (reason := isolation_unavailable_reason()):
        pytest.skip(reason)
    executor = ProcessExecutor(tmp_path, isolate=isolate)
    rss, pss = await holder_memory(executor, tmp_path, isolate)
    with capsys.disabled():
        mode = "isolated" if isolate else "plain"
        print(f"\n[C shim, {mode}] per-task holder RSS {rss / 1024:.0f} KiB, PSS {pss / 1024:.0f} KiB")
    assert 0 < rss <= BUDGET_RSS
    assert pss <= BUDGET_PSS


async def test_python_shim_overhead_is_measured(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The fallback's cost, printed for the record; it is over the budget by design (no compiler)."""
    executor = ProcessExecutor(tmp_path, isolate=False, shim=python_shim())
    rss, pss = await holder_memory(executor, tmp_path, False)
    with capsys.disabled():
        print(f"\n[Python shim, plain] per-task holder RSS {rss / 1024:.0f} KiB, PSS {pss / 1024:.0f} KiB")
    assert rss > 0


async def holder_memory(executor: ProcessExecutor, tmp_path: Path, isolate: bool) -> tuple[int, int]:
    """RSS and PSS of what holds one `sleep` task: the supervisor (no init unless --init)."""
    runtime = TaskRuntime(new_id(), "s", "overhead", "n", 1, "img", command=("sleep", "30"))
    controller = executor.controller(runtime)
    await controller.prepare()
    await controller.start()
    try:
        task_dir = TaskDir(tmp_path / "tasks" / runtime.task_id)
        supervisor = task_dir.supervisor()
        process = task_dir.process()
        assert supervisor is not None and process is not None
        holders = [supervisor.pid]  # isolated or not, the workload itself is the task's process (pid 1)
        return sum(rss_bytes(pid) for pid in holders), sum(pss_bytes(pid) for pid in holders)
    finally:
        await controller.terminate()
        assert (await controller.inspect()).state is ContainerState.EXITED
        await controller.remove()
        await executor.remove_network()
