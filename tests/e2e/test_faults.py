"""Faults seen through the real docker CLI: a task's process killed (restart policy conditions, delay and
max attempts), and shoald itself killed with -9 or stopped with SIGTERM while a service runs: the swarm
comes back from its data root, acknowledged writes included, and the running tasks are re-adopted, not
restarted, while the routing mesh keeps answering."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import subprocess
import time
import urllib.request
from typing import Any

import pytest

from shoal.testing.daemon import ShoalDaemon, cli_requirement, wait_until

pytestmark = pytest.mark.skipif(**cli_requirement())  # without a docker CLI these checks cannot run


def unused_port() -> int:
    """A published port for this run: random, free, and not in any mesh rule already on the host, so
    concurrent runs of this module (or rules a killed run left behind) do not answer in our place."""
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


WEB_PORT = unused_port()
WEB = ["python3", "-m", "shoal.demo.web", "--port", "80"]
IMAGE = "my-apache2:latest"
# Long enough that a replacement held for a 1 s restart delay would have been created and started.
QUIET_PERIOD = 3.0


def create(daemon: ShoalDaemon, name: str, *args: str) -> None:
    daemon.docker("service", "create", "--detach", "--name", name, "--restart-delay", "1s", *args)


def tasks(daemon: ShoalDaemon, service: str) -> list[dict[str, Any]]:
    """Every task of the service, history included, as `docker inspect --type task` shows them."""
    ids = daemon.docker("service", "ps", "-q", "--no-trunc", service).stdout.split()
    if not ids:
        return []
    found: list[dict[str, Any]] = daemon.docker_json("inspect", "--type", "task", *ids)
    return found


def running(daemon: ShoalDaemon, service: str) -> list[dict[str, Any]]:
    return [t for t in tasks(daemon, service) if t["DesiredState"] == "running" and t["Status"]["State"] == "running"]


def wait_running(daemon: ShoalDaemon, service: str, count: int) -> list[dict[str, Any]]:
    wait_until(lambda: len(running(daemon, service)) == count, 30, f"{service} never had {count} running tasks")
    return running(daemon, service)


def kill_task(task: dict[str, Any]) -> int:
    pid = int(task["Status"]["ContainerStatus"]["PID"])
    assert pid > 0
    os.kill(pid, signal.SIGKILL)
    return pid


def ps_lines(daemon: ShoalDaemon, service: str) -> list[str]:
    return daemon.docker("service", "ps", "--no-trunc", service).stdout.splitlines()[1:]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode().strip())


# -- a task's process dies


def test_killed_task_is_replaced_with_restart_condition_any(swarm: ShoalDaemon) -> None:
    create(swarm, "crashy", "--restart-condition", "any", IMAGE, "sleep", "3600")
    (first,) = wait_running(swarm, "crashy", 1)
    kill_task(first)

    def replaced() -> bool:
        now = running(swarm, "crashy")
        return len(now) == 1 and now[0]["ID"] != first["ID"]

    wait_until(replaced, 30, "the killed task was never replaced")
    (second,) = running(swarm, "crashy")
    assert second["Slot"] == first["Slot"]
    lines = ps_lines(swarm, "crashy")
    assert len(lines) == 2
    assert re.match(rf"{second['ID']}\s+crashy\.1\s+{IMAGE}\s+\S+\s+Running\s+Running ", lines[0])
    assert re.match(
        rf"{first['ID']}\s+\\_ crashy\.1\s+{IMAGE}\s+\S+\s+Shutdown\s+Failed .* ago\s+"
        r'"task: non-zero exit \(137\)"',
        lines[1],
    )
    failed = {t["ID"]: t for t in tasks(swarm, "crashy")}[first["ID"]]
    assert failed["Status"]["Err"] == "task: non-zero exit (137)"
    assert failed["Status"]["ContainerStatus"]["ExitCode"] == 137
    swarm.docker("service", "rm", "crashy")


def test_restart_condition_none_leaves_the_slot_failed(swarm: ShoalDaemon) -> None:
    create(swarm, "once", "--restart-condition", "none", IMAGE, "sleep", "3600")
    (only,) = wait_running(swarm, "once", 1)
    kill_task(only)
    wait_until(lambda: tasks(swarm, "once")[0]["Status"]["State"] == "failed", 30, "the killed task never failed")
    time.sleep(QUIET_PERIOD)
    after = tasks(swarm, "once")
    assert [t["ID"] for t in after] == [only["ID"]]
    assert after[0]["DesiredState"] == "shutdown"
    assert re.search(r"once\s+replicated\s+0/1", swarm.docker("service", "ls").stdout)
    swarm.docker("service", "rm", "once")


def test_on_failure_does_not_restart_a_clean_exit(swarm: ShoalDaemon) -> None:
    create(swarm, "clean", "--restart-condition", "on-failure", IMAGE, "sh", "-c", "echo done")
    wait_until(
        lambda: [t["Status"]["State"] for t in tasks(swarm, "clean")] == ["complete"], 30, "the task never completed"
    )
    time.sleep(QUIET_PERIOD)
    lines = ps_lines(swarm, "clean")
    assert len(lines) == 1
    assert re.search(r"clean\.1\s+\S+\s+\S+\s+Shutdown\s+Complete ", lines[0])
    swarm.docker("service", "rm", "clean")


def test_on_failure_restarts_at_most_max_attempts(swarm: ShoalDaemon) -> None:
    create(
        swarm, "flaky", "--restart-condition", "on-failure", "--restart-max-attempts", "2", IMAGE, "sh", "-c", "exit 3"
    )

    def failed_count() -> int:
        return sum(1 for t in tasks(swarm, "flaky") if t["Status"]["State"] == "failed")

    wait_until(lambda: failed_count() == 3, 30, "the first run and two restarts never all failed")
    time.sleep(QUIET_PERIOD)
    history = tasks(swarm, "flaky")
    assert len(history) == 3, "a third restart was made"
    assert {t["Slot"] for t in history} == {1}
    assert all(t["Status"]["Err"] == "task: non-zero exit (3)" and t["DesiredState"] == "shutdown" for t in history)
    lines = ps_lines(swarm, "flaky")
    assert sum(1 for line in lines if " \\_ flaky.1 " in line) == 2
    swarm.docker("service", "rm", "flaky")


# -- shoald itself goes away and comes back


def test_replacement_held_for_its_restart_delay_survives_a_daemon_kill(swarm: ShoalDaemon) -> None:
    swarm.docker("service", "create", "--detach", "--name", "held", "--restart-delay", "6s", IMAGE, "sleep", "3600")
    (first,) = wait_running(swarm, "held", 1)
    kill_task(first)

    def held() -> list[dict[str, Any]]:
        return [t for t in tasks(swarm, "held") if t["DesiredState"] == "ready" and t["Status"]["State"] == "ready"]

    wait_until(lambda: len(held()) == 1, 30, "no replacement was prepared and held")
    (replacement,) = held()
    swarm.kill9()
    swarm.start()
    (second,) = wait_running(swarm, "held", 1)
    assert second["ID"] == replacement["ID"], "the held replacement was itself replaced"
    history = {t["ID"]: t["Status"] for t in tasks(swarm, "held")}
    assert history.keys() == {first["ID"], second["ID"]}
    assert history[first["ID"]]["Err"] == "task: non-zero exit (137)"
    assert "Err" not in history[second["ID"]]
    swarm.docker("service", "rm", "held")


def node_id(daemon: ShoalDaemon) -> str:
    return daemon.docker("info", "--format", "{{.Swarm.NodeID}}").stdout.strip()


def join_tokens(daemon: ShoalDaemon) -> tuple[str, str]:
    return (
        daemon.docker("swarm", "join-token", "-q", "worker").stdout.strip(),
        daemon.docker("swarm", "join-token", "-q", "manager").stdout.strip(),
    )


def mesh_answers(count: int) -> set[str]:
    """Hostnames answering on the published port until `count` distinct ones have been seen."""
    seen: set[str] = set()

    def enough() -> bool:
        try:
            seen.add(fetch(f"http://127.0.0.1:{WEB_PORT}/"))
        except OSError:  # a replica that is running but not listening yet, or rules being applied
            return False
        return len(seen) >= count

    wait_until(enough, 30, f"only {seen} answered through the mesh", interval=0.05)
    return seen


@pytest.fixture(scope="module")
def web(swarm: ShoalDaemon) -> str:
    swarm.docker(
        "service", "create", "--detach", "--name", "web", "--replicas", "3", "-p", f"{WEB_PORT}:80", IMAGE, *WEB
    )
    wait_running(swarm, "web", 3)
    return "web"


def running_by_id(daemon: ShoalDaemon, service: str) -> dict[str, dict[str, Any]]:
    return {t["ID"]: t for t in running(daemon, service)}


@pytest.mark.parametrize("how", ["kill9", "sigterm"])
def test_daemon_restart_keeps_swarm_and_readopts_tasks(swarm: ShoalDaemon, web: str, how: str) -> None:
    before_tasks = running_by_id(swarm, web)
    assert len(before_tasks) == 3
    pids = {task_id: t["Status"]["ContainerStatus"]["PID"] for task_id, t in before_tasks.items()}
    hostnames = {t["Status"]["ContainerStatus"]["ContainerID"][:12] for t in before_tasks.values()}
    assert mesh_answers(3) == hostnames
    tokens = join_tokens(swarm)
    cluster = swarm.docker_json("info", "--format", "{{json .Swarm.Cluster}}")
    me = node_id(swarm)

    # acknowledged writes: a service update (read back before the stop) and a node update right before it
    swarm.docker("service", "update", "--detach", "--label-add", f"acked-{how}=yes", web)
    service_before = swarm.docker_json("service", "inspect", web)[0]
    assert service_before["Spec"]["Labels"][f"acked-{how}"] == "yes"
    swarm.docker("node", "update", "--label-add", f"acked-{how}=yes", me)
    if how == "kill9":
        swarm.kill9()
    else:
        swarm.stop()

    assert all(alive(pid) for pid in pids.values()), "task processes died with shoald"
    assert mesh_answers(3) == hostnames, "the mesh stopped answering while shoald was down"

    swarm.start()
    assert node_id(swarm) == me
    assert swarm.docker_json("info", "--format", "{{json .Swarm.Cluster}}")["ID"] == cluster["ID"]
    assert join_tokens(swarm) == tokens
    service_after = swarm.docker_json("service", "inspect", web)[0]
    for key in ("ID", "Version", "Spec", "CreatedAt", "UpdatedAt", "Endpoint"):
        assert service_after[key] == service_before[key], key
    node = swarm.docker_json("node", "inspect", me)[0]
    assert node["Spec"]["Labels"][f"acked-{how}"] == "yes"
    wait_until(
        lambda: swarm.docker_json("node", "inspect", me)[0]["Status"]["State"] == "ready",
        30,
        "the node never came back ready",
    )

    assert mesh_answers(3) == hostnames
    after_tasks = running_by_id(swarm, web)
    assert after_tasks.keys() == before_tasks.keys(), "tasks were replaced"
    for task_id, task in after_tasks.items():
        assert task["Status"]["ContainerStatus"]["PID"] == pids[task_id]
        assert (
            task["Status"]["ContainerStatus"]["ContainerID"]
            == before_tasks[task_id]["Status"]["ContainerStatus"]["ContainerID"]
        )
        assert task["Status"]["Timestamp"] == before_tasks[task_id]["Status"]["Timestamp"], (
            "the re-adopted task was reported as started again"
        )
    assert len(tasks(swarm, web)) == 3, "extra tasks were created"
    assert all(alive(pid) for pid in pids.values())
    ls = swarm.docker("service", "ls").stdout
    assert re.search(rf"{web}\s+replicated\s+3/3\s+{IMAGE}\s+\*:{WEB_PORT}->80/tcp", ls)
    names = json.loads("[" + ",".join(swarm.docker("ps", "--format", "{{json .Names}}").stdout.split()) + "]")
    assert sorted(n.rsplit(".", 1)[1] for n in names if n.startswith(f"{web}.")) == sorted(before_tasks)
    # the re-adopted tasks are still reachable: exec into them, and their logs from before are there
    for task in after_tasks.values():
        name = f"{web}.{task['Slot']}.{task['ID']}"
        assert (
            swarm.docker("exec", name, "hostname").stdout.strip()
            == task["Status"]["ContainerStatus"]["ContainerID"][:12]
        )
    started = re.findall(r"\| serving ([0-9a-f]{12}) on :80$", swarm.docker("service", "logs", web).stdout, re.M)
    assert sorted(started) == sorted(hostnames)


def test_kill_while_a_service_converges(swarm: ShoalDaemon) -> None:
    swarm.docker("service", "create", "--detach", "--name", "midway", "--replicas", "4", IMAGE, "sleep", "3600")
    wait_until(lambda: len(tasks(swarm, "midway")) == 4, 30, "the tasks were never created")
    swarm.kill9()  # tasks are somewhere between assigned and running
    swarm.start()
    settled = wait_running(swarm, "midway", 4)
    assert sorted(t["Slot"] for t in settled) == [1, 2, 3, 4]
    assert len(tasks(swarm, "midway")) == 4, "a task was lost or failed in the kill and replaced"
    containers = swarm.docker("ps", "-q", "--no-trunc", "--filter", "label=com.docker.swarm.service.name=midway")
    assert sorted(containers.stdout.split()) == sorted(t["Status"]["ContainerStatus"]["ContainerID"] for t in settled)
    swarm.docker("service", "rm", "midway")


def test_update_acknowledged_before_a_kill_completes_after_restart(swarm: ShoalDaemon) -> None:
    swarm.docker("service", "create", "--detach", "--name", "upd", "--replicas", "2",
                 "--stop-grace-period", "1s", IMAGE, "sleep", "3600")  # sleep as pid 1 ignores SIGTERM
    old = {t["ID"] for t in wait_running(swarm, "upd", 2)}
    swarm.docker("service", "update", "--detach", "--env-add", "COLOR=red", "--update-monitor", "1s", "upd")
    swarm.kill9()
    swarm.start()

    def updated() -> bool:
        now = running(swarm, "upd")
        service = swarm.docker_json("service", "inspect", "upd")[0]
        return (
            len(now) == 2
            and not old & {t["ID"] for t in now}
            and all(t["Spec"]["ContainerSpec"].get("Env") == ["COLOR=red"] for t in now)
            and (service.get("UpdateStatus") or {}).get("State") == "completed"
        )

    wait_until(updated, 60, "the update acknowledged before the kill never completed")
    for task in running(swarm, "upd"):
        name = f"upd.{task['Slot']}.{task['ID']}"
        assert swarm.docker("exec", name, "sh", "-c", "echo $COLOR").stdout == "red\n"
    swarm.docker("service", "rm", "upd")
