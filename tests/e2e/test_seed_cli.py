"""The seed scenario of DESIGN.md through the real docker CLI: init, create with the converge display,
ls/ps/inspect, docker ps, the routing mesh answering from every replica, scale, update, rm."""

from __future__ import annotations

import json
import re
import urllib.request

import pytest

from shoal.testing.daemon import CLI_CONVERGED_NAMES_SERVICE, ShoalDaemon, cli_has, cli_requirement, wait_until

pytestmark = pytest.mark.skipif(**cli_requirement())  # without a docker CLI these checks cannot run

WEB = ["python3", "-m", "shoal.demo.web", "--port", "80"]


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode().strip())


def test_init_prints_join_command(daemon: ShoalDaemon) -> None:
    out = daemon.docker("swarm", "init", "--advertise-addr", "127.0.0.1").stdout
    assert re.search(r"Swarm initialized: current node \(\w{25}\) is now a manager", out)
    # ShoalDaemon serves the cluster port on a free loopback port: the join command names it.
    assert re.search(r"docker swarm join --token SWMTKN-1-\w{50}-\w{25} 127\.0\.0\.1:\d+\n", out)
    again = daemon.docker("swarm", "init", check=False)
    assert again.returncode == 1
    assert "This node is already part of a swarm" in again.stderr


def test_create_converges_with_progress(daemon: ShoalDaemon) -> None:
    result = daemon.docker("service", "create", "--name", "frontend", "--replicas", "5", "-p", "8080:80/tcp",
                           "my-apache2:latest", *WEB)
    service_id = result.stdout.splitlines()[0].strip()
    assert re.fullmatch(r"\w{25}", service_id)
    assert "overall progress: 5 out of 5 tasks" in result.stdout
    if cli_has(CLI_CONVERGED_NAMES_SERVICE, "create's verify line names the service"):
        assert f"verify: Service {service_id} converged" in result.stdout


def test_ls_ps_inspect(daemon: ShoalDaemon) -> None:
    ls = daemon.docker("service", "ls").stdout
    assert re.search(r"frontend\s+replicated\s+5/5\s+my-apache2:latest\s+\*:8080->80/tcp", ls)
    ps = daemon.docker("service", "ps", "frontend").stdout.splitlines()
    assert len(ps) == 6
    assert all(re.search(r"frontend\.\d\s+my-apache2:latest\s+\S+\s+Running\s+Running", line) for line in ps[1:])
    inspected = json.loads(daemon.docker("service", "inspect", "frontend").stdout)
    assert inspected[0]["Spec"]["UpdateConfig"]["Monitor"] == 5_000_000_000
    assert inspected[0]["Spec"]["Mode"]["Replicated"]["Replicas"] == 5


def test_docker_ps_shows_task_containers(daemon: ShoalDaemon) -> None:
    lines = daemon.docker("ps", "--format", "{{.Names}}").stdout.split()
    assert len(lines) == 5
    assert all(re.fullmatch(r"frontend\.[1-5]\.\w{25}", name) for name in lines)


def test_mesh_reaches_every_replica(daemon: ShoalDaemon) -> None:
    seen: set[str] = set()

    def all_answered() -> bool:
        seen.add(fetch("http://127.0.0.1:8080/"))
        return len(seen) == 5

    wait_until(all_answered, 30, f"only {len(seen)} replicas answered through the mesh: {seen}", interval=0.05)
    assert all(re.fullmatch(r"[0-9a-f]{12}", name) for name in seen)


def test_scale_down_then_update_then_rm(daemon: ShoalDaemon) -> None:
    out = daemon.docker("service", "scale", "frontend=3").stdout
    if cli_has(CLI_CONVERGED_NAMES_SERVICE, "scale's verify line names the service"):
        assert "verify: Service frontend converged" in out
    assert re.search(r"frontend\s+replicated\s+3/3", daemon.docker("service", "ls").stdout)
    out = daemon.docker("service", "update", "--env-add", "COLOR=blue", "--update-parallelism", "2",
                        "frontend").stdout
    if cli_has(CLI_CONVERGED_NAMES_SERVICE, "update's verify line names the service"):
        assert "verify: Service frontend converged" in out
    spec = json.loads(daemon.docker("service", "inspect", "frontend").stdout)[0]["Spec"]
    assert spec["TaskTemplate"]["ContainerSpec"]["Env"] == ["COLOR=blue"]
    assert spec["UpdateConfig"]["Parallelism"] == 2
    assert daemon.docker("service", "rm", "frontend").stdout.strip() == "frontend"
    gone = daemon.docker("service", "inspect", "frontend", check=False)
    assert gone.returncode == 1 and "no such service: frontend" in gone.stderr.lower()
    wait_until(lambda: daemon.docker("ps", "-q").stdout.strip() == "", 60, "task containers still running")
