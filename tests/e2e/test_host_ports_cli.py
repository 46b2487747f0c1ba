"""Host-mode published ports on a task's container, through the real docker CLI, on each executor that
runs here: `docker ps` PORTS, `docker port` (all, one port, a port not published), inspect's
Config.ExposedPorts, HostConfig.PortBindings and NetworkSettings.Ports as dockerd shows them for a
swarm task, `docker service ps` PORTS, and the port answering on the node. A container without
published ports (and one whose service publishes through the ingress mesh only) shows none, as on
dockerd."""

from __future__ import annotations

import http.client
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker as docker_py
import pytest

from shoal.executor.oci.rootfs import build_busybox_rootfs, busybox_missing_reason, write_archive
from shoal.testing.daemon import ShoalDaemon, cli_requirement, wait_until
from shoal.testing.dockerd_hosts import DockerdHosts, dockerd_unavailable
from shoal.testing.netns import netns_unavailable
from shoal.testing.oci_swarm import oci_missing, oci_swarm
from shoal.testing.registry import free_port

pytestmark = pytest.mark.skipif(**cli_requirement())

OCI_IMAGE = "web:hostports"
WEB_CMD = 'CMD ["httpd","-f","-p","80","-h","/var/www"]'
PROCESS_WEB = ("my-apache2:latest", "python3", "-m", "shoal.demo.web", "--port", "80")


class Node:
    """A shoald in a swarm, and how a web workload listening on port 80 is started on its executor."""

    def __init__(self, daemon: ShoalDaemon, web: tuple[str, ...], sleeper: tuple[str, ...],
                 host_ips: tuple[str, ...], reachable: bool) -> None:
        self.daemon = daemon
        self.web = web
        self.sleeper = sleeper
        self.host_ips = host_ips  # the addresses a host port is bound on, as the executor reports them
        self.reachable = reachable  # whether the published port is on this machine's own network


@pytest.fixture(scope="module", params=["process", "oci", "docker"])
def node(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    work = tmp_path_factory.mktemp(f"hostports-{request.param}")
    if request.param == "process":
        daemon = ShoalDaemon(work)
        daemon.start()
        try:
            daemon.docker("swarm", "init", "--advertise-addr", "127.0.0.1")
            yield Node(daemon, PROCESS_WEB, ("busybox", "sleep", "3600"), ("0.0.0.0",), True)
        finally:
            daemon.leave_and_stop()
    elif request.param == "oci":
        why_not = oci_missing()
        if why_not:
            pytest.skip(why_not)
        with oci_swarm(work, OCI_IMAGE, WEB_CMD) as daemon:
            yield Node(daemon, (OCI_IMAGE,), (OCI_IMAGE, "sleep", "3600"), ("0.0.0.0",), True)
    else:
        yield from _docker_node(work)


def _docker_node(work: Path) -> Iterator[Node]:
    """shoald on the docker executor, driving a private dockerd in a network namespace: the engine binds
    the host ports (in its namespace, so they are not reached from here) on 0.0.0.0 and ::."""
    why_not = dockerd_unavailable() or netns_unavailable() or busybox_missing_reason()
    if why_not:
        pytest.skip(why_not)
    engines = DockerdHosts(f"hp{uuid.uuid4().hex[:4]}", work / "dockerd")
    daemon: ShoalDaemon | None = None
    try:
        engines.start(1)
        engines.import_image(write_archive(build_busybox_rootfs(work / "rootfs"), work / "busybox.tar"), OCI_IMAGE)
        daemon = ShoalDaemon(work / "shoald", executor="docker",
                             extra_args=["--docker-host", engines.nodes[0].engine.base_url])
        daemon.start()
        daemon.docker("swarm", "init", "--advertise-addr", "127.0.0.1")
        yield Node(daemon, (OCI_IMAGE, "httpd", "-f", "-p", "80", "-h", "/"), (OCI_IMAGE, "sleep", "3600"),
                   ("0.0.0.0", "::"), False)
    finally:
        if daemon is not None:
            daemon.leave_and_stop()
        engines.destroy()


def running_container(daemon: ShoalDaemon, name: str) -> str:
    found: list[str] = []

    def one() -> bool:
        found[:] = daemon.docker("ps", "-q", "--no-trunc", "--filter", f"name={name}.").stdout.split()
        return len(found) == 1

    wait_until(one, 60, f"no running container for {name}: {found}")
    return found[0]


def cli_address(ip: str, port: int) -> str:
    """How docker CLI 28 writes a host address (IPv6 in brackets)."""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def answers_http(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/")
        connection.getresponse().read()
        return True
    except OSError:
        return False
    finally:
        connection.close()


def test_a_host_mode_port_is_shown_on_the_task_container(node: Node) -> None:
    docker = node.daemon.docker
    port = free_port()
    name = f"hosted{uuid.uuid4().hex[:6]}"
    docker("service", "create", "--detach", "--name", name, "--publish", f"mode=host,published={port},target=80",
           *node.web)
    container = running_container(node.daemon, name)
    short = container[:12]

    listed = docker("ps", "--filter", f"id={container}", "--format", "{{.Ports}}").stdout.strip()
    assert listed == ", ".join(f"{cli_address(ip, port)}->80/tcp" for ip in node.host_ips)
    assert docker("port", short).stdout.splitlines() == [f"80/tcp -> {cli_address(ip, port)}" for ip in node.host_ips]
    for asked in ("80/tcp", "80"):
        assert docker("port", short, asked).stdout.splitlines() == [cli_address(ip, port) for ip in node.host_ips]
    for other in ("81/tcp", "80/udp"):
        missing = docker("port", short, other, check=False)
        assert missing.returncode == 1
        assert missing.stderr.strip() == f"Error: No public port '{other}' published for {short}"

    shown = node.daemon.docker_json("inspect", container)[0]
    assert shown["HostConfig"]["PortBindings"] == {"80/tcp": [{"HostIp": "", "HostPort": str(port)}]}
    assert "80/tcp" in shown["Config"]["ExposedPorts"]
    assert shown["NetworkSettings"]["Ports"] == {
        "80/tcp": [{"HostIp": ip, "HostPort": str(port)} for ip in node.host_ips]}
    client = docker_py.DockerClient(base_url=node.daemon.docker_host, version="auto", timeout=30)
    try:
        assert client.containers.get(container).ports == shown["NetworkSettings"]["Ports"]
        assert [c.id for c in client.containers.list(filters={"publish": f"{port}/tcp"})] == [container]
    finally:
        client.close()

    def in_service_ps() -> bool:
        rows = docker("service", "ps", "--format", "{{.CurrentState}}|{{.Ports}}", name).stdout.splitlines()
        return any(row.startswith("Running") and f"*:{port}->80/tcp" in row for row in rows)

    wait_until(in_service_ps, 30, "the host-mode port is not in service ps PORTS")
    docker("service", "rm", name)


def test_a_host_mode_port_answers_on_the_node(node: Node) -> None:
    if not node.reachable:
        pytest.skip("the engine binds the port in its own network namespace, not this machine's")
    port = free_port()
    name = f"answers{uuid.uuid4().hex[:6]}"
    node.daemon.docker("service", "create", "--detach", "--name", name, "--publish",
                       f"mode=host,published={port},target=80", *node.web)
    running_container(node.daemon, name)
    try:
        wait_until(lambda: answers_http(port), 30, f"nothing answers on 127.0.0.1:{port}")
    finally:
        node.daemon.docker("service", "rm", name)


def test_containers_without_host_ports_show_none(node: Node) -> None:
    docker = node.daemon.docker
    plain, meshed = f"plain{uuid.uuid4().hex[:6]}", f"meshed{uuid.uuid4().hex[:6]}"
    docker("service", "create", "--detach", "--name", plain, *node.sleeper)
    docker("service", "create", "--detach", "--name", meshed, "--publish", f"{free_port()}:80", *node.sleeper)
    for name in (plain, meshed):
        container = running_container(node.daemon, name)
        assert docker("ps", "--filter", f"id={container}", "--format", "{{.Ports}}").stdout.strip() == ""
        listing = docker("port", container)
        assert (listing.returncode, listing.stdout) == (0, "")
        missing = docker("port", container, "80/tcp", check=False)
        assert missing.returncode == 1
        assert missing.stderr.strip() == f"Error: No public port '80/tcp' published for {container}"
        shown = node.daemon.docker_json("inspect", container)[0]
        assert shown["NetworkSettings"]["Ports"] == {}
        assert shown["HostConfig"]["PortBindings"] == {}
        docker("service", "rm", name)


def test_a_task_adopted_after_a_restart_still_shows_its_port(node: Node) -> None:
    """The port is kept with the task's runtime on disk: the container found again shows it."""
    port = free_port()
    name = f"adopted{uuid.uuid4().hex[:6]}"
    node.daemon.docker("service", "create", "--detach", "--name", name, "--publish",
                       f"mode=host,published={port},target=80", *node.sleeper)
    container = running_container(node.daemon, name)
    node.daemon.stop()
    node.daemon.start()
    assert running_container(node.daemon, name) == container  # the same one, not a replacement
    listed = node.daemon.docker("ps", "--filter", f"id={container}", "--format", "{{.Ports}}").stdout.strip()
    assert listed == ", ".join(f"{cli_address(ip, port)}->80/tcp" for ip in node.host_ips)
    shown = node.daemon.docker_json("inspect", container)[0]
    assert shown["HostConfig"]["PortBindings"] == {"80/tcp": [{"HostIp": "", "HostPort": str(port)}]}
    node.daemon.docker("service", "rm", name)


def test_a_host_mode_port_published_as_0_gets_a_free_port_shown_everywhere(node: Node) -> None:
    name = f"anyport{uuid.uuid4().hex[:6]}"
    node.daemon.docker("service", "create", "--detach", "--name", name, "--publish", "mode=host,target=80",
                       *node.web)
    container = running_container(node.daemon, name)
    rows: list[str] = []

    def running_row() -> bool:
        rows[:] = [row for row in node.daemon.docker("service", "ps", "--format", "{{.CurrentState}}|{{.Ports}}",
                                                     name).stdout.splitlines() if row.startswith("Running")]
        return bool(rows)

    wait_until(running_row, 30, f"no running task of {name}")
    try:
        listed = node.daemon.docker("ps", "--filter", f"id={container}", "--format", "{{.Ports}}").stdout.strip()
        chosen = listed.partition("->")[0].rpartition(":")[2]
        assert chosen.isdigit(), listed
        assert listed == ", ".join(f"{cli_address(ip, int(chosen))}->80/tcp" for ip in node.host_ips)
        assert rows[0].endswith(f"|*:{chosen}->80/tcp")  # once, though the engine binds it on two addresses
    finally:
        node.daemon.docker("service", "rm", name)
