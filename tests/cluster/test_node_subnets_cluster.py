"""Issue 7 on a real two-host swarm (a manager and a worker, each shoald with the process executor in a
network namespace of its own, through the real docker CLI): each node's task bridge has a subnet of
its own from the managers (172.24.0.0/14 in /24s, never two nodes the same), and tasks of one overlay
network get addresses that are unique across the nodes."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import pytest

from shoal.allocator.nodesubnets import NODE_SUBNET_RANGE
from shoal.testing.cluster import ClusterNode, TestCluster
from shoal.testing.daemon import DOCKER_CLI
from shoal.testing.netns import netns_unavailable

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(netns_unavailable() is not None, reason=netns_unavailable() or ""),
    pytest.mark.skipif(DOCKER_CLI is None, reason="no docker CLI"),
]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestCluster]:
    swarm = TestCluster("test_node_subnets", tmp_path_factory.mktemp("subnets"))
    try:
        swarm.start(2)
        manager = swarm.node("n1")
        swarm.init(manager)
        assert "joined a swarm as a worker" in swarm.join(swarm.node("n2"), "worker", manager).stdout
        yield swarm
    finally:
        swarm.destroy()


def local_task_address(node: ClusterNode, service: str) -> ipaddress.IPv4Interface | None:
    """The address on eth0 of the service's task running on `node`, seen from inside the task."""
    ids = node.docker("ps", "-q", "--filter", f"name={service}.").stdout.split()
    if not ids:
        return None
    shown = node.docker("exec", ids[0], "ip", "-o", "-4", "addr", "show", "dev", "eth0", check=False).stdout.split()
    return ipaddress.IPv4Interface(shown[shown.index("inet") + 1]) if "inet" in shown else None


def test_each_node_has_a_swarm_subnet_of_its_own(cluster: TestCluster) -> None:
    manager = cluster.node("n1")
    manager.docker("network", "create", "-d", "overlay", "spread")
    manager.docker("service", "create", "--detach", "--name", "everywhere", "--mode", "global", "--network", "spread",
                   "my-apache2:latest", "sleep", "3600")
    found: dict[str, ipaddress.IPv4Interface] = {}

    def both_addressed() -> bool:
        for node in cluster.nodes:
            address = local_task_address(node, "everywhere")
            if address is not None:
                found[node.name] = address
        return len(found) == 2

    cluster.wait_for(both_addressed, 90, f"tasks never got addresses on both nodes: {found}")
    subnets = {name: address.network for name, address in found.items()}
    assert subnets["n1"] != subnets["n2"], subnets
    for subnet in subnets.values():
        assert subnet.prefixlen == 24 and subnet.subnet_of(NODE_SUBNET_RANGE), subnets

    tasks = manager.docker_json("inspect", "--type", "task",
                                *manager.docker("service", "ps", "-q", "--no-trunc", "everywhere").stdout.split())
    overlay = [t["NetworksAttachments"][0]["Addresses"][0] for t in tasks if t["Status"]["State"] == "running"]
    assert len(overlay) == 2 and len(set(overlay)) == 2, overlay
    manager.docker("service", "rm", "everywhere")


def test_a_worker_shows_the_networks_of_its_tasks_and_changes_none(cluster: TestCluster) -> None:
    manager, worker = cluster.node("n1"), cluster.node("n2")
    network_id = manager.docker("network", "create", "-d", "overlay", "--label", "tier=back", "shown").stdout.strip()
    assert worker.docker("network", "ls", "-q", "--filter", "name=shown").stdout == ""  # no task of it there yet
    manager.docker("service", "create", "--detach", "--name", "onworker", "--mode", "global", "--network", "shown",
                   "my-apache2:latest", "sleep", "3600")
    cluster.wait_for(lambda: worker.docker("network", "ls", "-q", "--filter", "name=shown").stdout.split()
                     == [network_id[:12]], 60, "the worker never showed its task's network")
    shown = worker.docker_json("network", "inspect", "shown")[0]
    assert (shown["Id"], shown["Scope"], shown["Labels"]) == (network_id, "swarm", {"tier": "back"})
    assert shown["IPAM"]["Config"] == manager.docker_json("network", "inspect", "shown")[0]["IPAM"]["Config"]
    made = worker.docker("network", "create", "-d", "overlay", "elsewhere", check=False)
    assert made.returncode == 1
    assert ("Cannot create a multi-host network from a worker node. Please create the network from a manager "
            "node.") in made.stderr
    removed = worker.docker("network", "rm", "shown", check=False)
    assert removed.returncode == 1 and "This node is not a swarm manager." in removed.stderr
    manager.docker("service", "rm", "onworker")
