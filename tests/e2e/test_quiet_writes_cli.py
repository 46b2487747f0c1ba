"""Issue 9: nothing writes a cluster object when nothing a client sees changes, so an update sent with
the version just read succeeds. The node: written once when its agent first registers (Status ready
and its Description, as Docker's), not again when the agent registers anew after a restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from shoal.testing.daemon import ShoalDaemon, cli_requirement, wait_until

pytestmark = pytest.mark.skipif(**cli_requirement())


@pytest.fixture
def restartable(tmp_path: Path) -> Iterator[ShoalDaemon]:
    daemon = ShoalDaemon(tmp_path / "shoald")
    daemon.start()
    try:
        daemon.docker("swarm", "init", "--advertise-addr", "127.0.0.1")
        yield daemon
    finally:
        daemon.leave_and_stop()


def node_state(daemon: ShoalDaemon) -> tuple[int, str]:
    node = daemon.docker_json("node", "inspect", "self")[0]
    return int(node["Version"]["Index"]), str(node["Status"]["State"])


def test_a_registering_agent_that_changes_nothing_writes_nothing(restartable: ShoalDaemon) -> None:
    wait_until(lambda: node_state(restartable)[1] == "ready", 30, "the node never became ready")
    version, _ = node_state(restartable)
    node_id = restartable.docker("node", "inspect", "self", "--format", "{{.ID}}").stdout.strip()
    restartable.stop()
    restartable.start()  # its agent registers again, with the same description
    wait_until(lambda: node_state(restartable)[1] == "ready", 30, "the node never became ready again")
    assert node_state(restartable)[0] == version
    client = docker.APIClient(base_url=restartable.docker_host)
    try:
        spec = client.inspect_node(node_id)["Spec"]
        client.update_node(node_id, version, {**spec, "Labels": {"read": "before-restart"}})
    finally:
        client.close()
    assert restartable.docker_json("node", "inspect", "self")[0]["Spec"]["Labels"] == {"read": "before-restart"}
