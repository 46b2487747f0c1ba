"""A manager taken out of the Raft group while it was cut off learns it when the link returns and stops
acting as a manager, without disturbing the others (no election: their Raft terms stay where they were).

- Demoted while away: it comes back as a worker, answering cluster calls with Swarm's worker text.
- Demoted and then removed (`node rm --force`, once Down) while away: the managers refuse its
  certificate; it stops its manager half all the same (its API answers as a worker's) and is not
  listed again.
- The cut-off manager was the leader: the others elect a new one, which demotes it; back, it becomes a
  worker without causing another election.

Three managers, one cluster for the three tests (they run in file order)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.api.errors import WORKER_NOT_A_MANAGER
from shoal.testing.cluster import ClusterNode, TestCluster
from shoal.testing.daemon import DOCKER_CLI
from shoal.testing.netns import netns_unavailable

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(netns_unavailable() is not None, reason=netns_unavailable() or ""),
    pytest.mark.skipif(DOCKER_CLI is None, reason="no docker CLI"),
    pytest.mark.timeout(300),
]
MANAGERS = ("n1", "n2", "n3")
TERM_LINE = re.compile(r"raft [0-9a-f]+: term (\d+)")  # each member logs every term it enters


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestCluster]:
    swarm = TestCluster("removed_away", Path(tmp_path_factory.mktemp("removed_away")))
    try:
        swarm.start(len(MANAGERS))
        first = swarm.node("n1")
        swarm.init(first)
        for name in MANAGERS[1:]:
            swarm.join(swarm.node(name), "manager", first)
        yield swarm
    finally:
        swarm.destroy()


def term(node: ClusterNode) -> int:
    text = node.daemon.log_path.read_text(errors="replace")
    return max((int(found.group(1)) for found in TERM_LINE.finditer(text)), default=0)


def leader_and_away(cluster: TestCluster) -> tuple[ClusterNode, ClusterNode, ClusterNode]:
    """(leader, the other member of the majority, the manager to cut off)."""
    leader = cluster.node(cluster.leader(cluster.node("n1")) or "")
    others = [cluster.node(name) for name in MANAGERS if name != leader.name]
    return leader, others[0], others[1]


def answers_as_worker(node: ClusterNode) -> bool:
    return WORKER_NOT_A_MANAGER in node.docker("node", "ls", check=False, timeout=30).stderr


def test_a_manager_demoted_while_cut_off_returns_as_a_worker(cluster: TestCluster) -> None:
    leader, peer, away = leader_and_away(cluster)
    terms = {node.name: term(node) for node in (leader, peer)}
    cluster.network.isolate(away.host)
    try:
        leader.docker("node", "demote", away.name)
        cluster.wait_for(lambda: cluster.managers_view(leader)[away.name]["manager"] == "", 30,
                         "the cut-off manager out of the Raft group")
    finally:
        cluster.network.reconnect(away.host)
    cluster.wait_for(lambda: answers_as_worker(away), 60, "the returned node answering as a worker")
    cluster.wait_for(lambda: cluster.managers_view(leader)[away.name]["status"] == "Ready", 30,
                     "the returned node Ready")
    view = cluster.managers_view(leader)
    assert {name: row["manager"] for name, row in view.items()} == {
        leader.name: "Leader", peer.name: "Reachable", away.name: ""}, view
    assert {node.name: term(node) for node in (leader, peer)} == terms, "the majority held an election"


def test_a_manager_removed_while_cut_off_stops_acting_as_one(cluster: TestCluster) -> None:
    leader, peer, away = leader_and_away(cluster)
    leader.docker("node", "promote", away.name)
    cluster.wait_for(lambda: away.docker("node", "ls", check=False, timeout=30).returncode == 0, 60,
                     "the node a manager again")
    terms = {node.name: term(node) for node in (leader, peer)}
    cluster.network.isolate(away.host)
    try:
        leader.docker("node", "demote", away.name)
        cluster.wait_for(lambda: cluster.managers_view(leader)[away.name] == {"status": "Down", "manager": ""},
                         30, "the cut-off manager out of the Raft group and Down")
        leader.docker("node", "rm", "--force", away.name)
    finally:
        cluster.network.reconnect(away.host)
    cluster.wait_for(lambda: answers_as_worker(away), 60, "the removed node no longer acting as a manager")
    view = cluster.managers_view(leader)
    assert {name: row["manager"] for name, row in view.items()} == {leader.name: "Leader", peer.name: "Reachable"}
    assert {node.name: term(node) for node in (leader, peer)} == terms, "the majority held an election"


def test_a_leader_demoted_while_cut_off_returns_as_a_worker(cluster: TestCluster) -> None:
    """The cut-off member was the leader: the others elect a new one and demote it; back, it follows
    nobody (its peers drop its messages) and becomes a worker through its session, with no further
    election."""
    leader = cluster.node(cluster.leader(cluster.node("n1")) or "")
    listed = cluster.managers_view(leader)
    removed = next(cluster.node(name) for name in MANAGERS if name not in listed)  # by the previous test
    removed.docker("swarm", "leave", "--force")
    cluster.join(removed, "manager", leader)
    old = cluster.node(cluster.leader(cluster.node("n1")) or "")
    others = [cluster.node(name) for name in MANAGERS if name != old.name]
    cluster.network.isolate(old.host)
    try:
        cluster.wait_for(lambda: cluster.leader(others[0]) in {n.name for n in others}, 30, "a new leader")
        leader = cluster.node(cluster.leader(others[0]) or "")
        leader.docker("node", "demote", old.name)
        cluster.wait_for(lambda: cluster.managers_view(leader)[old.name]["manager"] == "", 30,
                         "the cut-off leader out of the Raft group")
        terms = {node.name: term(node) for node in others}
    finally:
        cluster.network.reconnect(old.host)
    cluster.wait_for(lambda: answers_as_worker(old), 60, "the old leader answering as a worker")
    cluster.wait_for(lambda: cluster.managers_view(leader)[old.name]["status"] == "Ready", 30,
                     "the old leader Ready")
    assert cluster.leader(leader) == leader.name
    assert {node.name: term(node) for node in others} == terms, "its return caused an election"
