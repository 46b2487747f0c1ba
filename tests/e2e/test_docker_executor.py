"""The seed scenario on the docker executor: shoald drives a real dockerd (started by ci/setup-dockerd.sh)
and its tasks are containers of the busybox image built there."""

from __future__ import annotations

import json
import os
import re
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.testing.daemon import (
    CLI_CONVERGED_NAMES_SERVICE,
    DOCKER_CLI,
    ShoalDaemon,
    cli_has,
    cli_requirement,
    wait_until,
)

IMAGE = "shoal-busybox:latest"
WEB = ["sh", "-c", "hostname > /www/index.html && exec httpd -f -p 80 -h /www"]


def dockerd_has_image() -> bool:
    if DOCKER_CLI is None:
        return False
    try:
        result = subprocess.run([DOCKER_CLI, "-H", "unix:///var/run/docker.sock", "image", "inspect", IMAGE],
                                capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(**cli_requirement()),
    pytest.mark.skipif(not dockerd_has_image(), reason="needs dockerd with shoal-busybox:latest (ci/setup-dockerd.sh)"),
]


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShoalDaemon]:
    shoald = ShoalDaemon(Path(tmp_path_factory.mktemp("shoald-docker")), executor="docker")
    shoald.start()
    try:
        shoald.docker("swarm", "init", "--advertise-addr", "127.0.0.1")
        yield shoald
    finally:
        shoald.leave_and_stop()


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode().strip())


def test_create_converges_on_docker(daemon: ShoalDaemon) -> None:
    out = daemon.docker("service", "create", "--name", "frontend", "--replicas", "3", "-p", "8081:80/tcp",
                        "--stop-grace-period", "1s", IMAGE, *WEB).stdout
    assert "overall progress: 3 out of 3 tasks" in out
    if cli_has(CLI_CONVERGED_NAMES_SERVICE, "create's verify line names the service"):
        assert re.search(r"verify: Service \w{25} converged", out)


def test_containers_are_real_docker_containers(daemon: ShoalDaemon) -> None:
    names = daemon.docker("ps", "--format", "{{.Names}}").stdout.split()
    assert len(names) == 3 and all(re.fullmatch(r"frontend\.[1-3]\.\w{25}", n) for n in names)
    assert DOCKER_CLI is not None
    engine = subprocess.run([DOCKER_CLI, "-H", "unix:///var/run/docker.sock", "inspect", names[0]],
                            capture_output=True, text=True, check=True)
    container = json.loads(engine.stdout)[0]
    assert container["Config"]["Labels"]["com.docker.swarm.service.name"] == "frontend"
    assert container["HostConfig"]["RestartPolicy"]["Name"] == "no"


def test_mesh_reaches_every_container(daemon: ShoalDaemon) -> None:
    seen: set[str] = set()

    def all_answered() -> bool:
        seen.add(fetch("http://127.0.0.1:8081/"))
        return len(seen) == 3

    wait_until(all_answered, 30, f"only {seen} answered", interval=0.05)


def test_scale_update_logs_rm(daemon: ShoalDaemon) -> None:
    out = daemon.docker("service", "scale", "frontend=2").stdout
    if cli_has(CLI_CONVERGED_NAMES_SERVICE, "scale's verify line names the service"):
        assert "verify: Service frontend converged" in out
    out = daemon.docker("service", "update", "--env-add", "COLOR=red", "--update-monitor", "1s", "frontend").stdout
    if cli_has(CLI_CONVERGED_NAMES_SERVICE, "update's verify line names the service"):
        assert "verify: Service frontend converged" in out
    daemon.docker("service", "create", "--detach", "--name", "talker", "--restart-condition", "none",
                  "--stop-grace-period", "1s", IMAGE,
                  "sh", "-c", "echo hello-from-docker; sleep 3600")
    wait_until(lambda: "hello-from-docker" in daemon.docker("service", "logs", "talker").stdout, 30, "no logs")
    stamped = daemon.docker("service", "logs", "--tail", "1", "--timestamps", "--no-task-ids", "talker").stdout
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+Z talker\.1@\S+\s+\| hello-from-docker\n", stamped), stamped
    follower = subprocess.Popen([DOCKER_CLI, "service", "logs", "-f", "talker"], stdout=subprocess.PIPE, text=True,
                                env={**os.environ, "DOCKER_HOST": daemon.docker_host})
    try:
        assert follower.stdout is not None
        assert "hello-from-docker" in follower.stdout.readline()
    finally:
        follower.terminate()
        follower.wait(10)
    daemon.docker("service", "rm", "frontend", "talker")
    wait_until(lambda: daemon.docker("ps", "-q").stdout.strip() == "", 60, "containers left")
