"""Issue 9 through the real docker CLI: each node holds a load-balancer address of its own on ingress and
on every network one of its tasks is on (swarmkit's node attachments), which `docker network inspect`
on that node shows as dockerd does (`ingress-sbox`, `lb-<net>`, beside the node's task containers);
it never collides with a task's address or a VIP, goes when the node's last task there goes, and is
kept without writing the node (no `node update` a client could see)."""

from __future__ import annotations

import ipaddress
import json
import time
from typing import Any

import pytest

from shoal.testing.daemon import ShoalDaemon, cli_requirement, wait_until

pytestmark = pytest.mark.skipif(**cli_requirement())  # without a docker CLI these checks cannot run

IMAGE = "my-apache2:latest"


def containers(daemon: ShoalDaemon, network: str) -> Any:
    """What `docker network inspect` on this node shows under Containers (None: nothing here)."""
    return json.loads(daemon.docker("network", "inspect", "--format", "{{json .Containers}}", network).stdout)


def running_tasks(daemon: ShoalDaemon, service: str, count: int) -> list[dict[str, Any]]:
    def tasks() -> list[dict[str, Any]]:
        ids = daemon.docker("service", "ps", "-q", "--no-trunc", service).stdout.split()
        found: list[dict[str, Any]] = daemon.docker_json("inspect", "--type", "task", *ids) if ids else []
        return [t for t in found if t["Status"]["State"] == "running"]

    wait_until(lambda: len(tasks()) == count, 60, f"{service} never had {count} running tasks")
    return tasks()


def node_version(daemon: ShoalDaemon) -> int:
    return int(daemon.docker("node", "inspect", "--format", "{{.Version.Index}}", "self").stdout)


def test_ingress_shows_this_nodes_endpoint(swarm: ShoalDaemon) -> None:
    wait_until(lambda: containers(swarm, "ingress") is not None, 30, "ingress never showed this node's endpoint")
    shown = containers(swarm, "ingress")
    assert list(shown) == ["ingress-sbox"]
    endpoint = shown["ingress-sbox"]
    assert (endpoint["Name"], endpoint["IPv4Address"], endpoint["MacAddress"]) == (
        "ingress-endpoint", "10.0.0.2/24", "02:42:0a:00:00:02")
    listed = swarm.docker("network", "ls", "--filter", "name=ingress", "--format", "{{json .}}").stdout
    assert json.loads(listed)["Name"] == "ingress"  # the list shows no endpoints, as dockerd's


def test_a_network_in_use_here_shows_the_nodes_endpoint_until_its_last_task_goes(swarm: ShoalDaemon) -> None:
    swarm.docker("network", "create", "-d", "overlay", "--subnet", "10.67.0.0/24", "lbnet")
    assert containers(swarm, "lbnet") is None  # no task of this node on it yet
    wait_until(lambda: containers(swarm, "ingress") is not None, 30, "the allocator never ran")
    version, since = node_version(swarm), time.time()

    swarm.docker("service", "create", "--detach", "--name", "lbsvc", "--replicas", "2", "--network", "lbnet",
                 IMAGE, "sleep", "3600")
    tasks = running_tasks(swarm, "lbsvc", 2)
    wait_until(lambda: "lb-lbnet" in (containers(swarm, "lbnet") or {}), 30, "lbnet never showed lb-lbnet")
    shown = containers(swarm, "lbnet")
    endpoint = shown.pop("lb-lbnet")
    assert endpoint["Name"] == "lbnet-endpoint" and len(endpoint["EndpointID"]) == 64
    address = endpoint["IPv4Address"]
    assert ipaddress.IPv4Interface(address).network == ipaddress.IPv4Network("10.67.0.0/24")
    task_addresses = {t["NetworksAttachments"][0]["Addresses"][0] for t in tasks}
    vips = {v["Addr"] for v in swarm.docker_json("service", "inspect", "lbsvc")[0]["Endpoint"]["VirtualIPs"]}
    assert address not in task_addresses | vips | {"10.67.0.1/24"}
    # beside it, this node's task containers on the network, with their own addresses
    assert {c["IPv4Address"] for c in shown.values()} == task_addresses
    assert {t["Status"]["ContainerStatus"]["ContainerID"] for t in tasks} == set(shown)

    # kept without a write to the node: its version did not move and docker events shows no node update
    assert node_version(swarm) == version
    actions = swarm.docker("events", "--since", f"{since:.6f}", "--until", f"{time.time():.6f}", "--filter",
                           "type=node", "--format", "{{.Action}}").stdout.split()
    assert actions == []
    # a second look shows the same endpoint
    assert containers(swarm, "lbnet")["lb-lbnet"] == endpoint

    swarm.docker("service", "rm", "lbsvc")
    wait_until(lambda: containers(swarm, "lbnet") is None, 30, "lb-lbnet stayed after the node's last task went")
    wait_until(lambda: swarm.docker("network", "rm", "lbnet", check=False).returncode == 0, 30,
               "lbnet could not be removed")


def test_the_nodes_address_survives_a_restart(swarm: ShoalDaemon) -> None:
    """It lives in the replicated store: a restarted shoald (its new leader term) keeps it, unchanged."""
    swarm.docker("network", "create", "-d", "overlay", "--subnet", "10.69.0.0/24", "keptnet")
    swarm.docker("service", "create", "--detach", "--name", "keptsvc", "--network", "keptnet", IMAGE, "sleep", "3600")
    running_tasks(swarm, "keptsvc", 1)
    wait_until(lambda: "lb-keptnet" in (containers(swarm, "keptnet") or {}), 30, "keptnet never showed lb-keptnet")
    before = containers(swarm, "keptnet")["lb-keptnet"], containers(swarm, "ingress")["ingress-sbox"]
    swarm.stop()
    swarm.start()
    wait_until(lambda: swarm.docker("node", "ls", "--format", "{{.Status}}", check=False).stdout.split() == ["Ready"],
               60, "the restarted node never became Ready")
    running_tasks(swarm, "keptsvc", 1)
    assert (containers(swarm, "keptnet")["lb-keptnet"], containers(swarm, "ingress")["ingress-sbox"]) == before
    swarm.docker("service", "rm", "keptsvc")
