"""A worker whose shoald was stopped while its service was removed on the manager gets that service's
tasks shut down when it comes back (Swarm: a returning node's stale tasks are shut down), instead of
re-adopting them: no container and no process of the service remains on it.

One manager and one worker on the process executor; the task command carries a marker so its
processes can be found on the machine."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.testing.cluster import ClusterNode, TestCluster
from shoal.testing.daemon import DOCKER_CLI
from shoal.testing.netns import netns_unavailable

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(netns_unavailable() is not None, reason=netns_unavailable() or ""),
    pytest.mark.skipif(DOCKER_CLI is None, reason="no docker CLI"),
    pytest.mark.timeout(240),
]
MARKERS = {True: "86427", False: "86428"}  # `sleep 8642x`: only this test's tasks run them


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestCluster]:
    swarm = TestCluster("stale_tasks", Path(tmp_path_factory.mktemp("stale_tasks")))
    try:
        swarm.start(2)
        swarm.init(swarm.node("n1"))
        swarm.join(swarm.node("n2"), "worker", swarm.node("n1"))
        yield swarm
    finally:
        swarm.destroy()


def task_processes(marker: str) -> list[str]:
    found = subprocess.run(["pgrep", "-f", f"sleep {marker}"], capture_output=True, text=True)
    return found.stdout.split()


def containers(node: ClusterNode, service: str) -> list[str]:
    return node.docker("ps", "-a", "--filter", f"name={service}.", "--format", "{{.Names}}").stdout.split()


@pytest.mark.parametrize("marked_down", [True, False], ids=["after-it-went-down", "before-it-went-down"])
def test_a_restarted_worker_shuts_down_the_tasks_of_a_service_removed_while_it_was_away(
        cluster: TestCluster, marked_down: bool) -> None:
    manager, worker = cluster.node("n1"), cluster.node("n2")
    service, marker = f"stale-{MARKERS[marked_down]}", MARKERS[marked_down]
    # --no-resolve-image: the hosts reach no registry, and the CLI's digest lookup would wait ~30 s on it.
    manager.docker("service", "create", "--detach", "--no-resolve-image", "--name", service, "--replicas", "2",
                   "--constraint", "node.role==worker", "--stop-grace-period", "1s", "busybox", "sleep", marker)
    cluster.wait_for(lambda: len(containers(worker, service)) == 2 and task_processes(marker) != [], 60,
                     "both tasks running on the worker")

    worker.daemon.stop()  # its tasks keep running without it
    manager.docker("service", "rm", service)
    if marked_down:
        cluster.wait_for(lambda: cluster.managers_view(manager)[worker.name]["status"] == "Down", 30,
                         "the stopped worker marked Down")
    assert task_processes(marker) != []

    worker.daemon.start()
    cluster.wait_for(lambda: cluster.managers_view(manager)[worker.name]["status"] == "Ready", 60,
                     "the worker back and Ready")
    cluster.wait_for(lambda: containers(worker, service) == [] and task_processes(marker) == [], 60,
                     "the removed service's tasks gone from the worker")
