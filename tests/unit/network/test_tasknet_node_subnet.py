"""Issue 7: a node's task bridge takes the subnet the managers gave it, instead of one derived from
its data root; a bridge already up moves to it while it holds no task."""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from shoal.network.tasknet import (
    TaskNetConfig,
    TaskNetError,
    adopt_node_subnet,
    ensure_bridge,
    firewall_rules,
    forget_node_subnet,
    remove_bridge,
    setup_script,
)

ASSIGNED = "172.25.3.0/24"


def config(tmp_path: Path, bridge: str = "shoalnotthere") -> TaskNetConfig:
    return TaskNetConfig(bridge, ipaddress.IPv4Network("10.201.0.0/20"), tmp_path / "net")


async def test_adopted_subnet_is_used_and_kept_across_restarts(tmp_path: Path) -> None:
    net = config(tmp_path)
    assert await adopt_node_subnet(net, ASSIGNED)
    assert str(net.subnet) == ASSIGNED and str(net.gateway) == "172.25.3.1"
    assert "addr add 172.25.3.2/24 dev eth0" in setup_script(net, "ab" * 32, ipaddress.IPv4Address("172.25.3.2"))
    assert any(ASSIGNED in rule for _, _, rule in firewall_rules(net))
    assert str(config(tmp_path).subnet) == ASSIGNED  # a restarted daemon builds its config again
    assert not await adopt_node_subnet(net, ASSIGNED)  # told again: nothing to do
    assert not await adopt_node_subnet(net, "")  # a node object without one changes nothing
    assert await forget_node_subnet(net)
    assert net.subnet == net.default_subnet


async def test_a_bad_subnet_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TaskNetError, match="invalid node subnet"):
        await adopt_node_subnet(config(tmp_path), "172.25.3.0/33")
    assert config(tmp_path).subnet == config(tmp_path).default_subnet


def _addresses(bridge: str) -> str:
    return subprocess.run(["ip", "-o", "-4", "addr", "show", "dev", bridge], capture_output=True, text=True,
                          check=True).stdout


needs_root = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("iptables"),
                                reason="needs root, ip and iptables to make a bridge")


@needs_root
async def test_a_bridge_up_on_the_old_subnet_moves_unless_it_holds_tasks(tmp_path: Path) -> None:
    bridge = f"shoalt{os.getpid() % 100000}"
    net = config(tmp_path, bridge)
    dummy = f"vtst{os.getpid() % 100000}"
    try:
        await ensure_bridge(net)
        assert " 10.201.0.1/20 " in _addresses(bridge)
        # a task's veth on the bridge: the subnet stays for now
        subprocess.run(["ip", "link", "add", dummy, "type", "veth", "peer", "name", dummy + "p"], check=True)
        subprocess.run(["ip", "link", "set", dummy, "master", bridge], check=True)
        assert not await adopt_node_subnet(net, ASSIGNED)
        assert net.subnet == net.default_subnet
        subprocess.run(["ip", "link", "del", dummy], check=True)
        assert await adopt_node_subnet(net, ASSIGNED)
        assert not net.bridge_exists()  # taken down; the executor makes it again when next needed
        await ensure_bridge(net)
        shown = _addresses(bridge)
        assert " 172.25.3.1/24 " in shown and "10.201.0.1" not in shown
    finally:
        subprocess.run(["ip", "link", "del", dummy], capture_output=True)
        await remove_bridge(net)
