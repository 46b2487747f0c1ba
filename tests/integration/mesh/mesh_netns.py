"""The mesh tests' network: shoal.testing.netns hosts (a bridge with an address on the host, network
namespaces on veth pairs), each able to run name_server.py. Everything is removed on exit."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from shoal.testing.netns import Host, TestNetwork, netns_unavailable

HERE = Path(__file__).parent
BACKEND_PORT = 8000  # where the name servers in the backend namespaces listen


@dataclass(frozen=True)
class Case:
    """Names and ports of one test (see the `case` fixture)."""

    tag: str  # for instance names
    port: int  # a published port (the test may also use the next few)


def can_use_netns() -> str | None:
    """None when this process can build test networks, else the reason it cannot."""
    return netns_unavailable()


@dataclass
class Namespace:
    """A test host (shoal.testing.netns) that may run a name server."""

    host: Host
    server: subprocess.Popen[str] | None = None

    @property
    def name(self) -> str:
        return self.host.netns

    @property
    def ip(self) -> str:
        return self.host.ip


@dataclass
class NetnsNetwork:
    """The project's TestNetwork, plus name servers in its namespaces."""

    seed: str
    network: TestNetwork = field(init=False)
    namespaces: list[Namespace] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.network = TestNetwork(self.seed)

    @property
    def bridge(self) -> str:
        return self.network.bridge

    @property
    def host_ip(self) -> str:
        return self.network.gateway

    def create(self) -> None:
        self.network.create()

    def add_namespace(self, label: str) -> Namespace:
        ns = Namespace(self.network.add_host(label))
        self.namespaces.append(ns)
        return ns

    def namespace(self, label: str) -> Namespace:
        return next(ns for ns in self.namespaces if ns.host.label == label)

    def start_name_server(self, ns: Namespace, port: int) -> None:
        self.start_name_servers([ns], port)

    def start_name_servers(self, namespaces: list[Namespace], port: int) -> None:
        """Start a name server in each namespace, all at once, and wait until each listens."""
        for ns in namespaces:
            argv = ns.host.argv_inside(sys.executable, str(HERE / "name_server.py"), ns.name, str(port))
            ns.server = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        for ns in namespaces:
            assert ns.server is not None and ns.server.stdout is not None
            if ns.server.stdout.readline().strip() != "ready":
                raise RuntimeError(f"name server in {ns.name} did not start")

    def stop_name_server(self, ns: Namespace) -> None:
        if ns.server is not None:
            ns.server.kill()
            ns.server.wait()
            ns.server = None

    def run_in(self, ns: Namespace, *argv: str) -> str:
        return ns.host.run(*argv).stdout

    def destroy(self) -> None:
        for ns in self.namespaces:
            self.stop_name_server(ns)
        self.network.destroy()
