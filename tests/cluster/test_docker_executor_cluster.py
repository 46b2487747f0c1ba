"""The docker executor on every node of a swarm: each shoald (a manager and a worker, each on a netns host
of its own) drives its own host's dockerd, so a service spread over both runs one real container on each
engine, and `docker ps` through each shoald lists that node's own task container.

Needs root, dockerd (Debian's docker.io) and busybox-static for the image, imported into each engine."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from shoal.executor.oci.rootfs import busybox_missing_reason
from shoal.testing.cluster import CLUSTER_PORT, ClusterNode, TestCluster
from shoal.testing.daemon import DOCKER_CLI, ShoalDaemon
from shoal.testing.dockerd_hosts import Dockerd, dockerd_unavailable, engine_for
from shoal.testing.netns import netns_unavailable

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(netns_unavailable() is not None, reason=netns_unavailable() or ""),
    pytest.mark.skipif(DOCKER_CLI is None, reason="no docker CLI"),
    pytest.mark.skipif(dockerd_unavailable() is not None, reason=dockerd_unavailable() or ""),
    pytest.mark.skipif(busybox_missing_reason() is not None, reason=busybox_missing_reason() or ""),
    pytest.mark.timeout(300),
]
IMAGE = "shoal-cluster-busybox:latest"


@dataclass
class EngineCluster:
    swarm: TestCluster
    engines: dict[str, Dockerd]

    def engine_ps(self, node: ClusterNode) -> list[str]:
        """Container names as the node's own dockerd lists them (not through shoald)."""
        assert DOCKER_CLI is not None
        out = subprocess.run([DOCKER_CLI, "-H", self.engines[node.name].base_url, "ps", "--format", "{{.Names}}"],
                             capture_output=True, text=True, check=True, timeout=30)
        return out.stdout.split()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineCluster]:
    workdir = Path(tmp_path_factory.mktemp("docker_exec"))
    # TestCluster.start gives each shoald the process executor's arguments; these need their engine's.
    swarm = TestCluster("docker_exec", workdir, executor="docker")
    engines: dict[str, Dockerd] = {}
    tarball = workdir / "busybox.tar"
    try:
        swarm.network.create()
        subprocess.run([sys.executable, "-m", "shoal.executor.oci.rootfs", "web", str(tarball)], check=True,
                       timeout=60)
        for index in (1, 2):
            host = swarm.network.add_host(f"n{index}")
            engine = engines[host.label] = engine_for(host, workdir / host.label / "dockerd", index)
            engine.start()
            assert DOCKER_CLI is not None
            subprocess.run([DOCKER_CLI, "-H", engine.base_url, "import", "--change", 'CMD ["sleep","3600"]',
                            str(tarball), IMAGE], check=True, capture_output=True, timeout=60)
            daemon = ShoalDaemon(workdir / host.label, "docker", launcher=host.argv_inside(), extra_args=[
                "--listen-addr", f"0.0.0.0:{CLUSTER_PORT}", "--node-name", host.label,
                "--docker-host", engine.base_url])
            swarm.nodes.append(ClusterNode(host, daemon))
            daemon.start()
        swarm.init(swarm.node("n1"))
        swarm.join(swarm.node("n2"), "worker", swarm.node("n1"))
        yield EngineCluster(swarm, engines)
    finally:
        for node in swarm.nodes:
            with contextlib.suppress(Exception):
                node.daemon.leave_and_stop()  # its task containers go from its engine
        for engine in engines.values():
            with contextlib.suppress(Exception):
                engine.stop()
        swarm.network.destroy()


def test_each_node_runs_its_tasks_on_its_own_engine(cluster: EngineCluster) -> None:
    swarm = cluster.swarm
    manager, worker = swarm.node("n1"), swarm.node("n2")
    # --no-resolve-image: the hosts reach no registry, and the CLI's digest lookup would wait on it.
    manager.docker("service", "create", "--detach", "--no-resolve-image", "--name", "web", "--replicas", "2",
                   "--replicas-max-per-node", "1", "--stop-grace-period", "1s", IMAGE)

    def running() -> dict[str, str]:
        out = manager.docker("service", "ps", "web", "--filter", "desired-state=running",
                             "--format", "{{.Node}} {{.CurrentState}}").stdout
        return dict(line.split(" ", 1) for line in out.splitlines() if line.strip())

    swarm.wait_for(lambda: {node: state.split()[0] for node, state in running().items()}
                   == {"n1": "Running", "n2": "Running"}, 90, "one task running on each node")
    for node in (manager, worker):
        on_engine = cluster.engine_ps(node)
        assert len(on_engine) == 1 and on_engine[0].startswith("web."), (node.name, on_engine)
        through_shoald = node.docker("ps", "--format", "{{.Names}}").stdout.split()
        assert through_shoald == on_engine, (node.name, through_shoald, on_engine)
    # Each engine holds a different task: the two nodes did not share one engine.
    assert cluster.engine_ps(manager) != cluster.engine_ps(worker)


def test_a_restarted_worker_removes_the_containers_of_a_service_removed_meanwhile(cluster: EngineCluster) -> None:
    """Re-adoption from the engine: the worker's shoald stops (its container keeps running on its
    engine), the service goes on the manager, and once the worker is back its engine holds none of it."""
    swarm = cluster.swarm
    manager, worker = swarm.node("n1"), swarm.node("n2")
    manager.docker("service", "create", "--detach", "--no-resolve-image", "--name", "gone",
                   "--constraint", "node.role==worker",
                   "--stop-grace-period", "1s", IMAGE)

    def on_worker_engine() -> list[str]:
        return [name for name in cluster.engine_ps(worker) if name.startswith("gone.")]

    swarm.wait_for(lambda: len(on_worker_engine()) == 1, 60, "the task's container running on the worker's engine")
    worker.daemon.stop()
    manager.docker("service", "rm", "gone")
    assert len(on_worker_engine()) == 1  # nobody removes it while the worker's shoald is away
    worker.daemon.start()
    def listed_by_shoald() -> list[str]:
        return [n for n in worker.docker("ps", "-a", "--format", "{{.Names}}").stdout.split() if n.startswith("gone.")]

    # The engine's container goes first; the node's own listing follows once its task is forgotten.
    swarm.wait_for(lambda: on_worker_engine() == [] and listed_by_shoald() == [], 60,
                   "the removed service's container gone from the engine and from the node's docker ps -a")
