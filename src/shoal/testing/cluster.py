"""Several swarm hosts on one machine for cluster tests and benchmarks: one shoald per network namespace
(testing.netns), each with its own address, data root and socket, driven through the real docker CLI.

Faults: kill -9 a daemon (its tasks keep running), pause it (SIGSTOP) and resume it, cut a host off
the network or drop a share of its packets. ``destroy`` leaves nothing behind: every daemon that can
be reached leaves the swarm (so its tasks go), dead ones are started again first, then the namespaces
and the bridge are removed."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shoal.testing.daemon import ShoalDaemon, wait_until
from shoal.testing.netns import Host, TestNetwork

CLUSTER_PORT = 2377


@dataclass
class ClusterNode:
    host: Host
    daemon: ShoalDaemon

    @property
    def name(self) -> str:
        return self.host.label

    @property
    def ip(self) -> str:
        return self.host.ip

    @property
    def alive(self) -> bool:
        return self.daemon.process is not None and self.daemon.process.poll() is None

    def docker(self, *args: str, timeout: float = 60.0, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.daemon.docker(*args, timeout=timeout, check=check)

    def docker_json(self, *args: str) -> Any:
        return json.loads(self.docker(*args).stdout)

    def kill9(self) -> None:
        self.daemon.kill9()

    def pause(self) -> None:
        assert self.daemon.process is not None
        self.daemon.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.daemon.process is not None
        self.daemon.process.send_signal(signal.SIGCONT)


@dataclass
class TestCluster:
    """Hosts n1…nN; ``init`` makes the first a one-manager swarm, ``join`` adds the others."""

    __test__ = False  # not a pytest test class, despite its name

    seed: str
    workdir: Path
    executor: str = "process"
    network: TestNetwork = field(init=False)
    nodes: list[ClusterNode] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.network = TestNetwork(self.seed)

    def start(self, count: int) -> None:
        self.network.create()
        for index in range(1, count + 1):
            host = self.network.add_host(f"n{index}")
            daemon = ShoalDaemon(self.workdir / host.label, self.executor,
                                 extra_args=["--listen-addr", f"0.0.0.0:{CLUSTER_PORT}", "--node-name", host.label],
                                 launcher=host.argv_net_only() if self.executor == "oci" else host.argv_inside())
            self.nodes.append(ClusterNode(host, daemon))
        for node in self.nodes:
            node.daemon.start()

    def node(self, name: str) -> ClusterNode:
        return next(node for node in self.nodes if node.name == name)

    def init(self, first: ClusterNode, *extra: str) -> None:
        first.docker("swarm", "init", "--advertise-addr", first.ip, *extra)

    def join(self, node: ClusterNode, role: str, via: ClusterNode) -> subprocess.CompletedProcess[str]:
        token = via.docker("swarm", "join-token", "-q", role).stdout.strip()
        return node.docker("swarm", "join", "--token", token, f"{via.ip}:{CLUSTER_PORT}")

    def managers_view(self, via: ClusterNode) -> dict[str, dict[str, str]]:
        """{hostname: {"status": …, "manager": …}} as `docker node ls` on ``via`` shows it."""
        out = via.docker("node", "ls", "--format", "{{.Hostname}}|{{.Status}}|{{.ManagerStatus}}",
                         check=False)
        if out.returncode != 0:
            return {}
        rows = [line.split("|") for line in out.stdout.splitlines() if line.strip()]
        return {name: {"status": status, "manager": manager} for name, status, manager in rows}

    def leader(self, via: ClusterNode) -> str | None:
        """The leader's hostname as ``via`` sees it."""
        for name, row in self.managers_view(via).items():
            if row["manager"] == "Leader":
                return name
        return None

    def wait_for(self, condition: Callable[[], bool], timeout: float, message: str) -> None:
        wait_until(condition, timeout, message, interval=0.2)

    def destroy(self) -> None:
        for node in self.nodes:
            with contextlib.suppress(Exception):
                if node.daemon.process is not None:
                    node.resume()
                self.network.reconnect(node.host)
                self.network.heal(node.host)
                if not node.alive:
                    node.daemon.start()
            with contextlib.suppress(Exception):
                node.daemon.leave_and_stop()
        for node in self.nodes:
            with contextlib.suppress(Exception):
                node.daemon.kill9()
        self.network.destroy()
