"""Swarm networks on the oci executor, through the real docker CLI: two tasks of one overlay network on a
node reach each other by the addresses the allocator gave them (inside their images, with busybox's
ping), and a task of another network does not."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shoal.testing.daemon import ShoalDaemon, cli_requirement, wait_until
from shoal.testing.oci_swarm import oci_missing, oci_swarm

pytestmark = pytest.mark.skipif(**cli_requirement())
IMAGE = "bbnet:latest"


@pytest.fixture(scope="module")
def oci_swarm_net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShoalDaemon]:
    why_not = oci_missing()
    if why_not:
        pytest.skip(why_not)
    with oci_swarm(Path(tmp_path_factory.mktemp("shoald-oci-net")), IMAGE) as shoald:
        yield shoald


def running(daemon: ShoalDaemon, service: str, count: int) -> list[dict[str, Any]]:
    def tasks() -> list[dict[str, Any]]:
        ids = daemon.docker("service", "ps", "-q", "--no-trunc", service).stdout.split()
        found: list[dict[str, Any]] = daemon.docker_json("inspect", "--type", "task", *ids) if ids else []
        return [t for t in found if t["Status"]["State"] == "running"]

    wait_until(lambda: len(tasks()) == count, 60, f"{service} never had {count} running tasks")
    return tasks()


def address_and_container(task: dict[str, Any]) -> tuple[str, str]:
    return (str(task["NetworksAttachments"][0]["Addresses"][0]).split("/")[0],
            str(task["Status"]["ContainerStatus"]["ContainerID"]))


def test_tasks_of_a_network_reach_each_other_and_not_another_networks(oci_swarm_net: ShoalDaemon) -> None:
    for name, subnet in (("ocinet", "10.68.0.0/24"), ("othernet", "10.69.0.0/24")):
        oci_swarm_net.docker("network", "create", "-d", "overlay", "--subnet", subnet, name)
    oci_swarm_net.docker("service", "create", "--detach", "--name", "pair", "--replicas", "2", "--network", "ocinet",
                     IMAGE)
    oci_swarm_net.docker("service", "create", "--detach", "--name", "apart", "--network", "othernet", IMAGE)
    (first, first_ctr), (second, _) = (address_and_container(t) for t in running(oci_swarm_net, "pair", 2))
    (apart, apart_ctr), = (address_and_container(t) for t in running(oci_swarm_net, "apart", 1))
    assert f" {first}/24 " in oci_swarm_net.docker("exec", first_ctr, "ip", "-o", "-4", "addr").stdout
    ping = oci_swarm_net.docker("exec", first_ctr, "ping", "-c", "1", "-W", "5", second, check=False)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    assert oci_swarm_net.docker("exec", apart_ctr, "ping", "-c", "1", "-W", "2", first, check=False).returncode != 0
    assert apart.startswith("10.69.0.")
    for service in ("pair", "apart"):
        oci_swarm_net.docker("service", "rm", service)
