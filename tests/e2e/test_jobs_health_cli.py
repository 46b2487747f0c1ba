"""Jobs and health checks through the real docker CLI on a real shoald (process executor): a replicated
job completes its total with at most MaxConcurrent tasks at once (read from the containers' own start
and finish times) and runs again on `service update`; a service whose health check fails is never
counted running, gets no mesh traffic and has its tasks replaced with Swarm's error; a healthy one is
served once healthy and `docker ps` says so."""

from __future__ import annotations

import json
import random
import socket
import subprocess
import urllib.request
from datetime import datetime
from typing import Any

import pytest

from shoal.testing.daemon import ShoalDaemon, cli_requirement, wait_until

pytestmark = pytest.mark.skipif(**cli_requirement())

WEB = ["python3", "-m", "shoal.demo.web", "--port", "80"]
# Swarm's cause; prefixed with "task: non-zero exit (N): " when the stopped workload exits non-zero
# (the demo web server exits 0 on SIGTERM)
UNHEALTHY_ERR = "dockerexec: unhealthy container"


def unused_port() -> int:
    """A free published port no mesh rule on the host uses yet."""
    nat = subprocess.run(["iptables-save", "-t", "nat"], capture_output=True, text=True, check=False).stdout
    rng = random.SystemRandom()
    while True:
        port = rng.randrange(20000, 30000)
        if f"--dport {port} " in nat:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("0.0.0.0", port))
            except OSError:
                continue
        return port


def tasks(daemon: ShoalDaemon, service: str) -> list[dict[str, Any]]:
    ids = daemon.docker("service", "ps", "-q", "--no-trunc", service).stdout.split()
    found: list[dict[str, Any]] = daemon.docker_json("inspect", "--type", "task", *ids) if ids else []
    return found


def service_status(daemon: ShoalDaemon, name: str) -> dict[str, int]:
    """ServiceStatus as `docker service ls` reads it (GET /services?status=true)."""
    rows = daemon.docker("service", "ls", "--filter", f"name={name}", "--format", "{{json .}}").stdout.split("\n")
    assert rows and rows[0], f"service {name} not listed"
    found = json.loads(rows[0])
    return {"replicas": found["Replicas"], "mode": found["Mode"]}


def replicas_column(daemon: ShoalDaemon, name: str) -> str:
    return str(service_status(daemon, name)["replicas"])


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def most_at_once(intervals: list[tuple[datetime, datetime]]) -> int:
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


def answered(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def test_replicated_job_completes_six_times_two_at_once_and_reruns_on_update(swarm: ShoalDaemon) -> None:
    swarm.docker("service", "create", "--detach", "--name", "job6", "--mode", "replicated-job", "--replicas", "6",
                 "--max-concurrent", "2", "busybox", "sleep", "0.5")
    wait_until(lambda: replicas_column(swarm, "job6") == "0/2 (6/6 completed)", 60,
               "the job never completed six times")
    assert service_status(swarm, "job6")["mode"] == "replicated job"
    done = tasks(swarm, "job6")
    assert [(t["DesiredState"], t["Status"]["State"]) for t in done] == [("complete", "complete")] * 6
    assert sorted(t["Slot"] for t in done) == [0, 1, 2, 3, 4, 5]
    containers = swarm.docker_json("inspect", "--type", "container",
                                   *[t["Status"]["ContainerStatus"]["ContainerID"] for t in done])
    intervals = [(_time(c["State"]["StartedAt"]), _time(c["State"]["FinishedAt"])) for c in containers]
    assert most_at_once(intervals) == 2
    table = swarm.docker("service", "ps", "job6").stdout
    assert table.count("Complete") >= 12  # DESIRED STATE and CURRENT STATE of six tasks
    # an update runs the job again (JobStatus.JobIteration bumped): six more completions
    before = swarm.docker_json("service", "inspect", "job6")[0]["JobStatus"]
    swarm.docker("service", "update", "--detach", "--force", "job6")
    after = swarm.docker_json("service", "inspect", "job6")[0]["JobStatus"]
    assert after["JobIteration"].get("Index", 0) == before["JobIteration"].get("Index", 0) + 1
    wait_until(lambda: len([t for t in tasks(swarm, "job6") if t["Status"]["State"] == "complete"]) == 12, 60,
               "the job did not run again after the update")
    assert replicas_column(swarm, "job6") == "0/2 (6/6 completed)"


def test_cli_waits_for_jobs_to_complete_and_global_job_runs_once_per_node(swarm: ShoalDaemon) -> None:
    """Without --detach the CLI follows a job's progress (slots 0..N-1, JobIteration) to the end."""
    created = swarm.docker("service", "create", "--name", "jobwait", "--mode", "replicated-job", "--replicas", "3",
                           "--max-concurrent", "3", "busybox", "true", timeout=60)
    assert "job complete" in created.stdout
    created = swarm.docker("service", "create", "--name", "everywhere", "--mode", "global-job", "busybox", "true",
                           timeout=60)
    assert "job complete" in created.stdout
    assert replicas_column(swarm, "everywhere") == "0/0 (1/1 completed)"
    assert service_status(swarm, "everywhere")["mode"] == "global job"
    ((state, desired),) = {(t["Status"]["State"], t["DesiredState"]) for t in tasks(swarm, "everywhere")}
    assert (state, desired) == ("complete", "complete")


def test_failed_job_task_restarts_in_its_slot_until_it_completes(swarm: ShoalDaemon, tmp_path: Any) -> None:
    marker = tmp_path / "failed-once"
    script = f"test -e {marker} || {{ touch {marker}; exit 3; }}"
    swarm.docker("service", "create", "--detach", "--name", "retry", "--mode", "replicated-job",
                 "--restart-delay", "100ms", "busybox", "sh", "-c", script)
    wait_until(lambda: replicas_column(swarm, "retry") == "0/1 (1/1 completed)", 60, "the job never completed")
    history = sorted(tasks(swarm, "retry"), key=lambda t: t["CreatedAt"])
    assert [(t["Slot"], t["Status"]["State"]) for t in history] == [(0, "failed"), (0, "complete")]
    assert history[0]["Status"]["Err"] == "task: non-zero exit (3)"
    # with no attempts left the slot is given up: no endless retries
    swarm.docker("service", "create", "--detach", "--name", "hopeless", "--mode", "replicated-job",
                 "--restart-delay", "100ms", "--restart-max-attempts", "1", "busybox", "sh", "-c", "exit 4")
    wait_until(lambda: len(tasks(swarm, "hopeless")) == 2 and all(t["Status"]["State"] == "failed"
                                                                 for t in tasks(swarm, "hopeless")), 60,
               "the failing job was not retried once")
    assert replicas_column(swarm, "hopeless") == "0/1 (0/1 completed)"


def test_job_with_update_config_refused_as_swarm(swarm: ShoalDaemon) -> None:
    spec = {"Name": "nojob", "Mode": {"ReplicatedJob": {"TotalCompletions": 1}}, "UpdateConfig": {"Parallelism": 1},
            "TaskTemplate": {"ContainerSpec": {"Image": "busybox", "Args": ["true"]}}}
    status = raw_post(swarm, "/v1.41/services/create", spec)
    assert status[0] == 400
    assert "Jobs may not have an update config" in status[1]
    assert "nojob" not in swarm.docker("service", "ls").stdout


def raw_post(daemon: ShoalDaemon, path: str, body: dict[str, Any]) -> tuple[int, str]:
    data = json.dumps(body).encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(30)
        conn.connect(str(daemon.socket_path))
        conn.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode() + data)
        reply = b""
        while chunk := conn.recv(65536):
            reply += chunk
    head, _, payload = reply.partition(b"\r\n\r\n")
    return int(head.split()[1]), payload.decode(errors="replace")


def test_failing_health_check_never_counts_running_gets_no_traffic_and_is_replaced(swarm: ShoalDaemon) -> None:
    port = unused_port()
    swarm.docker("service", "create", "--detach", "--name", "sick", "-p", f"{port}:80",
                 "--health-cmd", "false", "--health-interval", "300ms", "--health-retries", "3",
                 "--restart-delay", "200ms", "my-apache2:latest", *WEB)
    seen_running = False
    served = False

    def replaced_twice() -> bool:
        nonlocal seen_running, served
        seen_running |= not replicas_column(swarm, "sick").startswith("0/")
        served |= answered(port)
        failed = [t for t in tasks(swarm, "sick") if t["Status"]["State"] == "failed"]
        return len(failed) >= 2

    wait_until(replaced_twice, 60, "the unhealthy task was never failed and replaced")
    assert not seen_running, "a task that was never healthy counted as running"
    assert not served, "the mesh sent traffic to a task that was not healthy"
    failed = [t for t in tasks(swarm, "sick") if t["Status"]["State"] == "failed"]
    assert failed[0]["Status"]["Err"].endswith(UNHEALTHY_ERR)
    swarm.docker("service", "rm", "sick")


def test_healthy_service_is_served_once_healthy_and_ps_says_so(swarm: ShoalDaemon) -> None:
    port = unused_port()
    swarm.docker("service", "create", "--detach", "--name", "well", "-p", f"{port}:80",
                 "--health-cmd", "true", "--health-interval", "300ms", "my-apache2:latest", *WEB)
    wait_until(lambda: replicas_column(swarm, "well") == "1/1", 60, "the healthy service never ran")
    wait_until(lambda: answered(port), 30, "the healthy task is not served by the mesh")


def test_docker_ps_and_inspect_show_health(swarm: ShoalDaemon) -> None:
    rows = swarm.docker("ps", "--filter", "name=well", "--format", "{{.Status}}").stdout
    assert "(healthy)" in rows
    (container,) = swarm.docker("ps", "-q", "--filter", "name=well").stdout.split()
    health = swarm.docker_json("inspect", container)[0]["State"]["Health"]
    assert health["Status"] == "healthy" and health["FailingStreak"] == 0 and health["Log"][-1]["ExitCode"] == 0
    swarm.docker("service", "rm", "well")
