"""`docker service ps --filter desired-state=...` through the real docker CLI: dockerd's states in any
case, and its error text for an unknown one."""

from __future__ import annotations

import pytest

from shoal.testing.daemon import ShoalDaemon, cli_requirement, wait_until

pytestmark = pytest.mark.skipif(**cli_requirement())


def test_desired_state_filter(swarm: ShoalDaemon) -> None:
    swarm.docker("service", "create", "--detach", "--name", "once", "--mode", "replicated-job", "busybox", "true")
    wait_until(lambda: "Complete" in swarm.docker("service", "ps", "once").stdout, 60, "the job never completed")
    assert len(swarm.docker("service", "ps", "-q", "-f", "desired-state=COMPLETE", "once").stdout.split()) == 1
    assert swarm.docker("service", "ps", "-q", "-f", "desired-state=running", "once").stdout.split() == []
    bogus = swarm.docker("service", "ps", "-f", "desired-state=bogus", "once", check=False)
    assert bogus.returncode == 1
    assert "Error response from daemon: Invalid desired-state filter: 'bogus'" in bogus.stderr
