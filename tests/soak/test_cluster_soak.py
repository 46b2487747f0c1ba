"""Soaks of a five-host swarm (3 managers, 2 workers; shoalds in network namespaces) at shoal's default
dispatcher heartbeat: idle, with packet loss on every link, and with one node paused 1 s in every 10 s.
Each asserts that no election was held (every manager's Raft term unchanged) and that no node was
marked Down, counted from the daemons' logs (tests/soak/cluster_watch.py), with `docker node ls`
checked throughout as the user would see it.

    SHOAL_SOAK_MINUTES=10 python3 -m pytest -m soak tests/soak/test_cluster_soak.py   # the full soaks
    SHOAL_SOAK_MINUTES=2  python3 -m pytest -m soak tests/soak/test_cluster_soak.py   # a short run

SHOAL_SOAK_LINK_LOSS sets the share of packets dropped on each link (0.10 by default). SHOAL_SOAK_PAUSED
picks the paused node: `follower` (a manager that does not lead; the default),
`worker` or `leader`. SHOAL_SOAK_HEARTBEAT (seconds) replaces the default heartbeat, to see the soaks
fail when it is too short for the faults."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shoal.testing.cluster import ClusterNode, TestCluster
from shoal.testing.daemon import DOCKER_CLI
from shoal.testing.netns import netns_unavailable

from .cluster_watch import down_verdicts, highest_term, read_log, soak_seconds

pytestmark = [
    pytest.mark.soak,
    pytest.mark.root,
    pytest.mark.skipif(netns_unavailable() is not None, reason=netns_unavailable() or ""),
    pytest.mark.skipif(DOCKER_CLI is None, reason="no docker CLI"),
    # The soak itself, plus starting five daemons and settling around it.
    pytest.mark.timeout(soak_seconds() + 300),
]
MANAGERS = ("n1", "n2", "n3")
WORKERS = ("n4", "n5")
REPLICAS = 10
# On each host's link, in and out (SHOAL_SOAK_LINK_LOSS to change it): a packet between two hosts
# crosses two such links, so 10 % on each is 19 % between two hosts.
LINK_LOSS = float(os.environ.get("SHOAL_SOAK_LINK_LOSS", "0.10"))
PAUSE_EVERY_S = 10.0
PAUSE_FOR_S = 1.0
CHECK_EVERY_S = 2.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestCluster]:
    swarm = TestCluster("soak", Path(tmp_path_factory.mktemp("soak")))
    try:
        swarm.start(len(MANAGERS) + len(WORKERS))
        first = swarm.node("n1")
        swarm.init(first)
        heartbeat = os.environ.get("SHOAL_SOAK_HEARTBEAT")
        if heartbeat:
            first.docker("swarm", "update", "--dispatcher-heartbeat", f"{float(heartbeat)}s")
        for name in MANAGERS[1:]:
            swarm.join(swarm.node(name), "manager", first)
        for name in WORKERS:
            swarm.join(swarm.node(name), "worker", first)
        first.docker("service", "create", "--detach", "--name", "idle", "--replicas", str(REPLICAS),
                     "busybox", "sleep", "1000000")
        swarm.wait_for(lambda: running(first) == REPLICAS, 90, f"{REPLICAS} replicas running")
        yield swarm
    finally:
        swarm.destroy()


def running(via: ClusterNode) -> int:
    out = via.docker("service", "ls", "--filter", "name=idle", "--format", "{{.Replicas}}", check=False)
    return int(out.stdout.split("/")[0]) if out.returncode == 0 and out.stdout.strip() else 0


class Record:
    """The managers' terms and the Down verdicts at the start of a soak, and what changed since."""

    def __init__(self, cluster: TestCluster) -> None:
        self.cluster = cluster
        self.terms = self._terms()
        self.downs = self._downs()
        self.seen_not_ready: list[str] = []

    def _terms(self) -> dict[str, int]:
        return {name: highest_term(read_log(self.cluster.node(name).daemon.log_path)) for name in MANAGERS}

    def _downs(self) -> list[str]:
        return [line for name in MANAGERS for line in down_verdicts(read_log(self.cluster.node(name).daemon.log_path))]

    def check_view(self) -> None:
        """`docker node ls` through a manager that answers: every node Ready."""
        for name in MANAGERS:
            view = self.cluster.managers_view(self.cluster.node(name))
            if view:
                self.seen_not_ready += [f"{host}: {row['status']}" for host, row in view.items()
                                        if row["status"] != "Ready"]
                return

    def problems(self) -> list[str]:
        found = []
        terms = self._terms()
        if terms != self.terms:
            found.append(f"Raft terms moved, so an election was held: {self.terms} -> {terms}")
        found += [f"marked Down: {line}" for line in self._downs()[len(self.downs):]]
        found += [f"docker node ls showed {row}" for row in self.seen_not_ready]
        return found

    def assert_quiet(self) -> None:
        assert self.problems() == []


def soak(cluster: TestCluster, fault: Callable[[float], None] | None = None) -> Record:
    """Run for the soak's length, calling ``fault(elapsed)`` every second and checking the node list every
    CHECK_EVERY_S; returns the record to assert on."""
    healthy(cluster)
    record = Record(cluster)
    started = time.monotonic()
    next_check = started
    while (elapsed := time.monotonic() - started) < soak_seconds():
        if fault is not None:
            fault(elapsed)
        if time.monotonic() >= next_check:
            record.check_view()
            next_check += CHECK_EVERY_S
        time.sleep(min(1.0, max(0.0, next_check - time.monotonic())))
    return record


def healthy(cluster: TestCluster) -> None:
    def every_node_ready() -> bool:
        view = cluster.managers_view(cluster.node("n1"))
        return len(view) == len(MANAGERS) + len(WORKERS) and all(r["status"] == "Ready" for r in view.values()) \
            and cluster.leader(cluster.node("n1")) is not None

    cluster.wait_for(every_node_ready, 60, "every node Ready with a leader before the soak")


def test_idle(cluster: TestCluster) -> None:
    record = soak(cluster)
    record.assert_quiet()
    assert running(cluster.node("n1")) == REPLICAS


def test_packet_loss_on_every_link(cluster: TestCluster) -> None:
    for node in cluster.nodes:
        cluster.network.drop_share(node.host, LINK_LOSS)
    try:
        record = soak(cluster)
    finally:
        for node in cluster.nodes:
            cluster.network.heal(node.host)
    record.assert_quiet()


def paused_node(cluster: TestCluster) -> ClusterNode:
    choice = os.environ.get("SHOAL_SOAK_PAUSED", "follower")
    leader = cluster.leader(cluster.node("n1"))
    if choice == "leader":
        return cluster.node(leader or "n1")
    if choice == "worker":
        return cluster.node(WORKERS[-1])
    if choice == "follower":
        return next(cluster.node(name) for name in MANAGERS if name != leader)
    raise ValueError(f"SHOAL_SOAK_PAUSED must be follower, worker or leader, not {choice!r}")


def test_one_node_paused_one_second_in_ten(cluster: TestCluster) -> None:
    healthy(cluster)
    node = paused_node(cluster)
    paused_at: list[float] = []

    def pause(elapsed: float) -> None:
        if elapsed >= len(paused_at) * PAUSE_EVERY_S:
            paused_at.append(elapsed)
            node.pause()
            try:
                time.sleep(PAUSE_FOR_S)
            finally:
                node.resume()

    record = soak(cluster, pause)
    assert len(paused_at) >= soak_seconds() // PAUSE_EVERY_S
    record.assert_quiet()
