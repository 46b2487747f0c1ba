"""--mount on isolated process tasks: bind, volume and tmpfs mounts in the task's own mount namespace,
on targets that exist on the host (tasks see the host's filesystem); a missing target rejects."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from shoal.base.ids import new_id
from shoal.executor.base import TaskRuntime
from shoal.executor.errors import InvalidTaskSpec
from shoal.executor.process import ProcessExecutor
from shoal.executor.process.executor import isolation_unavailable_reason
from shoal.executor.process.shimbuild import python_shim
from shoal.network.tasknet import TaskNetConfig, remove_bridge

REASON = isolation_unavailable_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"needs isolated tasks: {REASON}")


@pytest.fixture(params=["c-shim", "python-shim"])
async def executor(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ProcessExecutor]:
    network = TaskNetConfig.for_scope(f"mounts-{os.getpid()}-{new_id()[:6]}", tmp_path / "net")
    shim = python_shim() if request.param == "python-shim" else None
    ex = ProcessExecutor(tmp_path / "state", network=network, shim=shim)
    try:
        yield ex
    finally:
        await ex.purge()
        if network.bridge_exists():
            await remove_bridge(network)


async def run(executor: ProcessExecutor, script: str, mounts: list[dict[str, Any]]) -> list[str]:
    runtime = TaskRuntime(new_id(), "s", "mounts", "n", 1, "host", command=("sh", "-c", script),
                          raw_task={"Spec": {"ContainerSpec": {"Mounts": mounts}}})
    controller = executor.controller(runtime)
    await controller.prepare()
    await controller.start()
    await asyncio.wait_for(controller.wait(), 30)
    return [line.data.decode().rstrip("\n") async for line in controller.logs()]


async def test_read_only_bind_tmpfs_and_volume(executor: ProcessExecutor, tmp_path: Path) -> None:
    source, target, scratch, vol = (tmp_path / n for n in ("source", "target", "scratch", "vol"))
    for d in (source, target, scratch, vol):
        d.mkdir()
    (source / "hello").write_text("from the source\n")
    mounts = [
        {"Type": "bind", "Source": str(source), "Target": str(target), "ReadOnly": True},
        {"Type": "tmpfs", "Target": str(scratch)},
        {"Type": "volume", "Source": "data", "Target": str(vol)},
    ]
    script = (
        f"cat {target}/hello; touch {target}/new 2>/dev/null && echo wrote || echo refused;"
        f" grep ' {scratch} ' /proc/mounts | cut -d' ' -f3; echo kept > {vol}/file"
    )
    assert await run(executor, script, mounts) == ["from the source", "refused", "tmpfs"]
    assert not (target / "hello").exists() and not (vol / "file").exists()  # the host's dirs untouched
    assert await run(executor, f"cat {vol}/file", mounts[2:]) == ["kept"]  # the volume outlives the task


async def test_a_target_missing_on_the_host_rejects_the_task(executor: ProcessExecutor) -> None:
    spec = {"Mounts": [{"Type": "tmpfs", "Target": "/nonexistent/x"}]}
    runtime = TaskRuntime(new_id(), "s", "mounts", "n", 1, "host", command=("true",),
                          raw_task={"Spec": {"ContainerSpec": spec}})
    with pytest.raises(InvalidTaskSpec, match="target /nonexistent/x is not a directory on this host"):
        await executor.controller(runtime).prepare()
