"""Jobs and health checks on a three-host swarm (one manager, two workers, each shoald in a network
namespace of its own, through the real docker CLI): a global job completes once on every node, a
replicated job's completions spread over the nodes with at most MaxConcurrent at once, and a service
whose health check fails on the workers is never counted running there while its tasks are replaced.
Services are created with --no-resolve-image: the CLI's registry lookup cannot leave the namespaces."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from shoal.testing.cluster import ClusterNode, TestCluster
from shoal.testing.daemon import DOCKER_CLI
from shoal.testing.netns import netns_unavailable

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(netns_unavailable() is not None, reason=netns_unavailable() or ""),
    pytest.mark.skipif(DOCKER_CLI is None, reason="no docker CLI"),
]
WORKERS = ("n2", "n3")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestCluster]:
    swarm = TestCluster("test_jobs_health_cluster", tmp_path_factory.mktemp("jobs"))
    try:
        swarm.start(1 + len(WORKERS))
        manager = swarm.node("n1")
        swarm.init(manager)
        for name in WORKERS:
            assert "joined a swarm as a worker" in swarm.join(swarm.node(name), "worker", manager).stdout
        swarm.wait_for(lambda: manager.docker("node", "ls", "-q").stdout.count("\n") == 3, 60, "workers not listed")
        yield swarm
    finally:
        swarm.destroy()


def tasks(manager: ClusterNode, service: str) -> list[dict[str, Any]]:
    ids = manager.docker("service", "ps", "-q", "--no-trunc", service).stdout.split()
    found: list[dict[str, Any]] = manager.docker_json("inspect", "--type", "task", *ids) if ids else []
    return found


def replicas(manager: ClusterNode, service: str) -> str:
    return manager.docker("service", "ls", "--filter", f"name={service}", "--format", "{{.Replicas}}").stdout.strip()


def test_global_job_completes_once_on_every_node(cluster: TestCluster) -> None:
    manager = cluster.node("n1")
    manager.docker("service", "create", "--detach", "--no-resolve-image", "--name", "everywhere",
                   "--mode", "global-job", "busybox", "true")
    cluster.wait_for(lambda: replicas(manager, "everywhere") == "0/0 (3/3 completed)", 90,
                     "the global job did not complete on the three nodes")
    done = tasks(manager, "everywhere")
    assert len({t["NodeID"] for t in done}) == 3
    assert {(t["DesiredState"], t["Status"]["State"]) for t in done} == {("complete", "complete")}


def test_replicated_job_spreads_over_the_nodes(cluster: TestCluster) -> None:
    manager = cluster.node("n1")
    manager.docker("service", "create", "--detach", "--no-resolve-image", "--name", "spread",
                   "--mode", "replicated-job", "--replicas", "6", "--max-concurrent", "3", "busybox", "sleep", "0.5")
    cluster.wait_for(lambda: replicas(manager, "spread") == "0/3 (6/6 completed)", 120,
                     "the replicated job did not complete six times")
    done = tasks(manager, "spread")
    assert sorted(t["Slot"] for t in done) == [0, 1, 2, 3, 4, 5]
    assert len({t["NodeID"] for t in done}) > 1  # not all on the manager


def test_unhealthy_tasks_on_workers_are_replaced_and_never_counted(cluster: TestCluster) -> None:
    manager = cluster.node("n1")
    manager.docker("service", "create", "--detach", "--no-resolve-image", "--name", "sick", "--replicas", "2",
                   "--constraint", "node.role==worker", "--health-cmd", "false", "--health-interval", "300ms",
                   "--health-retries", "2", "--restart-delay", "200ms", "busybox", "sleep", "300")
    counted = False

    def replaced_on_workers() -> bool:
        nonlocal counted
        counted |= not replicas(manager, "sick").startswith("0/")
        failed = [t for t in tasks(manager, "sick") if t["Status"]["State"] == "failed"]
        return len(failed) >= 2

    cluster.wait_for(replaced_on_workers, 90, "unhealthy tasks on the workers were not failed and replaced")
    assert not counted, "a task that never turned healthy counted as running"
    failed = [t for t in tasks(manager, "sick") if t["Status"]["State"] == "failed"]
    assert all(t["Status"]["Err"].endswith("dockerexec: unhealthy container") for t in failed)
    manager.docker("service", "rm", "sick")
