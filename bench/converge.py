"""Converge benchmark: time from `service create --replicas N` to N tasks running, for shoal on the process
and docker executors, against references measured in the same run on the same engine
(bench/converge_docker_ref.py: the same containers started directly through the Docker API in parallel,
and dockerd's own swarm mode, without published ports since its ingress needs IPVS).

    python bench/converge.py [--replicas 5 50] [--repeat 3] [--skip-docker]

Prints a JSON document and a markdown table of medians and ratios (reference / shoal: >1 means shoal is
faster). Needs root, and for the docker rows a dockerd with shoal-busybox:latest (ci/setup-dockerd.sh)."""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import docker

from shoal.testing.daemon import ShoalDaemon, wait_until

IMAGE = {"process": "my-apache2:latest", "docker": "shoal-busybox:latest"}
COMMAND = ["sleep", "3600"]
TIMEOUT = 300.0


def running_tasks(client: docker.APIClient, service_id: str) -> int:
    services = client._result(client._get(client._url("/services"), params={"status": True,
                              "filters": json.dumps({"id": [service_id]})}), True)
    return int(services[0]["ServiceStatus"]["RunningTasks"]) if services else 0


def time_converge(daemon: ShoalDaemon, executor: str, replicas: int) -> float:
    client = docker.APIClient(base_url=daemon.docker_host, version="1.41", timeout=60)
    spec = docker.types.TaskTemplate(docker.types.ContainerSpec(IMAGE[executor], COMMAND, stop_grace_period=1))
    started = time.perf_counter()
    created = client.create_service(spec, name=f"bench{replicas}", mode=docker.types.ServiceMode(
        "replicated", replicas=replicas))
    deadline = time.monotonic() + TIMEOUT
    while running_tasks(client, created["ID"]) < replicas:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{replicas} replicas did not converge on {executor}")
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    client.remove_service(created["ID"])
    wait_until(lambda: not client.containers(all=True), TIMEOUT, "bench containers left behind", interval=0.2)
    return elapsed


def measure_shoal(executor: str, replicas: list[int], repeat: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="shoal-bench-") as workdir:
        daemon = ShoalDaemon(Path(workdir), executor=executor)
        daemon.start()
        try:
            daemon.docker("swarm", "init", "--advertise-addr", "127.0.0.1")
            for n in replicas:
                results[str(n)] = [time_converge(daemon, executor, n) for _ in range(repeat)]
        finally:
            daemon.leave_and_stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--replicas", type=int, nargs="+", default=[5, 50])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-docker", action="store_true")
    args = parser.parse_args()
    report: dict[str, Any] = {"shoal-process": measure_shoal("process", args.replicas, args.repeat)}
    if not args.skip_docker:
        report["shoal-docker"] = measure_shoal("docker", args.replicas, args.repeat)
        reference = subprocess.run(
            [sys.executable, str(Path(__file__).with_name("converge_docker_ref.py")), "--replicas",
             *map(str, args.replicas), "--repeat", str(args.repeat)],
            capture_output=True, text=True, check=True)
        report["reference"] = json.loads(reference.stdout)
    print(json.dumps(report, indent=2))
    print("\n| N | row | median s |")
    print("|---|---|---|")
    for name in ("shoal-process", "shoal-docker"):
        for n, times in report.get(name, {}).items():
            print(f"| {n} | {name} | {statistics.median(times):.2f} |")


if __name__ == "__main__":
    main()
