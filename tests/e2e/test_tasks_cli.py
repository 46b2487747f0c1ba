"""Tasks through the real docker CLI: `service ps --filter desired-state=...` with dockerd's states in
any case and its error text for an unknown one; host-mode published ports in the PORTS column."""

from __future__ import annotations

import pytest

from shoal.testing.daemon import ShoalDaemon, cli_requirement, wait_until
from shoal.testing.registry import free_port

pytestmark = pytest.mark.skipif(**cli_requirement())


def test_desired_state_filter(swarm: ShoalDaemon) -> None:
    swarm.docker("service", "create", "--detach", "--name", "once", "--mode", "replicated-job", "busybox", "true")
    wait_until(lambda: "Complete" in swarm.docker("service", "ps", "once").stdout, 60, "the job never completed")
    assert len(swarm.docker("service", "ps", "-q", "-f", "desired-state=COMPLETE", "once").stdout.split()) == 1
    assert swarm.docker("service", "ps", "-q", "-f", "desired-state=running", "once").stdout.split() == []
    bogus = swarm.docker("service", "ps", "-f", "desired-state=bogus", "once", check=False)
    assert bogus.returncode == 1
    assert "Error response from daemon: Invalid desired-state filter: 'bogus'" in bogus.stderr


def test_host_mode_ports_in_service_ps(swarm: ShoalDaemon) -> None:
    port = free_port()
    swarm.docker("service", "create", "--detach", "--name", "hosted", "--publish",
                 f"mode=host,published={port},target=80", "my-apache2:latest",
                 "python3", "-m", "shoal.demo.web", "--port", "80")

    def shown() -> bool:
        rows = swarm.docker("service", "ps", "--format", "{{.CurrentState}}|{{.Ports}}", "hosted").stdout
        return any(row.startswith("Running") and row.endswith(f"*:{port}->80/tcp") for row in rows.splitlines())

    wait_until(shown, 60, "the host-mode port is not shown in service ps")
    (task_id,) = swarm.docker("service", "ps", "-q", "--no-trunc", "hosted").stdout.split()
    status = swarm.docker_json("inspect", "--type", "task", task_id)[0]["Status"]
    assert status["PortStatus"] == {"Ports": [{"Protocol": "tcp", "TargetPort": 80, "PublishedPort": port,
                                               "PublishMode": "host"}]}
    swarm.docker("service", "rm", "hosted")
