"""testing.dockerd_hosts: real dockerds, one per test host, form a swarm over the test bridge, survive a
kill -9, and leave nothing behind (no namespace, mount or process), so the cluster benchmark can run
them next to shoalds run after run."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from shoal.testing.daemon import wait_until
from shoal.testing.dockerd_hosts import DockerdHosts, dockerd_unavailable
from shoal.testing.netns import netns_unavailable

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(netns_unavailable() is not None, reason=netns_unavailable() or ""),
    pytest.mark.skipif(dockerd_unavailable() is not None, reason=dockerd_unavailable() or ""),
    pytest.mark.timeout(300),
]


def mounts_under(path: Path) -> list[str]:
    prefix = str(path.resolve()) + "/"
    with open("/proc/self/mountinfo") as mounts:
        return [point for point in (line.split()[4] for line in mounts) if point.startswith(prefix)]


def ready_hostnames(hosts: DockerdHosts) -> list[str]:
    nodes = hosts.nodes[0].client.nodes()
    return sorted(n["Description"]["Hostname"] for n in nodes if n["Status"]["State"] == "ready")


def test_engines_form_a_swarm_survive_kill9_and_leave_nothing_behind(tmp_path: Path) -> None:
    hosts = DockerdHosts("dockerd-hosts-test", tmp_path)
    try:
        hosts.start(2)
        first, second = hosts.nodes
        hosts.init(first)
        hosts.join(second, "worker", first)
        assert ready_hostnames(hosts) == ["d1", "d2"]  # each engine has a hostname of its own
        subnets = {n.client.inspect_network("bridge")["IPAM"]["Config"][0]["Subnet"] for n in hosts.nodes}
        assert len(subnets) == 2

        second.engine.kill9()
        wait_until(lambda: "d2" not in ready_hostnames(hosts), 60, "the killed engine's node down", interval=0.5)
        hosts.restart(second)
        wait_until(lambda: ready_hostnames(hosts) == ["d1", "d2"], 60, "the engine back in its swarm", interval=0.5)
        namespaces = [host.netns for host in hosts.network.hosts]
        assert mounts_under(tmp_path), "dockerd holds its data root mounted while it runs"
    finally:
        hosts.destroy()

    assert mounts_under(tmp_path) == []
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert not [name for name in namespaces if name in listed]
    left = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True).stdout.split()
    assert left == []
