"""A task container that has stopped holds no port, as on dockerd: `docker ps -a` shows no PORTS (not
even the ports its image exposes), NetworkSettings.Ports is {} and `docker port` prints nothing, while
HostConfig.PortBindings and Config.ExposedPorts still say what was asked for. On the process executor
and on the oci executor with an image that exposes a port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shoal.testing.daemon import ShoalDaemon, cli_requirement, wait_until
from shoal.testing.oci_swarm import oci_missing, oci_swarm
from shoal.testing.registry import free_port

pytestmark = pytest.mark.skipif(**cli_requirement())
OCI_IMAGE = "exposing:stopped"


@pytest.fixture(scope="module", params=["process", "oci"])
def node(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ShoalDaemon, str]]:
    """A one-node swarm and the image its task runs (on oci, one that exposes 8443/tcp)."""
    work = tmp_path_factory.mktemp(f"stopped-{request.param}")
    if request.param == "process":
        daemon = ShoalDaemon(work)
        daemon.start()
        try:
            daemon.docker("swarm", "init", "--advertise-addr", "127.0.0.1")
            yield daemon, "busybox"
        finally:
            daemon.leave_and_stop()
        return
    why_not = oci_missing()
    if why_not:
        pytest.skip(why_not)
    with oci_swarm(work, OCI_IMAGE, "EXPOSE 8443") as daemon:
        yield daemon, OCI_IMAGE


def test_a_stopped_container_shows_no_bound_port(node: tuple[ShoalDaemon, str]) -> None:
    swarm, image = node
    port = free_port()
    swarm.docker("service", "create", "--detach", "--name", "finished", "--restart-condition", "none", "--publish",
                 f"mode=host,published={port},target=80", image, "true")
    found: list[str] = []

    def exited() -> bool:
        found[:] = swarm.docker("ps", "-a", "-q", "--no-trunc", "--filter", "name=finished.",
                                "--filter", "status=exited").stdout.split()
        return len(found) == 1

    wait_until(exited, 60, "the task's container did not exit")
    (container,) = found
    assert swarm.docker("ps", "-a", "--filter", f"id={container}", "--format", "{{.Ports}}").stdout.strip() == ""
    shown = swarm.docker_json("inspect", container)[0]
    assert shown["NetworkSettings"]["Ports"] == {}
    assert shown["HostConfig"]["PortBindings"] == {"80/tcp": [{"HostIp": "", "HostPort": str(port)}]}
    assert "80/tcp" in shown["Config"]["ExposedPorts"]
    if image == OCI_IMAGE:
        assert "8443/tcp" in shown["Config"]["ExposedPorts"]
    listing = swarm.docker("port", container)
    assert (listing.returncode, listing.stdout) == (0, "")
    swarm.docker("service", "rm", "finished")
