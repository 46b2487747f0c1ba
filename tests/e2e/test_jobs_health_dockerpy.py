"""Jobs and health checks through docker-py against a real shoald: a replicated job and a global job
created with docker.types.ServiceMode complete, with ServiceStatus counting completions; a service
with a docker.types.Healthcheck runs once healthy; a job sent with an UpdateConfig is refused."""

from __future__ import annotations

from collections.abc import Iterator

import docker
import pytest
from docker.types import Healthcheck, ServiceMode

from shoal.testing.daemon import ShoalDaemon, wait_until


@pytest.fixture(scope="module")
def client(swarm: ShoalDaemon) -> Iterator[docker.DockerClient]:
    client = docker.DockerClient(base_url=swarm.docker_host, version="1.41")
    try:
        yield client
    finally:
        client.close()


def status(client: docker.DockerClient, name: str) -> dict[str, int]:
    (found,) = [s for s in client.api.services(filters={"name": name}, status=True) if s["Spec"]["Name"] == name]
    return dict(found["ServiceStatus"])


def test_jobs(client: docker.DockerClient) -> None:
    client.services.create("busybox", ["true"], name="pyjob", mode=ServiceMode("replicated-job", replicas=4,
                                                                                concurrency=2))
    wait_until(lambda: status(client, "pyjob")["CompletedTasks"] == 4, 60, "the replicated job never completed")
    assert status(client, "pyjob") == {"RunningTasks": 0, "DesiredTasks": 2, "CompletedTasks": 4}
    service = client.services.get("pyjob")
    assert service.attrs["Spec"]["Mode"] == {"ReplicatedJob": {"MaxConcurrent": 2, "TotalCompletions": 4}}
    assert {t["DesiredState"] for t in service.tasks()} == {"complete"}
    client.services.create("busybox", ["true"], name="pyglobal", mode=ServiceMode("global-job"))
    wait_until(lambda: status(client, "pyglobal")["CompletedTasks"] == 1, 60, "the global job never completed")
    with pytest.raises(docker.errors.APIError, match="Jobs may not have an update config"):
        client.services.create("busybox", ["true"], name="pybad", mode=ServiceMode("replicated-job"),
                               update_config=docker.types.UpdateConfig(parallelism=1))


def test_health_check(client: docker.DockerClient) -> None:
    check = Healthcheck(test=["CMD-SHELL", "true"], interval=300_000_000, retries=2)
    client.services.create("my-apache2:latest", ["python3", "-m", "shoal.demo.web", "--port", "80"],
                           name="pyhealthy", healthcheck=check)
    wait_until(lambda: status(client, "pyhealthy")["RunningTasks"] == 1, 60, "the healthy service never ran")
    spec = client.services.get("pyhealthy").attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Healthcheck"]
    assert spec == {"Test": ["CMD-SHELL", "true"], "Interval": 300_000_000, "Retries": 2}
