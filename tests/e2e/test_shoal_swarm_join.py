"""`shoal swarm join`: a second shoald on this machine joins the first's swarm over the cluster port, as a
worker or a manager as the token says, and a wrong token is refused with Swarm's message."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from test_shoal_cli import shoal

from shoal.testing.daemon import ShoalDaemon, wait_until


@pytest.fixture
def two(tmp_path: Path) -> Iterator[tuple[ShoalDaemon, ShoalDaemon]]:
    first, second = ShoalDaemon(tmp_path / "first"), ShoalDaemon(tmp_path / "second")
    first.start()
    second.start()
    try:
        yield first, second
    finally:
        second.leave_and_stop()
        first.leave_and_stop()


def cluster_address(daemon: ShoalDaemon) -> str:
    return str(daemon.docker_json("node", "inspect", "self")[0]["ManagerStatus"]["Addr"])


@pytest.mark.parametrize("role", ["worker", "manager"])
def test_a_node_joins_with_the_token_of_its_role(two: tuple[ShoalDaemon, ShoalDaemon], role: str) -> None:
    first, second = two
    shoal(first, "swarm", "init", "--advertise-addr", "127.0.0.1")
    token = shoal(first, "swarm", "join-token", "-q", role).stdout.strip()
    out = shoal(second, "swarm", "join", "--token", token, "--advertise-addr", "127.0.0.1", "--listen-addr",
                "127.0.0.1:0", cluster_address(first)).stdout
    assert out.strip() == f"This node joined a swarm as a {role}."
    wait_until(lambda: len(first.docker("node", "ls", "-q").stdout.split()) == 2, 30, "two nodes in node ls")


def test_a_wrong_token_is_refused(two: tuple[ShoalDaemon, ShoalDaemon]) -> None:
    first, second = two
    shoal(first, "swarm", "init", "--advertise-addr", "127.0.0.1")
    token = shoal(first, "swarm", "join-token", "-q", "worker").stdout.strip()
    forged = token[:-4] + ("aaaa" if not token.endswith("aaaa") else "bbbb")
    refused = shoal(second, "swarm", "join", "--token", forged, "--listen-addr", "127.0.0.1:0",
                    cluster_address(first), check=False)
    assert refused.returncode != 0
    assert "A valid join token is necessary to join this cluster" in refused.stderr
    assert second.docker("info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip() == "inactive"
