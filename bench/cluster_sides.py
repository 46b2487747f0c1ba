"""The two five-host clusters the cluster benchmark compares, behind one interface so that every
measurement runs the same code on both: shoald (oci executor) and dockerd 20.10's swarm mode, each host a
network namespace on a bridge of its own (testing.netns), 3 managers and 2 workers, the same busybox
image imported into every node, driven by the same client (docker-py's APIClient at API 1.41, one per
node, over each daemon's unix socket).

Scripts in bench/ import this as `cluster_sides` (python puts the script's directory on sys.path)."""

from __future__ import annotations

import contextlib
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker

from shoal.api.defaults import NANOS
from shoal.executor.oci.rootfs import build_busybox_rootfs, write_archive
from shoal.testing.cluster import ClusterNode, TestCluster
from shoal.testing.dockerd_hosts import DockerdHosts, DockerdNode, api_client
from shoal.testing.netns import Host, TestNetwork

MANAGERS = 3
WORKERS = 2
IMAGE = "bench-busybox:latest"
COMMAND = ["sleep", "3600"]
POLL_S = 0.05
PROBE_TIMEOUT_S = 1.5  # one attempt of a write or a read while the cluster may be without a leader
SETTLE_TIMEOUT_S = 180.0


def poll_until(condition: Callable[[], bool], what: str, timeout: float = SETTLE_TIMEOUT_S,
               interval: float = POLL_S) -> None:
    deadline = time.monotonic() + timeout
    while not quietly(condition):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not reached within {timeout:.0f} s")
        time.sleep(interval)


def quietly(condition: Callable[[], bool]) -> bool:
    """The condition, or False while the daemon cannot answer it (no leader yet, a node restarting)."""
    try:
        return condition()
    except (docker.errors.APIError, docker.errors.DockerException, OSError):
        return False


@dataclass
class Member:
    """One host of a cluster: its name in the swarm, its namespace, and the client for its daemon."""

    name: str
    host: Host
    base_url: str

    def __post_init__(self) -> None:
        self.client = api_client(self.base_url, timeout=120)
        self.probe = api_client(self.base_url, timeout=PROBE_TIMEOUT_S)

    def close(self) -> None:
        self.client.close()
        self.probe.close()


class ClusterSide(ABC):
    """A five-host swarm under test. ``members[:3]`` are the managers, ``members[3:]`` the workers."""

    label: str
    network: TestNetwork
    members: list[Member]

    @abstractmethod
    def start(self) -> None: ...

    @abstractmethod
    def kill9(self, member: Member) -> None: ...

    @abstractmethod
    def restart(self, member: Member) -> None: ...

    @abstractmethod
    def alive(self, member: Member) -> bool: ...

    @abstractmethod
    def destroy(self) -> None: ...

    @property
    def managers(self) -> list[Member]:
        return self.members[:MANAGERS]

    @property
    def workers(self) -> list[Member]:
        return self.members[MANAGERS:]

    def member(self, name: str) -> Member:
        return next(m for m in self.members if m.name == name)

    def nodes(self, via: Member, probe: bool = True) -> list[dict[str, Any]]:
        return list((via.probe if probe else via.client).nodes())

    def leader(self, via: Member) -> Member | None:
        for node in self.nodes(via):
            if (node.get("ManagerStatus") or {}).get("Leader"):
                return self.member(node["Description"]["Hostname"])
        return None

    def live_leader(self) -> Member:
        """The leader as some live manager sees it."""
        for via in self.managers:
            if self.alive(via):
                found = quietly(lambda via=via: self.leader(via) is not None) and self.leader(via)
                if found:
                    return found
        raise RuntimeError(f"{self.label}: no manager knows a leader")

    def node_id(self, via: Member, name: str) -> str:
        return next(str(n["ID"]) for n in self.nodes(via, probe=False) if n["Description"]["Hostname"] == name)

    def healthy(self) -> bool:
        """Every node Ready and every manager Reachable with one leader, as each live manager sees it."""
        for via in self.managers:
            nodes = self.nodes(via)
            if len(nodes) != len(self.members) or any(n["Status"]["State"] != "ready" for n in nodes):
                return False
            statuses = [n.get("ManagerStatus") for n in nodes if n.get("ManagerStatus")]
            if len(statuses) != MANAGERS or any(s.get("Reachability") != "reachable" for s in statuses):
                return False
            if sum(1 for s in statuses if s.get("Leader")) != 1:
                return False
        return True

    def wait_healthy(self) -> None:
        poll_until(self.healthy, f"{self.label}: every node ready, every manager reachable", interval=0.2)

    def set_heartbeat(self, seconds: float) -> None:
        """`docker swarm update --dispatcher-heartbeat`, as the CLI does it: the whole spec sent back."""
        client = self.live_leader().client
        swarm = client.inspect_swarm()
        spec = swarm["Spec"]
        spec.setdefault("Dispatcher", {})["HeartbeatPeriod"] = int(seconds * NANOS)
        client.update_swarm(version=swarm["Version"]["Index"], swarm_spec=spec)

    def heartbeat(self) -> float:
        period = self.live_leader().client.inspect_swarm()["Spec"]["Dispatcher"]["HeartbeatPeriod"]
        return float(period) / NANOS

    def import_image(self, archive: Path) -> None:
        repository, tag = IMAGE.rsplit(":", 1)
        for member in self.members:
            member.client.import_image_from_file(str(archive), repository=repository, tag=tag)

    def close_clients(self) -> None:
        for member in self.members:
            member.close()


def busybox_archive(workdir: Path) -> Path:
    """The image both sides run: Debian's busybox-static as a root filesystem, `docker import`ed."""
    return write_archive(build_busybox_rootfs(workdir / "rootfs"), workdir / "busybox.tar")


class ShoalSide(ClusterSide):
    label = "shoal"

    def __init__(self, workdir: Path, executor: str = "oci") -> None:
        self.cluster = TestCluster("bench-shoal", workdir, executor=executor)
        self.network = self.cluster.network
        self.members = []

    def _node(self, member: Member) -> ClusterNode:
        return self.cluster.node(member.name)

    def start(self) -> None:
        self.cluster.start(MANAGERS + WORKERS)
        first = self.cluster.nodes[0]
        self.cluster.init(first)
        for node in self.cluster.nodes[1:MANAGERS]:
            self.cluster.join(node, "manager", first)
        for node in self.cluster.nodes[MANAGERS:]:
            self.cluster.join(node, "worker", first)
        self.members = [Member(n.name, n.host, n.daemon.docker_host) for n in self.cluster.nodes]

    def kill9(self, member: Member) -> None:
        self._node(member).kill9()

    def restart(self, member: Member) -> None:
        self._node(member).daemon.start()

    def alive(self, member: Member) -> bool:
        return self._node(member).alive

    def destroy(self) -> None:
        self.close_clients()
        self.cluster.destroy()


class SwarmSide(ClusterSide):
    label = "swarm"

    def __init__(self, workdir: Path) -> None:
        self.hosts = DockerdHosts("bench-swarm", workdir)
        self.network = self.hosts.network
        self.members = []

    def _node(self, member: Member) -> DockerdNode:
        return self.hosts.node(member.name)

    def start(self) -> None:
        self.hosts.start(MANAGERS + WORKERS)
        first = self.hosts.nodes[0]
        self.hosts.init(first)
        for node in self.hosts.nodes[1:MANAGERS]:
            self.hosts.join(node, "manager", first)
        for node in self.hosts.nodes[MANAGERS:]:
            self.hosts.join(node, "worker", first)
        self.members = [Member(n.name, n.host, n.engine.base_url) for n in self.hosts.nodes]

    def kill9(self, member: Member) -> None:
        self._node(member).engine.kill9()

    def restart(self, member: Member) -> None:
        self.hosts.restart(self._node(member))

    def alive(self, member: Member) -> bool:
        return self._node(member).alive

    def destroy(self) -> None:
        self.close_clients()
        self.hosts.destroy()


@contextlib.contextmanager
def both_sides(executor: str = "oci"):  # type: ignore[no-untyped-def]
    """Both clusters up, healthy and holding the image, for the length of a `with`; torn down after."""
    with tempfile.TemporaryDirectory(prefix="shoal-cluster-bench-") as tmp:
        workdir = Path(tmp)
        archive = busybox_archive(workdir)
        sides: list[ClusterSide] = [ShoalSide(workdir / "shoal", executor), SwarmSide(workdir / "swarm")]
        try:
            for side in sides:
                side.start()
                side.wait_healthy()
                side.import_image(archive)
            yield sides
        finally:
            for side in sides:
                with contextlib.suppress(Exception):
                    side.destroy()
