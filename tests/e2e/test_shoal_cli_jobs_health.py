"""The `shoal` CLI's jobs and health-check flags against a real shoald, printed as the docker CLI
prints them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from shoal.testing.daemon import ShoalDaemon, wait_until


def shoal(daemon: ShoalDaemon, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCKER_HOST": daemon.docker_host}
    result = subprocess.run([sys.executable, "-m", "shoal.cli", *args], env=env, capture_output=True,
                            text=True, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"shoal {' '.join(args)} exited {result.returncode}: {result.stderr}")
    return result


def test_jobs_create_wait_list_scale(swarm: ShoalDaemon) -> None:
    out = shoal(swarm, "service", "create", "--name", "batch", "--mode", "replicated-job", "--replicas", "3",
                "--max-concurrent", "2", "busybox", "true").stdout
    assert "job progress: 3 out of 3 complete" in out and out.rstrip().endswith("job complete")
    assert re.search(r"batch\s+replicated job\s+0/2 \(3/3 completed\)", shoal(swarm, "service", "ls").stdout)
    ps = shoal(swarm, "service", "ps", "batch").stdout.splitlines()[1:]
    assert len(ps) == 3 and all(re.search(r"\s+Complete\s+Complete ", line) for line in ps)
    out = shoal(swarm, "service", "scale", "batch=4").stdout
    assert "batch scaled to 4" in out and "job complete" in out
    shoal(swarm, "service", "create", "--detach", "--name", "once", "--mode", "global-job", "busybox", "true")
    wait_until(lambda: "0/0 (1/1 completed)" in shoal(swarm, "service", "ls").stdout, 60, "global job never ran")
    refused = shoal(swarm, "service", "scale", "once=2", check=False)
    assert refused.returncode == 1
    assert refused.stderr.strip() == "once: scale can only be used with replicated or replicated-job mode"
    wrong = shoal(swarm, "service", "create", "--max-concurrent", "2", "busybox", "true", check=False)
    assert wrong.returncode != 0 and "max-concurrent can only be used with replicated-job mode" in wrong.stderr


def test_health_flags(swarm: ShoalDaemon) -> None:
    shoal(swarm, "service", "create", "--detach", "--name", "checked", "--health-cmd", "true",
          "--health-interval", "300ms", "--health-retries", "2", "--health-start-period", "1s",
          "my-apache2:latest", "python3", "-m", "shoal.demo.web", "--port", "80")
    spec = json.loads(shoal(swarm, "service", "inspect", "checked").stdout)[0]["Spec"]
    assert spec["TaskTemplate"]["ContainerSpec"]["Healthcheck"] == {
        "Test": ["CMD-SHELL", "true"], "Interval": 300_000_000, "StartPeriod": 1_000_000_000, "Retries": 2}
    wait_until(lambda: re.search(r"checked\s+replicated\s+1/1", shoal(swarm, "service", "ls").stdout) is not None,
               60, "the healthy service never ran")
    conflict = shoal(swarm, "service", "create", "--no-healthcheck", "--health-cmd", "true", "busybox", check=False)
    assert conflict.returncode != 0 and "--no-healthcheck conflicts with --health-* options" in conflict.stderr
