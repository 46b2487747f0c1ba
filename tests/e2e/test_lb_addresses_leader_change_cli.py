"""Issue 9: the nodes' load-balancer addresses live in the replicated store, so a new leader's allocator
keeps every one of them: three shoald managers on this machine, a global service on an overlay network,
the leader killed (-9); each survivor shows the same ingress-sbox and lb-<net> endpoints afterwards."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shoal.testing.daemon import ShoalDaemon, cli_requirement, wait_until

pytestmark = pytest.mark.skipif(**cli_requirement())  # without a docker CLI these checks cannot run

IMAGE = "my-apache2:latest"


@pytest.fixture
def managers(tmp_path: Path) -> Iterator[list[ShoalDaemon]]:
    daemons = [ShoalDaemon(tmp_path / f"m{i}") for i in range(3)]
    for daemon in daemons:
        daemon.start()
    try:
        first = daemons[0]
        first.docker("swarm", "init", "--advertise-addr", "127.0.0.1")
        token = first.docker("swarm", "join-token", "-q", "manager").stdout.strip()
        address = first.docker_json("node", "inspect", "self")[0]["ManagerStatus"]["Addr"]
        for other in daemons[1:]:
            other.docker("swarm", "join", "--token", token, "--advertise-addr", "127.0.0.1", "--listen-addr",
                         "127.0.0.1:0", address)
        wait_until(lambda: first.docker("node", "ls", "--format", "{{.Status}}").stdout.split() == ["Ready"] * 3,
                   60, "three Ready managers")
        yield daemons
    finally:
        for daemon in reversed(daemons):
            daemon.leave_and_stop()


def endpoints(daemon: ShoalDaemon) -> dict[str, Any]:
    """This node's load-balancer endpoints on ingress and on lcnet (None where it shows none yet)."""
    found: dict[str, Any] = {}
    for network, key in (("ingress", "ingress-sbox"), ("lcnet", "lb-lcnet")):
        shown = daemon.docker("network", "inspect", "--format", "{{json .Containers}}", network, check=False)
        containers = json.loads(shown.stdout) if shown.returncode == 0 else None
        found[key] = (containers or {}).get(key)
    return found


def is_leader(daemon: ShoalDaemon) -> bool:
    shown = daemon.docker("node", "inspect", "--format", "{{.ManagerStatus.Leader}}", "self", check=False)
    return shown.stdout.strip() == "true"


def test_a_new_leader_keeps_every_nodes_addresses(managers: list[ShoalDaemon]) -> None:
    first = managers[0]
    first.docker("network", "create", "-d", "overlay", "--subnet", "10.70.0.0/24", "lcnet")
    first.docker("service", "create", "--detach", "--name", "lcsvc", "--mode", "global", "--network", "lcnet",
                 IMAGE, "sleep", "3600")
    wait_until(lambda: all(None not in endpoints(d).values() for d in managers), 60,
               "not every manager showed its endpoints")
    before = {d.workdir.name: endpoints(d) for d in managers}
    addresses = [e["IPv4Address"] for shown in before.values() for e in shown.values()]
    assert len(set(addresses)) == len(addresses) == 6  # one per node and network, never shared

    [leader] = [d for d in managers if is_leader(d)]
    leader.kill9()
    survivors = [d for d in managers if d is not leader]
    wait_until(lambda: any(is_leader(d) for d in survivors), 60, "no new leader")
    # the new leader's allocator has run (the dead node's tasks are its to replace: global tasks stay);
    # a service update makes it pass over everything once more before we look
    survivors[0].docker("service", "update", "--detach", "--label-add", "after=failover", "lcsvc")
    wait_until(lambda: all(None not in endpoints(d).values() for d in survivors), 30, "endpoints gone")
    assert {d.workdir.name: endpoints(d) for d in survivors} == {d.workdir.name: before[d.workdir.name]
                                                                   for d in survivors}
