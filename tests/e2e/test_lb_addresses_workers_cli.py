"""Issue 9 on a worker, through the real docker CLI: a second shoald joined as a worker shows its own
load-balancer endpoints in `docker network inspect` (ingress-sbox on ingress, lb-<net> on a network its
task is on), at addresses of its own, as a dockerd worker does; the network goes from its view with its
last task there."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shoal.testing.daemon import ShoalDaemon, cli_requirement, wait_until

pytestmark = pytest.mark.skipif(**cli_requirement())  # without a docker CLI these checks cannot run

IMAGE = "my-apache2:latest"


@pytest.fixture
def manager_and_worker(tmp_path: Path) -> Iterator[tuple[ShoalDaemon, ShoalDaemon]]:
    manager, worker = ShoalDaemon(tmp_path / "manager"), ShoalDaemon(tmp_path / "worker")
    manager.start()
    worker.start()
    try:
        manager.docker("swarm", "init", "--advertise-addr", "127.0.0.1")
        token = manager.docker("swarm", "join-token", "-q", "worker").stdout.strip()
        address = manager.docker_json("node", "inspect", "self")[0]["ManagerStatus"]["Addr"]
        worker.docker("swarm", "join", "--token", token, "--advertise-addr", "127.0.0.1", "--listen-addr",
                      "127.0.0.1:0", address)
        wait_until(lambda: manager.docker("node", "ls", "--format", "{{.Status}}").stdout.split() == ["Ready"] * 2,
                   30, "the worker never became Ready")
        yield manager, worker
    finally:
        worker.leave_and_stop()
        manager.leave_and_stop()


def containers(daemon: ShoalDaemon, network: str) -> Any:
    shown = daemon.docker("network", "inspect", "--format", "{{json .Containers}}", network, check=False)
    return json.loads(shown.stdout) if shown.returncode == 0 else "not found"


def endpoint(daemon: ShoalDaemon, network: str, key: str) -> dict[str, Any] | None:
    shown = containers(daemon, network)
    found: dict[str, Any] | None = shown.get(key) if isinstance(shown, dict) else None
    return found


def test_a_worker_shows_its_own_load_balancer_endpoints(manager_and_worker: tuple[ShoalDaemon, ShoalDaemon]) -> None:
    manager, worker = manager_and_worker
    manager.docker("network", "create", "-d", "overlay", "--subnet", "10.68.0.0/24", "wnet")
    manager.docker("service", "create", "--detach", "--name", "wsvc", "--mode", "global", "--network", "wnet",
                   IMAGE, "sleep", "3600")
    wait_until(lambda: endpoint(worker, "wnet", "lb-wnet") is not None, 60, "the worker never showed lb-wnet")
    wait_until(lambda: endpoint(manager, "wnet", "lb-wnet") is not None, 30, "the manager never showed lb-wnet")
    on_worker, on_manager = endpoint(worker, "wnet", "lb-wnet"), endpoint(manager, "wnet", "lb-wnet")
    assert on_worker is not None and on_manager is not None
    assert on_worker["Name"] == "wnet-endpoint"
    assert on_worker["IPv4Address"] != on_manager["IPv4Address"]
    assert ipaddress.IPv4Interface(on_worker["IPv4Address"]).network == ipaddress.IPv4Network("10.68.0.0/24")
    ingress = endpoint(worker, "ingress", "ingress-sbox")  # every node has its own on ingress
    assert ingress is not None and ingress["Name"] == "ingress-endpoint"
    assert ingress["IPv4Address"] != (endpoint(manager, "ingress", "ingress-sbox") or {}).get("IPv4Address")
    # beside it, the worker's own task container (and only it) with the task's address
    worker_id = worker.docker("info", "--format", "{{.Swarm.NodeID}}").stdout.strip()
    wait_until(lambda: len(containers(worker, "wnet")) == 2, 30, "the worker's task container never showed")
    ids = manager.docker("service", "ps", "-q", "--no-trunc", "--filter", f"node={worker_id}", "wsvc").stdout.split()
    [task] = [t for t in manager.docker_json("inspect", "--type", "task", *ids) if t["Status"]["State"] == "running"]
    shown = containers(worker, "wnet")
    shown.pop("lb-wnet")
    assert [c["IPv4Address"] for c in shown.values()] == task["NetworksAttachments"][0]["Addresses"]

    manager.docker("service", "rm", "wsvc")
    wait_until(lambda: containers(worker, "wnet") == "not found", 60, "the worker kept wnet after its task went")
