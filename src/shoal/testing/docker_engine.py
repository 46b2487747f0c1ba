"""The local Docker engine as tests use it: whether one answers, the image tests run, and a docker
executor on it (for the executor conformance suite and the docker executor's tests)."""

from __future__ import annotations

from pathlib import Path

from shoal.executor.base import Executor
from shoal.executor.docker.address import DEFAULT_SOCKET
from shoal.executor.docker.executor import DockerExecutor
from shoal.executor.docker.probe import engine_info_blocking

# Built by ci/setup-dockerd.sh: busybox with sh, sleep, httpd, ... (no registry is reachable).
TEST_IMAGE = "shoal-busybox:latest"


def engine_reachable(socket_path: str = DEFAULT_SOCKET) -> bool:
    return engine_info_blocking(socket_path) is not None


def make_executor(state_dir: Path | str) -> Executor:
    """A docker executor with its own instance id (from `state_dir`), on the local engine."""
    return DockerExecutor(state_dir=state_dir)
