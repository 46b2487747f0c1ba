"""The cluster tests' host harness: namespaces that reach each other, and the faults it injects."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from shoal.testing.netns import Host, TestNetwork, netns_unavailable, sh

pytestmark = [pytest.mark.root, pytest.mark.skipif(netns_unavailable() is not None,
                                                   reason=netns_unavailable() or "")]

# A TCP connect to a closed port answers "refused" (RST) when packets flow and times out when a fault
# drops them, so no listener is needed.
PROBE = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], 9), timeout=float(sys.argv[2]))
except ConnectionRefusedError:
    print("reachable")
except OSError:
    print("unreachable")
"""


def reaches(src: Host, dst: Host, timeout: float = 0.5) -> bool:
    out = src.run(sys.executable, "-c", PROBE, dst.ip, str(timeout)).stdout.strip()
    return out == "reachable"


@pytest.fixture
def network(request: pytest.FixtureRequest) -> Iterator[TestNetwork]:
    net = TestNetwork(request.node.nodeid)
    try:
        net.create()
        for label in ("a", "b", "c"):
            net.add_host(label)
        yield net
    finally:
        net.destroy()


def test_hosts_reach_each_other_on_their_own_addresses(network: TestNetwork) -> None:
    a, b, c = network.hosts
    assert len({a.ip, b.ip, c.ip}) == 3
    assert a.run("ip", "-4", "-o", "addr", "show", "eth0").stdout.count(a.ip) == 1
    assert reaches(a, b) and reaches(b, c) and reaches(c, a)


def test_cut_separates_two_hosts_and_heal_joins_them(network: TestNetwork) -> None:
    a, b, c = network.hosts
    network.cut(a, b)
    assert not reaches(a, b) and not reaches(b, a)
    assert reaches(a, c) and reaches(b, c)
    network.heal(a)
    assert reaches(a, b) and reaches(b, a)


def test_isolate_cuts_a_host_off_until_reconnected(network: TestNetwork) -> None:
    a, b, c = network.hosts
    network.isolate(a)
    assert not reaches(b, a) and not reaches(a, c)
    assert reaches(b, c)
    network.reconnect(a)
    assert reaches(b, a)


def test_drop_share_loses_some_packets_but_not_all(network: TestNetwork) -> None:
    a, b, _ = network.hosts
    network.drop_share(a, 0.3)
    # A probe is one SYN in and one RST out (no retransmit within its timeout), so it passes with odds
    # 0.7 * 0.7 = 0.49: of 20 probes some pass and some fail, except with odds below 1e-5.
    results = [reaches(b, a, timeout=0.3) for _ in range(20)]
    assert any(results) and not all(results)
    network.heal(a)
    assert all(reaches(b, a) for _ in range(5))


def test_destroy_leaves_nothing_behind(request: pytest.FixtureRequest) -> None:
    net = TestNetwork(request.node.nodeid)
    net.create()
    host = net.add_host("x")
    net.destroy()
    assert host.netns not in sh("ip", "netns", "list").stdout
    assert sh("ip", "link", "show", net.bridge, check=False).returncode != 0
    assert f"-i {net.bridge}" not in sh("iptables-save").stdout
