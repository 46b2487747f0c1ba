"""The kernel path in front of real containers on docker's bridge, whose FORWARD policy is DROP."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest
from mesh_client import ask_many
from mesh_netns import HERE, Case, NetnsNetwork

from shoal.network.mesh.kernel import KernelMesh, remove_kernel_rules
from shoal.network.mesh.state import Backend, PublishedPort

pytestmark = [pytest.mark.root, pytest.mark.docker]

IMAGE = "shoal-busybox:latest"
SOCKET = "/var/run/docker.sock"


@pytest.fixture
def containers(test_network: NetnsNetwork, case: Case) -> Iterator[dict[str, str]]:
    """Two busybox httpd containers answering with their names: {name: docker bridge IP}."""
    docker = pytest.importorskip("docker")
    if not os.path.exists(SOCKET):
        pytest.skip("no dockerd (see .ci/setup-dockerd)")
    client = docker.DockerClient(base_url=f"unix://{SOCKET}")
    try:
        client.images.get(IMAGE)
    except docker.errors.ImageNotFound:
        pytest.skip(f"{IMAGE} not loaded")
    started = []
    try:
        for label in ("x", "y"):
            name = f"shoal-meshtest-{case.tag}-{label}"
            script = f"mkdir -p /www && echo -n {name} > /www/index.html && exec httpd -f -p 80 -h /www"
            started.append(client.containers.run(IMAGE, ["sh", "-c", script], name=name, detach=True))
        addresses = {}
        for container in started:
            container.reload()
            addresses[container.name] = container.attrs["NetworkSettings"]["IPAddress"]
        yield addresses
    finally:
        for container in started:
            container.remove(force=True)
        client.close()


async def test_containers_behind_dockers_forward_drop_are_balanced_for_local_and_remote_clients(
    test_network: NetnsNetwork, case: Case, containers: dict[str, str]
) -> None:
    instance, port = f"d{case.tag}", case.port
    mesh = KernelMesh(instance)
    await mesh.start()
    try:
        await mesh.apply({PublishedPort(port): [Backend(ip, 80) for ip in containers.values()]})
        client = test_network.namespace("client")
        for _ in range(20):  # httpd needs a moment after the container starts
            if not any(a.startswith("!") for a in await ask_many("tcp", "127.0.0.1", port, 2)):
                break
            await asyncio.sleep(0.1)
        assert sorted(await ask_many("tcp", "127.0.0.1", port, 4)) == sorted(list(containers) * 2)
        out = await asyncio.to_thread(
            test_network.run_in,
            client,
            "python3",
            str(HERE / "mesh_client.py"),
            "tcp",
            test_network.host_ip,
            str(port),
            "4",
        )
        assert sorted(out.split()) == sorted(list(containers) * 2)
    finally:
        await remove_kernel_rules(instance)
