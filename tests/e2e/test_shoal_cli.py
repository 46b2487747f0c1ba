"""The `shoal` CLI against a real shoald: the same swarm workflow, printed the way the docker CLI prints it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from shoal.testing.daemon import ShoalDaemon


def shoal(daemon: ShoalDaemon, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCKER_HOST": daemon.docker_host}
    result = subprocess.run([sys.executable, "-m", "shoal.cli", *args], env=env, capture_output=True,
                            text=True, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"shoal {' '.join(args)} exited {result.returncode}: {result.stderr}")
    return result


def test_swarm_init_and_join_token(daemon: ShoalDaemon) -> None:
    out = shoal(daemon, "swarm", "init", "--advertise-addr", "127.0.0.1").stdout
    assert re.search(r"Swarm initialized: current node \(\w{25}\) is now a manager", out)
    # ShoalDaemon serves the cluster port on a free loopback port: the join command names it.
    assert re.search(r"docker swarm join --token SWMTKN-1-\w{50}-\w{25} 127\.0\.0\.1:\d+\n", out)
    token = shoal(daemon, "swarm", "join-token", "-q", "worker").stdout.strip()
    rotated = shoal(daemon, "swarm", "join-token", "--rotate", "-q", "worker").stdout.strip()
    assert token != rotated and rotated.startswith("SWMTKN-1-")
    again = shoal(daemon, "swarm", "init", check=False)
    assert again.returncode == 1
    assert again.stderr.startswith("Error response from daemon: This node is already part of a swarm")


def test_node_ls_inspect_update(daemon: ShoalDaemon) -> None:
    lines = shoal(daemon, "node", "ls").stdout.splitlines()
    assert re.match(r"ID\s+HOSTNAME\s+STATUS\s+AVAILABILITY\s+MANAGER STATUS\s+ENGINE VERSION", lines[0])
    assert re.match(r"\w{25} \*\s+\S+\s+(Ready|Unknown)\s+Active\s+Leader", lines[1])
    node_id = lines[1].split()[0]
    assert shoal(daemon, "node", "update", "--label-add", "zone=a", "self").stdout.strip() == "self"
    inspected = json.loads(shoal(daemon, "node", "inspect", node_id).stdout)
    assert inspected[0]["Spec"]["Labels"] == {"zone": "a"}


def test_service_workflow(daemon: ShoalDaemon) -> None:
    out = shoal(daemon, "service", "create", "--name", "web", "--replicas", "2", "--update-monitor", "1s",
                "my-apache2:latest", "python3", "-m", "shoal.demo.web", "--port", "80").stdout
    assert re.match(r"\w{25}\n", out)
    assert "overall progress: 2 out of 2 tasks" in out
    assert "verify: Service" in out and "converged" in out
    ls = shoal(daemon, "service", "ls").stdout
    assert re.search(r"\w{12}\s+web\s+replicated\s+2/2\s+my-apache2:latest", ls)
    ps = shoal(daemon, "service", "ps", "web").stdout.splitlines()
    assert len(ps) == 3 and all(re.search(r"web\.[12]\s+my-apache2:latest\s+\S+\s+Running\s+Running", line)
                                for line in ps[1:])
    assert "verify: Service web converged" in shoal(daemon, "service", "scale", "web=3").stdout
    out = shoal(daemon, "service", "update", "--env-add", "A=1", "web").stdout
    assert "verify: Service web converged" in out
    out = shoal(daemon, "service", "rollback", "web").stdout
    assert "converged" in out
    spec = json.loads(shoal(daemon, "service", "inspect", "web").stdout)[0]["Spec"]
    assert "Env" not in spec["TaskTemplate"]["ContainerSpec"] or spec["TaskTemplate"]["ContainerSpec"]["Env"] == []
    assert len(shoal(daemon, "ps", "-q").stdout.split()) >= 3
    assert "Swarm: active" in shoal(daemon, "info").stdout
    logs = shoal(daemon, "service", "logs", "web").stdout.splitlines()
    assert any(re.fullmatch(r"web\.[123]\.\w{12}@\S+    \| serving [0-9a-f]{12} on :80", line) for line in logs), logs
    stamped = shoal(daemon, "service", "logs", "--no-task-ids", "-t", "--tail", "1", "web").stdout.splitlines()
    assert stamped and all(re.match(r"\d{4}-\d\d-\d\dT\S+Z web\.[123]@\S+    \| ", line) for line in stamped)
    assert shoal(daemon, "service", "rm", "web").stdout.strip() == "web"
    missing = shoal(daemon, "service", "rm", "web", check=False)
    assert missing.returncode == 1
    assert missing.stderr.strip() == "Error response from daemon: service web not found"
    assert shoal(daemon, "swarm", "leave", "--force").stdout.strip() == "Node left the swarm."
    assert "Swarm: inactive" in shoal(daemon, "info").stdout
