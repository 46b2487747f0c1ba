"""Networks through the real docker CLI against a real shoald: create/ls/inspect/rm, Docker's refusals
(in use, overlapping subnet, encrypted), services attached with VIPs and task addresses, network-add
and -rm, the default address pool of `swarm init`; and no spurious write after `service create`."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shoal.testing.daemon import CLI_DAEMON_ERRORS_VERBATIM, ShoalDaemon, cli_has, cli_requirement, wait_until

pytestmark = pytest.mark.skipif(**cli_requirement())  # without a docker CLI these checks cannot run

IMAGE = "my-apache2:latest"


def service_tasks(daemon: ShoalDaemon, service: str) -> list[dict[str, Any]]:
    ids = daemon.docker("service", "ps", "-q", "--no-trunc", service).stdout.split()
    found: list[dict[str, Any]] = daemon.docker_json("inspect", "--type", "task", *ids) if ids else []
    return found


def running(daemon: ShoalDaemon, service: str, count: int) -> list[dict[str, Any]]:
    def ready() -> bool:
        return sum(t["Status"]["State"] == "running" for t in service_tasks(daemon, service)) == count

    wait_until(ready, 60, f"{service} never had {count} running tasks")
    return [t for t in service_tasks(daemon, service) if t["Status"]["State"] == "running"]


def inspect(daemon: ShoalDaemon, kind: str, ref: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = daemon.docker_json(kind, "inspect", ref)
    return found[0]


def test_outside_a_swarm_there_are_no_networks_to_make(daemon: ShoalDaemon) -> None:
    """Runs first, before the module's daemon joins a swarm: dockerd's answers for a node outside one."""
    assert daemon.docker("network", "ls", "-q").stdout == ""
    made = daemon.docker("network", "create", "-d", "overlay", "early", check=False)
    assert made.returncode == 1 and "This node is not a swarm manager." in made.stderr
    gone = daemon.docker("network", "inspect", "early", check=False)
    assert gone.returncode == 1


def test_service_without_ports_is_not_written_again(swarm: ShoalDaemon) -> None:
    """Issue 9: the allocator wrote a portless service ~15 ms after create (an Endpoint nobody asked
    for): `docker events` showed a `service update` and an update with the version just read failed."""
    since = time.time()
    service_id = swarm.docker("service", "create", "--detach", "--name", "quiet", IMAGE, "sleep", "3600").stdout.strip()
    version = inspect(swarm, "service", "quiet")["Version"]["Index"]
    running(swarm, "quiet", 1)  # the allocator has handled the service once its task has moved on
    shown = inspect(swarm, "service", "quiet")
    assert shown["Version"]["Index"] == version
    assert shown.get("Endpoint", {"Spec": {}}) == {"Spec": {}}
    status, body = api_update_labels(swarm, service_id, version, {"after": "create"})
    assert status == 200, body
    until = time.time()
    actions = swarm.docker("events", "--since", f"{since:.6f}", "--until", f"{until:.6f}", "--filter", "type=service",
                           "--filter", f"service={service_id}", "--format", "{{.Action}}").stdout.split()
    assert actions == ["create", "update"], actions  # the one update is ours
    swarm.docker("service", "rm", "quiet")


def test_a_portless_service_shows_an_empty_endpoint_in_the_raw_api(swarm: ShoalDaemon) -> None:
    """dockerd always sends an Endpoint (docker-py, Portainer and Traefik read it raw, not through the
    CLI's Go types), even when the allocator has nothing to put in it."""
    import docker

    swarm.docker("service", "create", "--detach", "--name", "rawq", IMAGE, "sleep", "3600")
    client = docker.APIClient(base_url=swarm.docker_host)
    try:
        assert client.inspect_service("rawq").get("Endpoint") == {"Spec": {}}
        assert [s.get("Endpoint") for s in client.services(filters={"name": "rawq"})] == [{"Spec": {}}]
    finally:
        client.close()
        swarm.docker("service", "rm", "rawq")


def api_update_labels(daemon: ShoalDaemon, service_id: str, version: int, labels: dict[str, str]) -> tuple[int, str]:
    """POST /services/{id}/update with the version the caller read, as docker-py sends it."""
    import docker  # docker-py: the raw update call with an explicit version

    client = docker.APIClient(base_url=daemon.docker_host)
    spec = client.inspect_service(service_id)["Spec"]
    spec["Labels"] = labels
    try:
        client.update_service(service_id, version, task_template=spec["TaskTemplate"], name=spec["Name"],
                              labels=labels, mode=spec.get("Mode"), endpoint_spec=spec.get("EndpointSpec"))
    except docker.errors.APIError as refused:
        return refused.status_code or 0, str(refused.explanation)
    finally:
        client.close()
    return 200, ""


def test_create_ls_inspect_rm(swarm: ShoalDaemon) -> None:
    network_id = swarm.docker("network", "create", "-d", "overlay", "--attachable", "--label", "team=a",
                              "front").stdout.strip()
    assert len(network_id) == 25
    rows = swarm.docker("network", "ls", "--format", "{{.ID}} {{.Name}} {{.Driver}} {{.Scope}}").stdout.splitlines()
    assert f"{network_id[:12]} front overlay swarm" in rows
    assert any(row.endswith(" ingress overlay swarm") for row in rows)
    assert swarm.docker("network", "ls", "-q", "--filter", "label=team=a").stdout.split() == [network_id[:12]]
    shown = inspect(swarm, "network", "front")
    assert (shown["Id"], shown["Scope"], shown["Driver"], shown["Attachable"]) == (network_id, "swarm", "overlay", True)
    [config] = shown["IPAM"]["Config"]
    assert ipaddress.IPv4Network(config["Subnet"]).subnet_of(ipaddress.IPv4Network("10.0.0.0/8"))
    assert swarm.docker("network", "rm", "front").stdout.strip() == "front"
    gone = swarm.docker("network", "inspect", "front", check=False)
    assert gone.returncode == 1
    if cli_has(CLI_DAEMON_ERRORS_VERBATIM, "network inspect of a removed network"):
        assert "network front not found" in gone.stderr


def test_refusals_change_nothing(swarm: ShoalDaemon) -> None:
    before = swarm.docker("network", "ls", "-q").stdout
    overlap = swarm.docker("network", "create", "-d", "overlay", "--subnet", "10.0.0.0/16", "clash", check=False)
    assert overlap.returncode == 1
    assert overlap.stderr.strip() == ("Error response from daemon: invalid pool request: Pool overlaps with other one "
                                      "on this address space")
    encrypted = swarm.docker("network", "create", "-d", "overlay", "--opt", "encrypted", "secret", check=False)
    assert encrypted.returncode == 1 and "no IPsec" in encrypted.stderr
    bridge = swarm.docker("network", "create", "plain", check=False)
    assert bridge.returncode == 1 and 'network driver "bridge" is not supported' in bridge.stderr
    second_ingress = swarm.docker("network", "create", "-d", "overlay", "--ingress", "ingress2", check=False)
    assert second_ingress.returncode == 1
    assert "rpc error: code = AlreadyExists desc = ingress network (" in second_ingress.stderr
    assert swarm.docker("network", "ls", "-q").stdout == before


def test_attached_service_has_vips_and_task_addresses(swarm: ShoalDaemon) -> None:
    swarm.docker("network", "create", "-d", "overlay", "--subnet", "10.66.0.0/24", "back")
    network_id = inspect(swarm, "network", "back")["Id"]
    service_id = swarm.docker("service", "create", "--detach", "--name", "api", "--replicas", "2",
                              "--network", "name=back,alias=db", IMAGE, "sleep", "3600").stdout.strip()
    tasks = running(swarm, "api", 2)
    service = inspect(swarm, "service", "api")
    assert service["Spec"]["TaskTemplate"]["Networks"] == [{"Target": network_id, "Aliases": ["db"]}]
    assert service["Endpoint"]["VirtualIPs"] == [{"NetworkID": network_id, "Addr": "10.66.0.2/24"}]
    addresses = set()
    for task in tasks:
        [attachment] = task["NetworksAttachments"]
        assert attachment["Network"]["ID"] == network_id and attachment["Aliases"] == ["db"]
        addresses.update(attachment["Addresses"])
    assert addresses == {"10.66.0.3/24", "10.66.0.4/24"}

    in_use = swarm.docker("network", "rm", "back", check=False)
    assert in_use.returncode == 1
    assert (f"rpc error: code = FailedPrecondition desc = network {network_id} is in use by service {service_id}"
            in in_use.stderr)

    swarm.docker("service", "update", "--detach", "--network-rm", "back", "api")
    assert inspect(swarm, "service", "api")["Spec"]["TaskTemplate"].get("Networks") in (None, [])
    wait_until(lambda: "VirtualIPs" not in inspect(swarm, "service", "api")["Endpoint"], 30, "VIP kept")
    swarm.docker("service", "update", "--detach", "--network-add", "back", "api")
    wait_until(lambda: bool(inspect(swarm, "service", "api")["Endpoint"].get("VirtualIPs")), 30, "no VIP")

    unknown = swarm.docker("service", "create", "--detach", "--name", "lost", "--network", "nosuch", IMAGE,
                           check=False)
    assert unknown.returncode == 1 and "network nosuch not found" in unknown.stderr
    swarm.docker("service", "rm", "api")
    wait_until(lambda: swarm.docker("network", "rm", "back", check=False).returncode == 0, 30,
               "network still in use after its service went")


@pytest.fixture(scope="module")
def pooled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShoalDaemon]:
    daemon = ShoalDaemon(Path(tmp_path_factory.mktemp("pooled")))
    daemon.start()
    try:
        daemon.docker("swarm", "init", "--advertise-addr", "127.0.0.1", "--default-addr-pool", "10.20.0.0/16",
                      "--default-addr-pool-mask-length", "26")
        yield daemon
    finally:
        daemon.leave_and_stop()


def test_default_addr_pool_is_honoured(pooled: ShoalDaemon) -> None:
    info = json.loads(pooled.docker("info", "--format", "{{json .Swarm.Cluster}}").stdout)
    assert (info["DefaultAddrPool"], info["SubnetSize"]) == (["10.20.0.0/16"], 26)
    pooled.docker("network", "create", "-d", "overlay", "mine")
    assert inspect(pooled, "network", "mine")["IPAM"]["Config"][0]["Subnet"].startswith("10.20.0.")
    assert inspect(pooled, "network", "ingress")["IPAM"]["Config"] == [
        {"Subnet": "10.20.0.0/26", "Gateway": "10.20.0.1"}
    ]


def test_docker_py_names_a_network_and_the_cli_removes_it_by_name(swarm: ShoalDaemon) -> None:
    """docker-py (and stack deploy) send the network's name; dockerd stores its id, which the CLI's
    --network-rm compares against."""
    import docker

    client = docker.DockerClient(base_url=swarm.docker_host)
    try:
        network = client.networks.create("pynet", driver="overlay")
        created = client.services.create(IMAGE, ["sleep", "3600"], name="pysvc", networks=["pynet"])
        targets = [n["Target"] for n in created.attrs["Spec"]["TaskTemplate"]["Networks"]]
        assert targets == [network.id]
        swarm.docker("service", "update", "--detach", "--network-rm", "pynet", "pysvc")
        assert not inspect(swarm, "service", "pysvc")["Spec"]["TaskTemplate"].get("Networks")
        created.remove()
        wait_until(lambda: swarm.docker("network", "rm", "pynet", check=False).returncode == 0, 30,
                   "network still in use after its service went")
    finally:
        client.close()


def test_ingress_is_replaced_with_create_ingress(pooled: ShoalDaemon) -> None:
    pooled.docker("network", "rm", "ingress", input="y\n")
    assert "ingress" not in pooled.docker("network", "ls", "--format", "{{.Name}}").stdout.split()
    refused = pooled.docker("service", "create", "--detach", "--name", "early", "-p", "18081:80", IMAGE, "sleep",
                            "3600", check=False)
    assert refused.returncode == 1
    assert "service needs ingress network, but no ingress network is present" in refused.stderr
    pooled.docker("network", "create", "-d", "overlay", "--ingress", "--subnet", "10.11.0.0/24", "edge")
    edge = inspect(pooled, "network", "edge")
    assert edge["Ingress"] is True
    pooled.docker("service", "create", "--detach", "--name", "published", "-p", "18081:80", IMAGE, "sleep", "3600")
    wait_until(lambda: bool(inspect(pooled, "service", "published")["Endpoint"].get("VirtualIPs")), 30, "no VIP")
    assert inspect(pooled, "service", "published")["Endpoint"]["VirtualIPs"] == [
        {"NetworkID": edge["Id"], "Addr": "10.11.0.2/24"}
    ]
    again = pooled.docker("network", "create", "-d", "overlay", "--ingress", "edge2", check=False)
    assert again.returncode == 1
    assert f"ingress network ({edge['Id']}) is already present" in again.stderr
    pooled.docker("service", "rm", "published")


def _ping_argv() -> list[str]:
    return ["ping"] if shutil.which("ping") else ["busybox", "ping"]


@pytest.mark.skipif(os.geteuid() != 0 or not (shutil.which("ping") or shutil.which("busybox")),
                    reason="process tasks get network namespaces only with root; needs ping")
def test_two_tasks_of_a_network_reach_each_other_by_address(swarm: ShoalDaemon) -> None:
    swarm.docker("network", "create", "-d", "overlay", "--subnet", "10.67.0.0/24", "pair")
    swarm.docker("service", "create", "--detach", "--name", "pairs", "--replicas", "2", "--network", "pair", IMAGE,
                 "sleep", "3600")
    tasks = running(swarm, "pairs", 2)
    addresses = [t["NetworksAttachments"][0]["Addresses"][0].split("/")[0] for t in tasks]
    containers = [t["Status"]["ContainerStatus"]["ContainerID"] for t in tasks]
    shown = swarm.docker("exec", containers[0], "ip", "-o", "-4", "addr", "show").stdout
    assert f" {addresses[0]}/24 " in shown
    ping = swarm.docker("exec", containers[0], *_ping_argv(), "-c", "1", "-W", "5", addresses[1], check=False)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    swarm.docker("service", "rm", "pairs")
    wait_until(lambda: swarm.docker("network", "rm", "pair", check=False).returncode == 0, 30, "pair still in use")
