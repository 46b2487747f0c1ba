"""A throw-away test network: a bridge with an address on the host and network namespaces on veth
pairs, each running name_server.py. Names derive from the test's id; everything is removed on exit."""

from __future__ import annotations

import hashlib
import ipaddress
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).parent
BACKEND_PORT = 8000  # where the name servers in the backend namespaces listen


@dataclass(frozen=True)
class Case:
    """Names and ports of one test (see the `case` fixture)."""

    tag: str  # for instance names
    port: int  # a published port (the test may also use the next few)


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=check, capture_output=True, text=True)


def can_use_netns() -> str | None:
    """None when this process can build test networks, else the reason it cannot."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, iptables)"
    for tool in ("ip", "iptables", "iptables-save", "iptables-restore"):
        if shutil.which(tool) is None:
            return f"{tool} not installed (apt-get install iproute2 iptables)"
    return None


def _free_subnet(seed: str) -> ipaddress.IPv4Network:
    routes = sh("ip", "-4", "route", "show", "table", "all").stdout
    taken = [ipaddress.ip_network(word, strict=False) for word in routes.split() if "/" in word and word[0].isdigit()]
    digest = int(hashlib.sha256(seed.encode()).hexdigest(), 16)
    for attempt in range(256):
        candidate = ipaddress.ip_network(f"10.{200 + (digest + attempt) % 50}.{(digest >> 8) % 256}.0/24")
        if not any(candidate.overlaps(net) for net in taken):
            return candidate
    raise RuntimeError("no free 10.200-249.x.0/24 subnet for a test network")


@dataclass
class Namespace:
    name: str
    ip: str
    server: subprocess.Popen[str] | None = None


@dataclass
class NetnsNetwork:
    seed: str
    subnet: ipaddress.IPv4Network = field(init=False)
    tag: str = field(init=False)
    bridge: str = field(init=False)
    namespaces: list[Namespace] = field(default_factory=list)
    _forward_rules: list[list[str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.tag = hashlib.sha256(f"{self.seed}-{os.getpid()}".encode()).hexdigest()[:6]
        self.subnet = _free_subnet(self.seed + self.tag)
        self.bridge = f"smb{self.tag}"

    @property
    def host_ip(self) -> str:
        return str(self.subnet.network_address + 1)

    def create(self) -> None:
        sh("ip", "link", "add", self.bridge, "type", "bridge")
        sh("ip", "addr", "add", f"{self.host_ip}/{self.subnet.prefixlen}", "dev", self.bridge)
        sh("ip", "link", "set", self.bridge, "up")

    def allow_forwarding_on_bridge(self) -> None:
        """Accept the bridge's traffic in FORWARD (docker sets its policy to DROP)."""
        for direction in (["-i", self.bridge], ["-o", self.bridge]):
            rule = ["FORWARD", *direction, "-j", "ACCEPT"]
            sh("iptables", "-w", "5", "-A", *rule)
            self._forward_rules.append(rule)

    def add_namespace(self, label: str) -> Namespace:
        index = len(self.namespaces)
        ns = Namespace(f"sm{self.tag}-{label}", str(self.subnet.network_address + 2 + index))
        host_end, ns_end = f"smv{self.tag}{index}", f"smp{self.tag}{index}"
        sh("ip", "netns", "add", ns.name)
        self.namespaces.append(ns)
        sh("ip", "link", "add", host_end, "type", "veth", "peer", "name", ns_end)
        sh("ip", "link", "set", host_end, "master", self.bridge, "up")
        sh("ip", "link", "set", ns_end, "netns", ns.name)
        inside = ["ip", "netns", "exec", ns.name]
        sh(*inside, "ip", "link", "set", ns_end, "name", "eth0")
        sh(*inside, "ip", "addr", "add", f"{ns.ip}/{self.subnet.prefixlen}", "dev", "eth0")
        sh(*inside, "ip", "link", "set", "eth0", "up")
        sh(*inside, "ip", "link", "set", "lo", "up")
        sh(*inside, "ip", "route", "add", "default", "via", self.host_ip)
        return ns

    def namespace(self, label: str) -> Namespace:
        return next(ns for ns in self.namespaces if ns.name.endswith(f"-{label}"))

    def start_name_server(self, ns: Namespace, port: int) -> None:
        self.start_name_servers([ns], port)

    def start_name_servers(self, namespaces: list[Namespace], port: int) -> None:
        """Start a name server in each namespace, all at once, and wait until each listens."""
        for ns in namespaces:
            argv = ["ip", "netns", "exec", ns.name, sys.executable, str(HERE / "name_server.py"), ns.name, str(port)]
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
        return sh("ip", "netns", "exec", ns.name, *argv).stdout

    def destroy(self) -> None:
        for ns in self.namespaces:
            self.stop_name_server(ns)
            sh("ip", "netns", "del", ns.name, check=False)
        sh("ip", "link", "del", self.bridge, check=False)
        for rule in self._forward_rules:
            sh("iptables", "-w", "5", "-D", *rule, check=False)
