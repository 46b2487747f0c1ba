"""The docker executor: shoal tasks as containers on a local Docker Engine (see executor.py)."""

from shoal.executor.docker.executor import DockerExecutor
from shoal.executor.docker.images import ImageNotFound

__all__ = ["DockerExecutor", "ImageNotFound"]
