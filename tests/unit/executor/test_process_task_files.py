"""Secrets and configs on isolated process tasks (both shims): /run/secrets/<name> and a config bound
over an existing host file, read-only, with their owners and modes, inside the task's own mount
namespace only; the host's /run/secrets stays empty, a target that cannot be placed rejects the task,
and removing the task leaves no tmpfs."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shoal.base.ids import new_id
from shoal.executor.base import TaskFile, TaskRuntime
from shoal.executor.errors import InvalidTaskSpec
from shoal.executor.process import ProcessExecutor
from shoal.executor.process.executor import isolation_unavailable_reason
from shoal.executor.process.shimbuild import python_shim
from shoal.network.tasknet import TaskNetConfig, remove_bridge

REASON = isolation_unavailable_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"needs isolated tasks: {REASON}")


@pytest.fixture(params=["c-shim", "python-shim"])
async def executor(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ProcessExecutor]:
    network = TaskNetConfig.for_scope(f"tfiles-{os.getpid()}-{new_id()[:6]}", tmp_path / "net")
    shim = python_shim() if request.param == "python-shim" else None
    ex = ProcessExecutor(tmp_path / "state", network=network, shim=shim)
    try:
        yield ex
    finally:
        await ex.purge()
        if network.bridge_exists():
            await remove_bridge(network)


def tmpfs_mounts(under: Path) -> list[str]:
    root = str(under.resolve()) + "/"
    return [line for line in Path("/proc/self/mounts").read_text().splitlines()
            if line.startswith("shoal-task-files ") and line.split()[1].startswith(root)]


async def test_an_isolated_task_sees_its_files_and_the_host_does_not(executor: ProcessExecutor,
                                                                    tmp_path: Path) -> None:
    secret_name = f"s-{new_id()[:8]}"
    host_file = tmp_path / "app.conf"
    host_file.write_text("the host's own\n")
    files = (TaskFile(f"/run/secrets/{secret_name}", b"hunter2", uid=1000, gid=1001, mode=0o400, secret=True),
             TaskFile(str(host_file), b"port=8080\n", mode=0o644))
    script = (f"cat /run/secrets/{secret_name}; echo; stat -c '%u %g %a' /run/secrets/{secret_name}; "
              f"cat {host_file}; "
              f"(echo x > {host_file}) 2>/dev/null && echo wrote || echo refused")
    runtime = TaskRuntime(new_id(), "s", "files", "n", 1, "host", command=("sh", "-c", script), files=files)
    controller = executor.controller(runtime)
    await controller.prepare()
    await controller.start()
    await asyncio.wait_for(controller.wait(), 30)
    lines = [line.data.decode().rstrip("\n") async for line in controller.logs()]
    assert lines == ["hunter2", "1000 1001 400", "port=8080", "refused"]
    assert host_file.read_text() == "the host's own\n"
    assert not Path(f"/run/secrets/{secret_name}").exists()
    assert tmpfs_mounts(tmp_path / "state")
    await controller.remove()
    assert tmpfs_mounts(tmp_path / "state") == []


async def test_a_config_target_missing_on_the_host_rejects_the_task(executor: ProcessExecutor) -> None:
    files = (TaskFile("/etc/shoal-no-such-file.conf", b"x"),)
    runtime = TaskRuntime(new_id(), "s", "files", "n", 1, "host", command=("true",), files=files)
    with pytest.raises(InvalidTaskSpec, match=r"cannot place a config at /etc/shoal-no-such-file\.conf"):
        await executor.controller(runtime).prepare()
