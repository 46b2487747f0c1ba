"""The oci executor on the node's real image store (shoal.images): an image imported as `docker
import` does runs from the store's snapshots, configured by the import's --change lines."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shoal.base.ids import new_id
from shoal.executor.base import STDOUT, TaskRuntime
from shoal.executor.oci import OciExecutor
from shoal.executor.oci.rootfs import build_web_rootfs, busybox_missing_reason, write_archive
from shoal.executor.oci.runtime import choose_runtime, unavailable_reason
from shoal.network.tasknet import TaskNetConfig, remove_bridge

REASON = unavailable_reason(choose_runtime()) or busybox_missing_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"oci executor unavailable: {REASON}")


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            yield chunk


async def test_an_imported_image_runs_from_the_store(tmp_path: Path) -> None:
    from shoal.images.service import ImageService

    images = ImageService(tmp_path / "images")
    tar = write_archive(build_web_rootfs(tmp_path / "web"), tmp_path / "web.tar")
    await images.import_tar(_chunks(tar), "my-web", "1", changes=['CMD ["cat", "/var/www/cgi-bin/index.cgi"]',
                                                                   "WORKDIR /var/www", "ENV WHO=image"])
    network = TaskNetConfig.for_scope(f"oci-store-{os.getpid()}-{new_id()[:6]}", tmp_path / "net")
    executor = OciExecutor(tmp_path / "state", images, network=network, run_dir=tmp_path / "run")
    try:
        runtime = TaskRuntime(new_id(), "s", "store", "n", 1, "my-web:1")
        controller = executor.controller(runtime)
        await controller.prepare()
        await controller.start()
        status = await asyncio.wait_for(controller.wait(), 30)
        lines = [line.data.decode().rstrip("\n") async for line in controller.logs() if line.stream == STDOUT]
        assert status.exit_code == 0, lines
        assert lines[0] == "#!/bin/sh" and any("hostname" in line for line in lines)
        envrt = TaskRuntime(new_id(), "s", "store", "n", 2, "my-web:1", command=("sh", "-c", 'echo "$WHO $(pwd)"'))
        env_controller = executor.controller(envrt)
        await env_controller.prepare()
        await env_controller.start()
        await asyncio.wait_for(env_controller.wait(), 30)
        assert [line.data async for line in env_controller.logs()] == [b"image /var/www\n"]
    finally:
        await executor.purge()
        if network.bridge_exists():
            await remove_bridge(network)


async def test_a_missing_image_rejects_the_task_with_the_pull_error(tmp_path: Path) -> None:
    from shoal.api.errors import ShoalError
    from shoal.images.service import ImageService

    images = ImageService(tmp_path / "images")
    network = TaskNetConfig.for_scope(f"oci-store-{os.getpid()}-{new_id()[:6]}", tmp_path / "net")
    executor = OciExecutor(tmp_path / "state", images, network=network, run_dir=tmp_path / "run")
    runtime = TaskRuntime(new_id(), "s", "store", "n", 1, "127.0.0.1:1/nothing-here:1")
    with pytest.raises(ShoalError):
        await asyncio.wait_for(executor.controller(runtime).prepare(), 60)
    assert not (tmp_path / "state" / "tasks" / runtime.task_id).exists()
