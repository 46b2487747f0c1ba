"""Tasks on swarm networks: each gets one interface per network with its allocator-given address, on
that network's bridge on the node; two tasks of one network reach each other there, tasks of another
network do not."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.network.tasknet import (
    TaskNetConfig,
    ensure_bridge,
    forget_node_subnet,
    network_attachments,
    network_bridge,
    remove_bridge,
    remove_network_bridge,
    setup_script,
)


def attachment(network_id: str, address: str, *, ingress: bool = False) -> dict[str, object]:
    return {"Network": {"ID": network_id, "Spec": {"Ingress": ingress}}, "Addresses": [address]}


def test_attachments_leave_ingress_to_the_mesh() -> None:
    raw = {"NetworksAttachments": [attachment("ing", "10.0.0.3/24", ingress=True), attachment("n1", "10.0.1.3/24"),
                                   {"Network": {"ID": "n2"}, "Addresses": []}]}
    [only] = network_attachments(raw)
    assert (only.network_id, str(only.address)) == ("n1", "10.0.1.3/24")
    assert network_attachments({}) == ()


def test_script_wires_one_interface_per_network(tmp_path: Path) -> None:
    config = TaskNetConfig("shoal0", ipaddress.IPv4Network("10.254.0.0/16"), tmp_path)
    raw = {"NetworksAttachments": [attachment("n1", "10.0.1.3/24"), attachment("n2", "10.0.2.3/24")]}
    script = setup_script(config, "ab" * 32, ipaddress.IPv4Address("10.254.0.2"), network_attachments(raw))
    for number, network_id, address in ((1, "n1", "10.0.1.3/24"), (2, "n2", "10.0.2.3/24")):
        bridge = network_bridge(config, network_id)
        assert len(bridge) <= 15 and bridge.startswith("shoal")
        assert f"peer name eth{number} netns" in script and f"master {bridge} up" in script
        assert f"addr add {address} dev eth{number}" in script
    assert network_bridge(config, "n1") != network_bridge(config, "n2")


needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(tool) for tool in ("ip", "iptables", "nsenter", "unshare")),
    reason="needs root, ip, iptables, nsenter and unshare",
)


@pytest.fixture
def namespaces() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Three processes, each in a network namespace of its own (stand-ins for task init processes)."""
    procs = [subprocess.Popen(["unshare", "--net", "sleep", "600"]) for _ in range(3)]
    try:
        yield procs
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


PING = ["ping"] if shutil.which("ping") else ["busybox", "ping"]


def reaches(pid: int, address: str) -> bool:
    return subprocess.run(["nsenter", f"--net=/proc/{pid}/ns/net", *PING, "-c", "1", "-W", "2", address],
                          capture_output=True).returncode == 0


@needs_root
@pytest.mark.skipif(not shutil.which("ping") and not shutil.which("busybox"), reason="needs ping")
async def test_tasks_of_one_network_reach_each_other_and_no_one_else(
    tmp_path: Path, namespaces: list[subprocess.Popen[bytes]]
) -> None:
    config = TaskNetConfig(f"shoalq{os.getpid() % 100000}", ipaddress.IPv4Network("10.202.0.0/24"), tmp_path / "net")
    tasks = [("c1" * 32, "10.202.0.2", "n1", "10.77.1.3/24"), ("c2" * 32, "10.202.0.3", "n1", "10.77.1.4/24"),
             ("c3" * 32, "10.202.0.4", "n2", "10.77.1.5/24")]
    bridges = {network_bridge(config, "n1"), network_bridge(config, "n2")}
    try:
        await ensure_bridge(config)
        # wait for each namespace to exist before wiring it (unshare has set it up once the pid's ns differs)
        for proc in namespaces:
            while os.readlink(f"/proc/{proc.pid}/ns/net") == os.readlink("/proc/self/ns/net"):
                await asyncio.sleep(0.01)
        for proc, (container, node_address, network, address) in zip(namespaces, tasks, strict=True):
            raw = {"NetworksAttachments": [attachment(network, address)]}
            script = setup_script(config, container, ipaddress.IPv4Address(node_address), network_attachments(raw))
            subprocess.run(["sh", "-c", script, "hook", str(proc.pid)], check=True, capture_output=True)
        first, second, third = (proc.pid for proc in namespaces)
        assert reaches(first, "10.77.1.4")  # same network, same node: by the network's address
        assert reaches(second, "10.77.1.3")
        assert not reaches(first, "10.77.1.5")  # another network (same subnet even): not reachable
        assert not reaches(third, "10.77.1.3")
        for proc in namespaces:  # the tasks end: their veths go with their namespaces
            proc.kill()
            proc.wait()
        assert all(Path("/sys/class/net", bridge).exists() for bridge in bridges)
        await forget_node_subnet(config)  # the node leaves its swarm: its networks' bridges go
        assert not any(Path("/sys/class/net", bridge).exists() for bridge in bridges)
        assert config.bridge_exists()  # the node bridge stays (the executor's own)
    finally:
        for proc in namespaces:
            proc.kill()
            proc.wait()
        await remove_bridge(config)
        for bridge in bridges:
            await remove_network_bridge(bridge)
