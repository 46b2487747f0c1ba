"""Global services, placement constraints with Swarm's pending explanation, resource reservations, and
rolling updates with rollback, through the real docker CLI."""

from __future__ import annotations

import json
import re

import pytest

from shoal.testing.daemon import ShoalDaemon, cli_requirement, wait_until

pytestmark = pytest.mark.skipif(**cli_requirement())  # without a docker CLI these checks cannot run

SLEEP = ["my-apache2:latest", "sleep", "3600"]
# sleep ignores SIGTERM as pid 1: tests that replace tasks need not wait out the default 10 s grace
QUICK_STOP = ["--stop-grace-period", "1s"]


def test_global_service_runs_one_task_per_node(swarm: ShoalDaemon) -> None:
    out = swarm.docker("service", "create", "--name", "everywhere", "--mode", "global", "--update-monitor", "1s",
                       *SLEEP).stdout
    assert "converged" in out
    ls = swarm.docker("service", "ls").stdout
    assert re.search(r"everywhere\s+global\s+1/1", ls)
    ps = swarm.docker("service", "ps", "everywhere").stdout.splitlines()
    node_id = swarm.docker_json("info", "--format", "{{json .Swarm.NodeID}}")
    assert re.search(rf"everywhere\.{node_id}\s", ps[1])
    swarm.docker("service", "rm", "everywhere")


def test_unsatisfiable_constraint_stays_pending_with_explanation(swarm: ShoalDaemon) -> None:
    swarm.docker("service", "create", "--detach", "--name", "picky", "--constraint", "node.labels.disk==ssd",
                 *SLEEP)

    def explained() -> bool:
        rows = swarm.docker("service", "ps", "picky", "--no-trunc", "--format", "{{json .}}").stdout.splitlines()
        return bool(rows) and "no suitable node" in json.loads(rows[0])["Error"]

    wait_until(explained, 20, "no pending explanation")
    row = json.loads(swarm.docker("service", "ps", "picky", "--no-trunc", "--format", "{{json .}}").stdout
                     .splitlines()[0])
    assert row["CurrentState"].startswith("Pending")
    assert "scheduling constraints not satisfied on 1 node" in row["Error"]
    node_id = swarm.docker("info", "--format", "{{.Swarm.NodeID}}").stdout.strip()
    swarm.docker("node", "update", "--label-add", "disk=ssd", node_id)
    wait_until(lambda: "1/1" in swarm.docker("service", "ls", "--filter", "name=picky").stdout, 30,
               "task never scheduled after the label was added")
    swarm.docker("node", "update", "--label-rm", "disk", node_id)
    swarm.docker("service", "rm", "picky")


def test_reservation_larger_than_node_is_explained(swarm: ShoalDaemon) -> None:
    swarm.docker("service", "create", "--detach", "--name", "hungry", "--reserve-memory", "100000g", *SLEEP)

    def explained() -> bool:
        rows = swarm.docker("service", "ps", "hungry", "--no-trunc", "--format", "{{json .}}").stdout.splitlines()
        return bool(rows) and "insufficient resources on 1 node" in json.loads(rows[0])["Error"]

    wait_until(explained, 20, "no resource explanation")
    swarm.docker("service", "rm", "hungry")


def test_max_replicas_per_node(swarm: ShoalDaemon) -> None:
    swarm.docker("service", "create", "--detach", "--name", "spread", "--replicas", "3",
                 "--replicas-max-per-node", "2", *SLEEP)
    wait_until(lambda: re.search(r"spread\s+replicated\s+2/3", swarm.docker("service", "ls").stdout) is not None,
               30, "two of three never ran")
    swarm.docker("service", "rm", "spread")


def test_failed_update_rolls_back(swarm: ShoalDaemon) -> None:
    swarm.docker("service", "create", "--name", "roll", "--replicas", "2", "--update-monitor", "2s",
                 "--restart-delay", "500ms", *QUICK_STOP, *SLEEP)
    before = json.loads(swarm.docker("service", "inspect", "roll").stdout)[0]["Spec"]
    result = swarm.docker("service", "update", "--args", "sh -c 'exit 1'", "--update-failure-action", "rollback",
                          "--update-monitor", "2s", "roll", check=False)
    assert "rollback" in (result.stdout + result.stderr)
    wait_until(lambda: json.loads(swarm.docker("service", "inspect", "roll").stdout)[0]
               .get("UpdateStatus", {}).get("State") == "rollback_completed", 60, "rollback never completed")
    after = json.loads(swarm.docker("service", "inspect", "roll").stdout)[0]["Spec"]
    assert after["TaskTemplate"]["ContainerSpec"]["Args"] == before["TaskTemplate"]["ContainerSpec"]["Args"]
    swarm.docker("service", "rm", "roll")


def test_manual_rollback(swarm: ShoalDaemon) -> None:
    swarm.docker("service", "create", "--name", "back", "--update-monitor", "1s", *QUICK_STOP, *SLEEP)
    swarm.docker("service", "update", "--env-add", "V=2", "--update-monitor", "1s", "back")
    out = swarm.docker("service", "rollback", "back").stdout
    assert "rollback:" in out or "converged" in out
    spec = json.loads(swarm.docker("service", "inspect", "back").stdout)[0]["Spec"]
    assert "Env" not in spec["TaskTemplate"]["ContainerSpec"]
    swarm.docker("service", "rm", "back")


UDP_ECHO = ["python3", "-c",
            "import socket,os;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(('0.0.0.0',53));"
            "[s.sendto(os.uname().nodename.encode(),a) for _,a in iter(lambda:s.recvfrom(64),None)]"]


def udp_ask(port: int) -> str:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        sock.sendto(b"?", ("127.0.0.1", port))
        return sock.recvfrom(64)[0].decode()


def test_udp_is_published_through_the_mesh(swarm: ShoalDaemon) -> None:
    swarm.docker("service", "create", "--name", "dns", "--replicas", "2", "-p", "9553:53/udp",
                 "--update-monitor", "1s", "my-apache2:latest", *UDP_ECHO)
    seen: set[str] = set()

    def both() -> bool:
        try:
            seen.add(udp_ask(9553))
        except OSError:
            return False
        return len(seen) == 2

    wait_until(both, 30, f"UDP answers only from {seen}", interval=0.05)
    swarm.docker("service", "rm", "dns")


def test_host_mode_port_reaches_the_local_task(swarm: ShoalDaemon) -> None:
    swarm.docker("service", "create", "--name", "hosted", "--publish", "mode=host,published=9555,target=80",
                 "--update-monitor", "1s", "my-apache2:latest", "python3", "-m", "shoal.demo.web", "--port", "80")
    ls = swarm.docker("service", "ls", "--filter", "name=hosted").stdout
    assert "*:9555" not in ls  # the CLI lists only ingress ports

    def answers() -> bool:
        import urllib.request

        try:
            with urllib.request.urlopen("http://127.0.0.1:9555/", timeout=2) as response:
                return bool(re.fullmatch(r"[0-9a-f]{12}\n", response.read().decode()))
        except OSError:
            return False

    wait_until(answers, 30, "the host-mode port never answered")
    swarm.docker("service", "rm", "hosted")


def test_task_history_limit_bounds_service_ps(swarm: ShoalDaemon) -> None:
    swarm.docker("swarm", "update", "--task-history-limit", "2")
    swarm.docker("service", "create", "--detach", "--name", "crashy", "--restart-delay", "100ms",
                 "my-apache2:latest", "sh", "-c", "exit 1")

    def history() -> int:
        return len(swarm.docker("service", "ps", "-q", "crashy").stdout.split())

    def failed_twice() -> bool:
        stopped = swarm.docker("service", "ps", "-q", "--filter", "desired-state=shutdown", "crashy").stdout
        return len(stopped.split()) >= 2

    wait_until(failed_twice, 30, "the task never failed twice")
    for _ in range(20):  # while it keeps crashing: the limit, plus a replacement not yet reaped
        assert history() <= 3
    swarm.docker("service", "rm", "crashy")
    swarm.docker("swarm", "update", "--task-history-limit", "5")


def test_self_names_no_node_for_update_demote_or_rm(swarm: ShoalDaemon) -> None:
    """The docker CLI resolves `self` only for inspect and ps; the daemon knows no node called self."""
    for command in (["update", "--label-add", "a=b"], ["demote"], ["rm"]):
        refused = swarm.docker("node", *command, "self", check=False)
        assert refused.returncode != 0
        assert "node self not found" in refused.stderr
    assert swarm.docker("node", "inspect", "self", "--format", "{{.Spec.Labels}}").stdout.strip() == "map[]"
