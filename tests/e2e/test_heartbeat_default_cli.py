"""`docker info` reports the dispatcher heartbeat as Swarm does (Dispatcher: Heartbeat Period), and on a
new swarm it is shoal's default (api/defaults.py, chosen by the cluster benchmark and soaks), which
`swarm update --dispatcher-heartbeat` replaces."""

from __future__ import annotations

import pytest

from shoal.api.defaults import HEARTBEAT_PERIOD, NANOS
from shoal.testing.daemon import DOCKER_CLI, ShoalDaemon

pytestmark = pytest.mark.skipif(DOCKER_CLI is None, reason="no docker CLI")


def heartbeat_line(swarm: ShoalDaemon) -> str:
    lines = swarm.docker("info").stdout.splitlines()
    return next(line.strip() for line in lines if "Heartbeat Period" in line)


def test_docker_info_shows_the_default_heartbeat_then_the_updated_one(swarm: ShoalDaemon) -> None:
    assert HEARTBEAT_PERIOD == 1 * NANOS
    spec = swarm.docker_json("info", "--format", "{{json .Swarm.Cluster.Spec.Dispatcher}}")
    assert spec == {"HeartbeatPeriod": HEARTBEAT_PERIOD}
    assert heartbeat_line(swarm) == "Heartbeat Period: 1 second"
    swarm.docker("swarm", "update", "--dispatcher-heartbeat", "5s")
    try:
        assert heartbeat_line(swarm) == "Heartbeat Period: 5 seconds"
    finally:
        swarm.docker("swarm", "update", "--dispatcher-heartbeat", "1s")
