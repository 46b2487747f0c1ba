"""A five-host swarm (three managers, two workers), each shoald in a network namespace of its own, driven
through the real docker CLI: joining with both tokens, a service spread over every node, losing the
leader, a cut-off worker and a partitioned manager. A client writing through the API meanwhile records
what was acknowledged; nothing acknowledged may be lost.

The tests share one cluster (five daemons take a while to start) and run in file order; each leaves
the cluster whole for the next."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.api import errors
from shoal.api.dispatch_wire import LEADER_PATH
from shoal.api.errors import WORKER_NOT_A_MANAGER
from shoal.ca.join import ROOT_PATH
from shoal.manager.wal.framing import HEADER_SIZE
from shoal.node.manager import CONTROL_PATH
from shoal.rpc.client import RpcClient
from shoal.rpc.tls import client_context
from shoal.testing.cluster import ClusterNode, TestCluster
from shoal.testing.daemon import DOCKER_CLI
from shoal.testing.netns import netns_unavailable
from shoal.testing.pki import TestCA

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(netns_unavailable() is not None, reason=netns_unavailable() or ""),
    pytest.mark.skipif(DOCKER_CLI is None, reason="no docker CLI"),
]
MANAGERS = ("n1", "n2", "n3")
WORKERS = ("n4", "n5")
REPLICAS = 10


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestCluster]:
    workdir: Path = tmp_path_factory.mktemp("cluster")
    swarm = TestCluster("test_cluster", workdir)
    try:
        swarm.start(len(MANAGERS) + len(WORKERS))
        first = swarm.node("n1")
        swarm.init(first)
        # Short heartbeats so that a silent node is found within seconds in these tests.
        first.docker("swarm", "update", "--dispatcher-heartbeat", "1s")
        for name in MANAGERS[1:]:
            assert "joined a swarm as a manager" in swarm.join(swarm.node(name), "manager", first).stdout
        for name in WORKERS:
            assert "joined a swarm as a worker" in swarm.join(swarm.node(name), "worker", first).stdout
        yield swarm
    finally:
        swarm.destroy()


def managers(cluster: TestCluster) -> list[ClusterNode]:
    return [cluster.node(name) for name in MANAGERS]


def live_manager(cluster: TestCluster, besides: str = "") -> ClusterNode:
    return next(node for node in managers(cluster) if node.alive and node.name != besides)


def running_tasks(via: ClusterNode, service: str) -> list[dict[str, str]]:
    out = via.docker("service", "ps", service, "--filter", "desired-state=running", "--format",
                     "{{.ID}}|{{.Node}}|{{.CurrentState}}", check=False)
    if out.returncode != 0:
        return []
    rows = [line.split("|") for line in out.stdout.splitlines() if line.strip()]
    return [{"id": task_id, "node": node, "state": state} for task_id, node, state in rows
            if state.startswith("Running")]


class Writer:
    """Writes through whichever manager is alive, one `service update --label-add stepN=1` on a canary
    service at a time, and records each label the API acknowledged."""

    def __init__(self, cluster: TestCluster, service: str) -> None:
        self.cluster = cluster
        self.service = service
        self.acknowledged: list[str] = []
        self.refused = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        step = 0
        while not self._stop.is_set():
            step += 1
            label = f"step{step}"
            via = next((n for n in managers(self.cluster) if n.alive), None)
            if via is None:
                break
            out = via.docker("service", "update", "--detach", "--label-add", f"{label}=1", self.service,
                             check=False, timeout=30)
            if out.returncode == 0:
                self.acknowledged.append(label)
            else:
                self.refused += 1

    def __enter__(self) -> Writer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(60)

    def lost(self, via: ClusterNode) -> list[str]:
        labels = via.docker_json("service", "inspect", self.service)[0]["Spec"]["Labels"]
        return [label for label in self.acknowledged if label not in labels]


def test_nodes_join_with_both_tokens_and_every_manager_sees_them(cluster: TestCluster) -> None:
    for manager in managers(cluster):
        view = cluster.managers_view(manager)
        assert set(view) == {*MANAGERS, *WORKERS}, view
        assert all(row["status"] == "Ready" for row in view.values()), view
        assert sorted(row["manager"] for row in view.values()) == ["", "", "Leader", "Reachable", "Reachable"]
    refused = cluster.node("n4").docker("node", "ls", check=False)
    assert refused.returncode != 0 and WORKER_NOT_A_MANAGER in refused.stderr
    info = cluster.node("n4").docker("info", "--format", "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}")
    assert info.stdout.split() == ["active", "false"]


def test_a_service_spreads_over_every_node(cluster: TestCluster) -> None:
    follower = next(n for n in managers(cluster) if cluster.leader(n) != n.name)
    follower.docker("service", "create", "--detach", "--name", "web", "--replicas", str(REPLICAS),
                    "busybox", "sleep", "100000")
    cluster.wait_for(lambda: len(running_tasks(follower, "web")) == REPLICAS, 60, "10 replicas running")
    nodes = {task["node"] for task in running_tasks(live_manager(cluster), "web")}
    assert nodes == {*MANAGERS, *WORKERS}


def test_drain_moves_work_and_promote_demote_change_the_raft_group(cluster: TestCluster) -> None:
    via = live_manager(cluster)
    worker = cluster.node("n4")
    via.docker("node", "update", "--availability", "drain", worker.name)
    try:
        cluster.wait_for(lambda: {t["node"] for t in running_tasks(via, "web")} == {*MANAGERS, "n5"}
                         and len(running_tasks(via, "web")) == REPLICAS, 60, "the drained node's tasks moved")
    finally:
        via.docker("node", "update", "--availability", "active", worker.name)

    via.docker("node", "promote", worker.name)
    cluster.wait_for(lambda: cluster.managers_view(via)[worker.name]["manager"] == "Reachable", 60,
                     "the promoted node a reachable manager")
    cluster.wait_for(lambda: worker.docker("node", "ls", check=False).returncode == 0, 60,
                     "the promoted node answering cluster calls")
    via.docker("node", "demote", worker.name)
    cluster.wait_for(lambda: cluster.managers_view(via)[worker.name]["manager"] == "", 60,
                     "the demoted node a worker again")
    cluster.wait_for(lambda: WORKER_NOT_A_MANAGER in worker.docker("node", "ls", check=False).stderr, 60,
                     "the demoted node refusing cluster calls as a worker")
    assert sorted(row["manager"] for row in cluster.managers_view(via).values()) == [
        "", "", "Leader", "Reachable", "Reachable"]


def test_losing_the_leader_elects_another_and_restarts_no_task(cluster: TestCluster) -> None:
    watcher = live_manager(cluster)
    old_leader = cluster.node(cluster.leader(watcher) or "")
    before = {task["id"] for task in running_tasks(watcher, "web")}
    watcher.docker("service", "create", "--detach", "--name", "canary", "busybox", "sleep", "100000")
    with Writer(cluster, "canary") as writer:
        cluster.wait_for(lambda: len(writer.acknowledged) >= 3, 60, "the writer's first writes")
        old_leader.kill9()
        survivors = [n for n in managers(cluster) if n.alive]

        def new_leader() -> bool:
            leaders = {cluster.leader(n) for n in survivors}
            return len(leaders) == 1 and None not in leaders and old_leader.name not in leaders

        cluster.wait_for(new_leader, 30, "a new leader that every surviving manager agrees on")
        written = len(writer.acknowledged)
        cluster.wait_for(lambda: len(writer.acknowledged) >= written + 3, 60, "writes through the new leader")
    for survivor in survivors:
        assert cluster.managers_view(survivor)[old_leader.name]["manager"] == "Unreachable"
    # No task restarted: the old leader's tasks keep running without their daemon, the others untouched.
    after = {task["id"] for task in running_tasks(survivors[0], "web")}
    assert after == before
    assert writer.lost(survivors[0]) == []

    old_leader.daemon.start()
    cluster.wait_for(lambda: cluster.managers_view(survivors[0]).get(old_leader.name, {}).get("manager")
                     == "Reachable", 60, "the old leader back as a reachable follower")

    def caught_up() -> bool:  # with what the others committed meanwhile (reads are served locally)
        labels = old_leader.docker_json("service", "inspect", "canary")[0]["Spec"]["Labels"]
        return set(writer.acknowledged) <= set(labels)

    cluster.wait_for(caught_up, 60, "the old leader's store catching up")
    assert {task["id"] for task in running_tasks(old_leader, "web")} == before


def test_a_cut_off_worker_goes_down_and_its_tasks_run_elsewhere(cluster: TestCluster) -> None:
    via = live_manager(cluster)
    worker = cluster.node("n5")
    on_worker = {task["id"] for task in running_tasks(via, "web") if task["node"] == worker.name}
    assert on_worker
    cluster.network.isolate(worker.host)
    try:
        cluster.wait_for(lambda: cluster.managers_view(via)[worker.name]["status"] == "Down", 30,
                         "the cut-off worker marked Down")

        def replaced() -> bool:
            tasks = running_tasks(via, "web")
            return len(tasks) == REPLICAS and all(t["node"] != worker.name for t in tasks)

        cluster.wait_for(replaced, 60, "its tasks running on the other nodes")
    finally:
        cluster.network.reconnect(worker.host)
    cluster.wait_for(lambda: cluster.managers_view(via)[worker.name]["status"] == "Ready", 60,
                     "the worker Ready again")
    # The replacements stay; the worker's stale tasks are shut down: exactly the asked number run.
    cluster.wait_for(lambda: len(running_tasks(via, "web")) == REPLICAS, 60, "exactly 10 replicas")
    assert not on_worker & {task["id"] for task in running_tasks(via, "web")}


def test_a_partitioned_minority_manager_cannot_commit(cluster: TestCluster) -> None:
    via = live_manager(cluster)
    leader = cluster.leader(via)
    minority = next(n for n in managers(cluster) if n.name != leader and n.alive)
    majority = next(n for n in managers(cluster) if n is not minority and n.alive)
    cluster.network.isolate(minority.host)
    try:
        # Cut off, it stops knowing a leader within an election timeout; from then on it refuses writes.
        cluster.wait_for(lambda: minority.docker("node", "ls", check=False).returncode != 0, 30,
                         "the minority manager to lose its leader")
        refused = minority.docker("service", "create", "--detach", "--name", "never", "busybox", "sleep", "1",
                                  check=False, timeout=90)
        assert refused.returncode != 0
        assert "The swarm does not have a leader" in refused.stderr
        majority.docker("service", "create", "--detach", "--name", "majority", "busybox", "sleep", "100000")
        assert majority.docker("service", "inspect", "never", check=False).returncode != 0
        # With one manager cut off, demoting another would leave the group without a quorum: refused
        # up front, as swarmkit does, and nothing changes.
        other = next(n for n in managers(cluster) if n not in (minority, majority) and n.alive)
        cluster.wait_for(lambda: cluster.managers_view(majority).get(minority.name, {}).get("manager")
                         == "Unreachable", 30, "the leader to see the cut-off manager unreachable")
        demote = majority.docker("node", "demote", other.name, check=False)
        assert demote.returncode != 0
        assert "can't remove member from the raft: this would result in a loss of quorum" in demote.stderr
        assert cluster.managers_view(majority)[other.name]["manager"] in ("Leader", "Reachable")
    finally:
        cluster.network.reconnect(minority.host)
    cluster.wait_for(lambda: minority.docker("service", "inspect", "majority", check=False).returncode == 0, 60,
                     "the minority manager catching up after the partition heals")
    assert majority.docker("service", "inspect", "never", check=False).returncode != 0


def test_a_manager_with_a_damaged_log_rejoins_as_a_new_member(cluster: TestCluster) -> None:
    leader = cluster.leader(live_manager(cluster))
    damaged = next(n for n in managers(cluster) if n.alive and n.name != leader)
    via = live_manager(cluster, besides=damaged.name)
    damaged.kill9()
    segments = sorted((damaged.daemon.data_root / "swarm").rglob("*.wal"))
    data = bytearray(segments[-1].read_bytes())
    data[HEADER_SIZE + 1] ^= 0x01  # one bit in a record that was written whole: corruption, not a torn write
    segments[-1].write_bytes(bytes(data))
    via.docker("service", "create", "--detach", "--name", "while-away", "busybox", "sleep", "100000")

    damaged.daemon.start()
    cluster.wait_for(lambda: cluster.managers_view(via).get(damaged.name, {}).get("manager") == "Reachable", 60,
                     "the damaged manager back as a reachable member")
    assert list((damaged.daemon.data_root / "swarm").glob("raft.damaged-*")), "the damaged log was not kept aside"
    cluster.wait_for(lambda: damaged.docker("service", "inspect", "while-away", check=False).returncode == 0, 60,
                     "the rejoined manager caught up from the others")
    assert sorted(row["manager"] for row in cluster.managers_view(via).values()) == [
        "", "", "Leader", "Reachable", "Reachable"]


async def test_certificates_decide_what_a_node_may_call(cluster: TestCluster, tmp_path: Path) -> None:
    """A worker's certificate reaches the dispatcher but not Raft or the control API; a certificate of
    another cluster is refused everywhere; no certificate reaches only the CA's root."""
    address = f"{live_manager(cluster).ip}:2377"  # the hosts are reachable from the machine through the bridge
    certs = cluster.node("n4").daemon.data_root / "swarm" / "certificates"
    root = certs / "swarm-root-ca.crt"
    stranger = TestCA("another-cluster").issue("x", "swarm-manager").write(tmp_path / "stranger")
    worker = RpcClient(client_context(certs / "swarm-node.crt", certs / "swarm-node.key", root))
    foreign = RpcClient(client_context(stranger.cert, stranger.key, root))
    anonymous = RpcClient(client_context(None, None, root))
    try:
        assert (await worker.call(address, LEADER_PATH, None))["leader"]
        with pytest.raises(errors.Forbidden, match="may not call manager routes"):
            await worker.call(address, CONTROL_PATH, {"method": "_nodes_list", "args": [{}], "kwargs": {}})
        with pytest.raises(errors.Forbidden):
            await worker.stream(address, "/raft/v1/stream")
        with pytest.raises(errors.Unavailable):  # the TLS handshake itself fails
            await foreign.call(address, LEADER_PATH, None)
        assert (await anonymous.call(address, ROOT_PATH, None))["root"] == root.read_bytes()
        with pytest.raises(errors.Forbidden, match="no client certificate"):
            await anonymous.call(address, LEADER_PATH, None)
    finally:
        for client in (worker, foreign, anonymous):
            await client.close()


def test_quorum_loss_refuses_writes_and_force_new_cluster_brings_the_swarm_back(cluster: TestCluster) -> None:
    """Last: it leaves a one-manager swarm behind."""
    survivor = live_manager(cluster)
    lost = [n for n in managers(cluster) if n is not survivor and n.alive]
    for node in lost:
        node.kill9()
    cluster.wait_for(lambda: survivor.docker("node", "ls", check=False).returncode != 0, 30,
                     "the survivor to lose its quorum")

    def refused_for_want_of_a_leader() -> bool:
        # Until its election timer fires, the survivor still forwards writes to the dead leader, and the
        # refusal says it cannot reach it; then it knows there is no leader, and says so as Swarm does.
        refused = survivor.docker("service", "create", "--detach", "--name", "no-quorum", "busybox", "sleep",
                                  "1", check=False)
        assert refused.returncode != 0, "a write was accepted without a quorum"
        return "The swarm does not have a leader" in refused.stderr

    cluster.wait_for(refused_for_want_of_a_leader, 30, "writes refused with Swarm's no-leader message")

    out = survivor.docker("swarm", "init", "--force-new-cluster", "--advertise-addr", survivor.ip).stdout
    assert "Swarm initialized" in out
    assert cluster.leader(survivor) == survivor.name
    services = survivor.docker("service", "ls", "--format", "{{.Name}}").stdout.split()
    assert {"web", "canary", "majority", "while-away"} <= set(services) and "no-quorum" not in services
    survivor.docker("service", "create", "--detach", "--name", "after-recovery", "busybox", "sleep", "100000")
    cluster.wait_for(lambda: len(running_tasks(survivor, "web")) == REPLICAS, 90,
                     "10 replicas again (the lost managers' tasks replaced)")
