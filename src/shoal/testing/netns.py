"""Test hosts on one machine: network namespaces on veth pairs behind a throw-away bridge.

Each host gets its own address on the bridge's /24, its own loopback and a default route through the
bridge, so a daemon started inside it (``Host.argv_inside``) sees a host of its own. The faults that
cluster tests need are here too: cut a host off (its link goes down), cut two hosts apart (iptables
DROP between their addresses), drop a share of a host's packets (``iptables -m statistic``; this kernel
has no netem). Everything is named from a short tag and removed by ``TestNetwork.destroy``.

Root only: ``netns_unavailable()`` says why not, for a test's skip reason.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

# Test networks take /24s from here: outside 10.0.0.0/8 (overlay networks' default address pool) and
# outside the ranges shoal hands out for node bridges.
TEST_RANGE = ipaddress.IPv4Network("172.30.0.0/16")
# One chain per direction, so that a rule matches each packet once: (hook, chain, address flag).
FAULT_CHAINS = (("INPUT", "SHOAL-FAULT-IN", "-s"), ("OUTPUT", "SHOAL-FAULT-OUT", "-d"))
NETNS_ETC = Path("/etc/netns")  # per-namespace files `ip netns exec` mounts over /etc


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {result.returncode}: {result.stderr.strip()}")
    return result


def netns_unavailable() -> str | None:
    """None when this process can build test networks, else the reason it cannot."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, iptables)"
    for tool in ("ip", "iptables", "iptables-save", "iptables-restore"):
        if shutil.which(tool) is None:
            return f"{tool} not installed (apt-get install iproute2 iptables)"
    return None


def _routes_in_use() -> list[ipaddress.IPv4Network]:
    words = sh("ip", "-4", "route", "show", "table", "all").stdout.split()
    return [ipaddress.IPv4Network(word, strict=False) for word in words if "/" in word and word[0].isdigit()]


def free_subnet(seed: str, candidates: ipaddress.IPv4Network = TEST_RANGE) -> ipaddress.IPv4Network:
    """A /24 of ``candidates`` that no route on this machine overlaps, chosen from ``seed`` so that
    parallel test runs tend to pick different ones."""
    taken = _routes_in_use()
    subnets = list(candidates.subnets(new_prefix=24))
    start = int(hashlib.sha256(seed.encode()).hexdigest(), 16) % len(subnets)
    for attempt in range(len(subnets)):
        candidate = subnets[(start + attempt) % len(subnets)]
        if not any(candidate.overlaps(net) for net in taken):
            return candidate
    raise RuntimeError(f"no free /24 in {candidates} for a test network")


@dataclass
class Host:
    """One test host: a network namespace with ``eth0`` on the bridge."""

    label: str
    netns: str
    ip: str
    host_link: str  # the veth end on the bridge, outside the namespace

    def argv_inside(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *argv]

    def argv_net_only(self, *argv: str) -> list[str]:
        """Only the network namespace entered: the machine's /sys (with its cgroup hierarchy) stays in
        view, which OCI runtimes need; `ip netns exec` mounts a /sys of the namespace's own without it."""
        return ["nsenter", f"--net=/run/netns/{self.netns}", *argv]

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return sh(*self.argv_inside(*argv), check=check)

    def iptables(self, *rule: str, check: bool = True) -> None:
        self.run("iptables", "-w", "5", *rule, check=check)


@dataclass
class TestNetwork:
    """A bridge on the machine and the hosts attached to it."""

    __test__ = False  # not a pytest test class, despite its name

    seed: str
    tag: str = field(init=False)
    subnet: ipaddress.IPv4Network = field(init=False)
    bridge: str = field(init=False)
    hosts: list[Host] = field(default_factory=list)
    _forward_rules: list[list[str]] = field(default_factory=list)
    _created: bool = False

    def __post_init__(self) -> None:
        self.tag = hashlib.sha256(f"{self.seed}-{os.getpid()}".encode()).hexdigest()[:6]
        self.subnet = free_subnet(self.seed + self.tag)
        self.bridge = f"stb{self.tag}"

    @property
    def gateway(self) -> str:
        return str(self.subnet.network_address + 1)

    def create(self) -> None:
        sh("ip", "link", "add", self.bridge, "type", "bridge")
        self._created = True
        sh("ip", "addr", "add", f"{self.gateway}/{self.subnet.prefixlen}", "dev", self.bridge)
        sh("ip", "link", "set", self.bridge, "up")
        # dockerd sets the FORWARD policy to DROP: let this bridge's traffic through explicitly.
        for direction in (["-i", self.bridge], ["-o", self.bridge]):
            rule = ["FORWARD", *direction, "-j", "ACCEPT"]
            sh("iptables", "-w", "5", "-I", *rule)
            self._forward_rules.append(rule)

    def add_host(self, label: str) -> Host:
        index = len(self.hosts)
        host = Host(label, f"st{self.tag}-{label}", str(self.subnet.network_address + 2 + index),
                    f"stv{self.tag}{index}")
        inner = f"stp{self.tag}{index}"
        sh("ip", "netns", "add", host.netns)
        self.hosts.append(host)
        # The hosts have no DNS server: this machine's is not reachable from the test bridge, where a
        # lookup (a registry's name) would wait out every resolver timeout. Pointed at their own
        # loopback, where nothing answers, lookups fail at once. (`ip netns exec` mounts this file.)
        resolv = NETNS_ETC / host.netns / "resolv.conf"
        resolv.parent.mkdir(parents=True, exist_ok=True)
        resolv.write_text("nameserver 127.0.0.1\n")
        sh("ip", "link", "add", host.host_link, "type", "veth", "peer", "name", inner)
        sh("ip", "link", "set", host.host_link, "master", self.bridge, "up")
        sh("ip", "link", "set", inner, "netns", host.netns)
        host.run("ip", "link", "set", inner, "name", "eth0")
        host.run("ip", "addr", "add", f"{host.ip}/{self.subnet.prefixlen}", "dev", "eth0")
        host.run("ip", "link", "set", "eth0", "up")
        host.run("ip", "link", "set", "lo", "up")
        host.run("ip", "route", "add", "default", "via", self.gateway)
        for hook, chain, _ in FAULT_CHAINS:
            host.iptables("-N", chain)
            host.iptables("-I", hook, "-j", chain)
        return host

    def host(self, label: str) -> Host:
        return next(host for host in self.hosts if host.label == label)

    # -- faults
    def isolate(self, host: Host) -> None:
        """Cut the host off from every other (its link to the bridge goes down)."""
        sh("ip", "link", "set", host.host_link, "down")

    def reconnect(self, host: Host) -> None:
        sh("ip", "link", "set", host.host_link, "up")

    def cut(self, a: Host, b: Host) -> None:
        """Drop everything between two hosts, both ways; each still reaches the others."""
        for _, chain, flag in FAULT_CHAINS:
            a.iptables("-A", chain, flag, b.ip, "-j", "DROP")

    def drop_share(self, host: Host, probability: float) -> None:
        """Drop that share of the host's packets on the bridge, in and out, at random."""
        if not 0.0 < probability < 1.0:
            raise ValueError(f"probability must be between 0 and 1, not {probability}")
        for _, chain, flag in FAULT_CHAINS:
            host.iptables("-A", chain, flag, str(self.subnet), "-m", "statistic", "--mode", "random",
                          "--probability", f"{probability:.4f}", "-j", "DROP")

    def heal(self, host: Host) -> None:
        """Undo ``cut`` and ``drop_share`` on this host (``isolate`` has ``reconnect``)."""
        for _, chain, _ in FAULT_CHAINS:
            host.iptables("-F", chain)

    def destroy(self) -> None:
        for host in self.hosts:
            sh("ip", "netns", "del", host.netns, check=False)
            sh("ip", "link", "del", host.host_link, check=False)
            shutil.rmtree(NETNS_ETC / host.netns, ignore_errors=True)
        self.hosts.clear()
        if self._created:
            sh("ip", "link", "del", self.bridge, check=False)
            self._created = False
        for rule in self._forward_rules:
            sh("iptables", "-w", "5", "-D", *rule, check=False)
        self._forward_rules.clear()
