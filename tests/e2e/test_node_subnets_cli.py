"""Issue 7 through the real docker CLI: on a swarm, a process-executor task's address comes from the
subnet the managers gave its node (172.24.0.0/14 in /24s), not from one the node derived itself."""

from __future__ import annotations

import ipaddress
import os

import pytest

from shoal.allocator.nodesubnets import NODE_SUBNET_RANGE
from shoal.testing.daemon import ShoalDaemon, cli_requirement, wait_until

pytestmark = [
    pytest.mark.skipif(**cli_requirement()),
    pytest.mark.skipif(os.geteuid() != 0, reason="process tasks get addresses of their own only with root"),
]


def task_address(daemon: ShoalDaemon, service: str) -> ipaddress.IPv4Interface | None:
    ids = daemon.docker("ps", "-q", "--filter", f"name={service}.").stdout.split()
    if not ids:
        return None
    shown = daemon.docker("exec", ids[0], "ip", "-o", "-4", "addr", "show", "dev", "eth0", check=False)
    words = shown.stdout.split()
    return ipaddress.IPv4Interface(words[words.index("inet") + 1]) if "inet" in words else None


def test_a_tasks_address_is_on_its_nodes_swarm_subnet(swarm: ShoalDaemon) -> None:
    swarm.docker("service", "create", "--detach", "--name", "addressed", "my-apache2:latest", "sleep", "300")
    found: list[ipaddress.IPv4Interface] = []

    def addressed() -> bool:
        address = task_address(swarm, "addressed")
        if address is not None:
            found.append(address)
        return address is not None

    wait_until(addressed, 60, "the task never had an address")
    network = found[-1].network
    assert network.prefixlen == 24 and network.subnet_of(NODE_SUBNET_RANGE), network
    swarm.docker("service", "rm", "addressed")
