"""At shoal's default heartbeat (1 s: a node is Down after 3 s of silence), losing a leader whose host was
cut off (its connections hang rather than fail, unlike a kill -9) marks no other node Down: the new
leader gives the nodes it has not heard from yet a second grace while their agents find it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.testing.cluster import TestCluster
from shoal.testing.daemon import DOCKER_CLI
from shoal.testing.netns import netns_unavailable

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(netns_unavailable() is not None, reason=netns_unavailable() or ""),
    pytest.mark.skipif(DOCKER_CLI is None, reason="no docker CLI"),
    pytest.mark.timeout(300),
]
MANAGERS = ("n1", "n2", "n3")
WORKERS = ("n4", "n5")
WATCH_S = 20.0  # several graces (3 s) and more than the new leader's doubled one


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestCluster]:
    swarm = TestCluster("leader_cut", Path(tmp_path_factory.mktemp("leader_cut")))
    try:
        swarm.start(len(MANAGERS) + len(WORKERS))
        first = swarm.node("n1")
        swarm.init(first)  # the default heartbeat: no --dispatcher-heartbeat
        for name in MANAGERS[1:]:
            swarm.join(swarm.node(name), "manager", first)
        for name in WORKERS:
            swarm.join(swarm.node(name), "worker", first)
        yield swarm
    finally:
        swarm.destroy()


def test_a_cut_off_leader_is_replaced_and_no_other_node_goes_down(cluster: TestCluster) -> None:
    first = cluster.node("n1")
    assert "Heartbeat Period: 1 second" in first.docker("info").stdout
    old = cluster.node(cluster.leader(first) or "")
    survivors = [cluster.node(name) for name in MANAGERS if name != old.name]
    cluster.network.isolate(old.host)
    try:
        cluster.wait_for(lambda: cluster.leader(survivors[0]) not in (None, old.name), 30, "a new leader")
        seen_down: set[str] = set()

        def watch() -> bool:
            view = cluster.managers_view(survivors[0])
            seen_down.update(name for name, row in view.items() if row["status"] == "Down")
            return old.name in seen_down

        cluster.wait_for(watch, 30, "the cut-off leader marked Down")
        # Keep watching for several graces: nobody else may go Down meanwhile (the deadline passing
        # with only the old leader Down is what we want).
        with contextlib.suppress(AssertionError):
            cluster.wait_for(lambda: watch() and len(seen_down) > 1, WATCH_S, "")
        assert seen_down == {old.name}
    finally:
        cluster.network.reconnect(old.host)
    cluster.wait_for(lambda: cluster.managers_view(survivors[0]).get(old.name, {}).get("status") == "Ready", 60,
                     "the old leader back and Ready")
