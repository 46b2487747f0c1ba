"""Engine-backed fixtures: skipped with a reason when no dockerd (or no test image) is reachable."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import docker
import pytest

from shoal.base.ids import new_id
from shoal.executor.base import TaskRuntime
from shoal.executor.docker import DockerExecutor
from shoal.executor.docker import labels as label_names
from shoal.executor.docker.address import DEFAULT_SOCKET
from shoal.testing.docker_engine import TEST_IMAGE, engine_reachable


@pytest.fixture(scope="session")
def docker_api() -> Iterator[docker.APIClient]:
    """docker-py's low-level client: an independent view of what the executor did."""
    if not engine_reachable():
        pytest.skip(f"no Docker Engine answers at {DEFAULT_SOCKET} (run ci/setup-dockerd.sh as root)")
    client = docker.APIClient(base_url=f"unix://{DEFAULT_SOCKET}")
    try:
        client.inspect_image(TEST_IMAGE)
    except docker.errors.ImageNotFound:
        client.close()
        pytest.skip(f"image {TEST_IMAGE} is missing (run ci/setup-dockerd.sh as root)")
    yield client
    client.close()


def _remove_all(docker_api: docker.APIClient, executor: DockerExecutor) -> None:
    """Whatever the test left behind, found by the executor's instance label."""
    mine = {"label": f"{label_names.EXECUTOR_INSTANCE}={executor.instance_id}"}
    for container in docker_api.containers(all=True, filters=mine):
        with contextlib.suppress(docker.errors.NotFound):
            docker_api.remove_container(container["Id"], force=True)


@pytest.fixture
async def executor(docker_api: docker.APIClient, tmp_path: Path) -> AsyncIterator[DockerExecutor]:
    made = DockerExecutor(state_dir=tmp_path / "state")
    yield made
    _remove_all(docker_api, made)
    await made.close()


@pytest.fixture
async def other_executor(docker_api: docker.APIClient, tmp_path: Path) -> AsyncIterator[DockerExecutor]:
    """A second daemon's executor on the same engine."""
    made = DockerExecutor(state_dir=tmp_path / "other-state")
    yield made
    _remove_all(docker_api, made)
    await made.close()


def build_runtime(command: tuple[str, ...] = ("sleep", "60"), **overrides: object) -> TaskRuntime:
    fields: dict[str, object] = {
        "task_id": new_id(),
        "service_id": new_id(),
        "service_name": "dtest" + new_id()[:6],
        "node_id": new_id(),
        "slot": 1,
        "image": TEST_IMAGE,
        "command": command,
        # Busybox `sleep` as PID 1 ignores SIGTERM; keep test shutdowns short.
        "stop_grace_period": 1.0,
    }
    fields.update(overrides)
    return TaskRuntime(**fields)  # type: ignore[arg-type]


@pytest.fixture
def make_runtime() -> Callable[..., TaskRuntime]:
    """A fresh task (new ids, a unique service name) running the test image."""
    return build_runtime
