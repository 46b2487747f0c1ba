"""Global services, placement constraints with Swarm's pending explanation, resource reservations, and
rolling updates with rollback, through the real docker CLI."""

from __future__ import annotations

import json
import re

from shoal.testing.daemon import ShoalDaemon, wait_until

SLEEP = ["my-apache2:latest", "sleep", "3600"]


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
    swarm.docker("node", "update", "--label-add", "disk=ssd", "self")
    wait_until(lambda: "1/1" in swarm.docker("service", "ls", "--filter", "name=picky").stdout, 30,
               "task never scheduled after the label was added")
    swarm.docker("node", "update", "--label-rm", "disk", "self")
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
                 "--restart-delay", "500ms", *SLEEP)
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
    swarm.docker("service", "create", "--name", "back", "--update-monitor", "1s", *SLEEP)
    swarm.docker("service", "update", "--env-add", "V=2", "--update-monitor", "1s", "back")
    out = swarm.docker("service", "rollback", "back").stdout
    assert "rollback:" in out or "converged" in out
    spec = json.loads(swarm.docker("service", "inspect", "back").stdout)[0]["Spec"]
    assert "Env" not in spec["TaskTemplate"]["ContainerSpec"]
    swarm.docker("service", "rm", "back")
