"""Secrets and configs reach workers through their dispatcher session (one manager, two workers, each
shoald with the oci executor in a network namespace of its own, through the real docker CLI): a task on
each worker reads the secret and the rendered config template (naming its own node), and once the
service goes, no worker keeps a tmpfs of it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.executor.oci.rootfs import busybox_missing_reason
from shoal.executor.selection import default_executor
from shoal.testing.cluster import ClusterNode, TestCluster
from shoal.testing.daemon import DOCKER_CLI
from shoal.testing.netns import netns_unavailable

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(netns_unavailable() is not None, reason=netns_unavailable() or ""),
    pytest.mark.skipif(DOCKER_CLI is None, reason="no docker CLI"),
]
WORKERS = ("n2", "n3")
IMAGE = "bbcluster:latest"


def _oci_missing() -> str | None:
    executor, why = default_executor()
    if executor != "oci":
        return f"the oci executor cannot run here: {why}"
    return busybox_missing_reason()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestCluster]:
    why_not = _oci_missing()
    if why_not:
        pytest.skip(why_not)
    workdir: Path = tmp_path_factory.mktemp("secrets")
    image_tar = workdir / "image.tar"
    subprocess.run([sys.executable, "-m", "shoal.executor.oci.rootfs", "web", str(image_tar)], check=True, timeout=60)
    swarm = TestCluster("test_secrets_cluster", workdir, executor="oci")
    try:
        swarm.start(1 + len(WORKERS))
        manager = swarm.node("n1")
        swarm.init(manager)
        for name in WORKERS:
            assert "joined a swarm as a worker" in swarm.join(swarm.node(name), "worker", manager).stdout
        for node in swarm.nodes:  # each node runs tasks from its own image store
            node.docker("import", "--change", 'CMD ["sleep","3600"]', str(image_tar), IMAGE)
        yield swarm
    finally:
        swarm.destroy()


def task_files_mounts(node: ClusterNode) -> list[str]:
    root = str(node.daemon.data_root.resolve()) + "/"
    return [line for line in Path("/proc/self/mounts").read_text().splitlines()
            if line.startswith("shoal-task-files ") and line.split()[1].startswith(root)]


def worker_container(node: ClusterNode, service: str) -> str | None:
    names = node.docker("ps", "--format", "{{.Names}}", check=False).stdout.split()
    return next((n for n in names if n.startswith(service + ".")), None)


def wait_for_task(cluster: TestCluster, worker: ClusterNode, service: str) -> str:
    try:
        cluster.wait_for(lambda: worker_container(worker, service) is not None, 90, f"a running task on {worker.name}")
    except AssertionError as exc:
        shown = cluster.node("n1").docker("service", "ps", "--no-trunc", service, check=False).stdout
        raise AssertionError(f"{exc}:\n{shown}") from None
    container = worker_container(worker, service)
    assert container is not None
    return container


@pytest.mark.timeout(300)
def test_each_worker_task_reads_its_secret_and_templated_config(cluster: TestCluster) -> None:
    manager = cluster.node("n1")
    manager.daemon.docker("secret", "create", "token", "-", input="shared-token")
    manager.daemon.docker("config", "create", "--template-driver", "golang", "whoami", "-",
                          input="node={{.Node.Hostname}} token={{secret \"token\"}}\n")
    manager.docker("service", "create", "--detach", "--name", "readers", "--mode", "global",
                   "--constraint", "node.role==worker", "--secret", "token",
                   "--config", "source=whoami,target=/etc/whoami", IMAGE)
    for name in WORKERS:
        worker = cluster.node(name)
        container = wait_for_task(cluster, worker, "readers")
        assert worker.docker("exec", container, "cat", "/run/secrets/token").stdout == "shared-token"
        assert worker.docker("exec", container, "cat", "/etc/whoami").stdout == f"node={name} token=shared-token\n"
        assert task_files_mounts(worker)
    assert task_files_mounts(manager) == []  # the manager runs none of its tasks

    manager.docker("service", "rm", "readers")
    for name in WORKERS:
        worker = cluster.node(name)
        cluster.wait_for(lambda w=worker: not task_files_mounts(w), 60, f"{name} let go of the task's files")
    manager.docker("secret", "rm", "token")
