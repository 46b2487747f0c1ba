"""Cluster benchmark (issue 7): shoal next to real Swarm on the same kind of hosts, in the same run.

Two five-host clusters (3 managers, 2 workers; bench/cluster_sides.py), one of shoalds with the oci
executor and one of dockerd 20.10 engines in swarm mode, each host a network namespace of its own, the
same busybox image on every node, the same client (docker-py's APIClient at API 1.41) and the same code
measuring both; the sides alternate inside each round (which goes first alternates by round), so the
i-th runs of each form a pair. Every condition is polled every cluster_sides.POLL_S seconds.

- failover: kill -9 of the leader's daemon → the first write acknowledged by a surviving manager (a
  label added to an idle service; each attempt through the next surviving manager, given up after
  PROBE_TIMEOUT_S). The killed daemon is started again and the cluster waited on until whole.
- dead worker: a 10-replica service spread over the five nodes; a worker holding some of its tasks is
  cut off (its link goes down) → the node Down (as a manager shows it) → 10 tasks running elsewhere
  (desired and observed running, none on the cut node). Then the link comes back and the service goes.
- converge: `service create --replicas 20` → 20 running (ServiceStatus.RunningTasks), then scale to 40 →
  40 running; each timed from its request.

Each side runs at its own default dispatcher heartbeat (`--rounds` rounds of everything), then both at
the same one (`--same-heartbeat`, dead worker only: the heartbeat decides nothing else measured here).

    python bench/cluster_bench.py [--rounds 3] [--same-heartbeat 1] [--only failover dead-worker converge]
                                  [--json FILE]

Needs root, dockerd (Debian's docker.io), runc or crun and busybox-static. Prints the ratio tables
(Swarm / shoal: above 1 means shoal is faster), the heartbeats in force and the load average."""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from typing import Any

import docker
from cluster_sides import (
    COMMAND,
    IMAGE,
    POLL_S,
    ClusterSide,
    Member,
    both_sides,
    poll_until,
    quietly,
)
from harness import Comparison, LoadSampler, ratio_table, running_tasks

CANARY = "bench-canary"
DEAD_WORKER_REPLICAS = 10
CONVERGE = (20, 40)
MEASURE_TIMEOUT_S = 180.0


def service_spec(replicas: int) -> dict[str, Any]:
    template = docker.types.TaskTemplate(docker.types.ContainerSpec(IMAGE, COMMAND, stop_grace_period=1))
    return {"task_template": template, "mode": docker.types.ServiceMode("replicated", replicas=replicas)}


def scale(client: docker.APIClient, service_id: str, replicas: int) -> None:
    """What `docker service scale` sends: the spec as stored (read without defaults) with the new count.
    (docker-py's update_service reads the spec with Swarm's defaults filled in and sends that back; the
    task template then differs from the stored one, so both Swarm and shoal roll every task over as
    well, and "all running" depended on when a poll fell between two task replacements.)"""
    current = client.inspect_service(service_id)
    spec = current["Spec"]
    spec["Mode"] = {"Replicated": {"Replicas": replicas}}
    url = client._url("/services/{0}/update", service_id)
    reply = client._post_json(url, data=spec, params={"version": current["Version"]["Index"]})
    client._raise_for_status(reply)


def remove_and_wait(side: ClusterSide, service_id: str) -> None:
    """Remove the service and wait until no node holds a container of it, so runs start clean."""
    side.live_leader().client.remove_service(service_id)
    label = f"com.docker.swarm.service.id={service_id}"
    for member in side.members:
        poll_until(lambda m=member: not m.client.containers(all=True, filters={"label": label}),
                   f"{side.label}: containers of {service_id} gone from {member.name}", interval=0.2)


# --- failover -------------------------------------------------------------------------------------------


def write_once(via: Member, step: str) -> None:
    service = via.probe.inspect_service(CANARY)
    labels = {**(service["Spec"].get("Labels") or {}), step: "1"}
    via.probe.update_service(service["ID"], service["Version"]["Index"], labels=labels, fetch_current_spec=True)


def failover_once(side: ClusterSide, step: str) -> float:
    leader = side.live_leader()
    survivors = [m for m in side.managers if m is not leader]
    started = time.perf_counter()
    side.kill9(leader)
    attempt = 0
    while True:
        via = survivors[attempt % len(survivors)]
        attempt += 1
        if quietly(lambda via=via: write_once(via, step) is None):
            elapsed = time.perf_counter() - started
            break
        if time.perf_counter() - started > MEASURE_TIMEOUT_S:
            raise TimeoutError(f"{side.label}: no write accepted after killing the leader")
        time.sleep(POLL_S)
    side.restart(leader)
    side.wait_healthy()
    return elapsed


# --- dead worker ----------------------------------------------------------------------------------------


def tasks_running_elsewhere(via: Member, service_id: str, node_id: str) -> int:
    tasks = via.probe.tasks(filters={"service": service_id, "desired-state": "running"})
    return sum(1 for t in tasks if t["Status"]["State"] == "running" and t.get("NodeID") != node_id)


def dead_worker_once(side: ClusterSide, name: str) -> tuple[float, float]:
    """(seconds to Down, seconds to every task running elsewhere) after cutting a worker off."""
    leader = side.live_leader()
    created = leader.client.create_service(name=name, **service_spec(DEAD_WORKER_REPLICAS))["ID"]
    poll_until(lambda: running_tasks(leader.client, created) >= DEAD_WORKER_REPLICAS, f"{side.label}: {name} running")
    placed = leader.client.tasks(filters={"service": created, "desired-state": "running"})
    worker = next(w for w in side.workers if any(t.get("NodeID") == side.node_id(leader, w.name) for t in placed))
    worker_id = side.node_id(leader, worker.name)

    def node_down() -> bool:
        return str(leader.probe.inspect_node(worker_id)["Status"]["State"]) == "down"

    down_at: float | None = None
    started = time.perf_counter()
    side.network.isolate(worker.host)
    try:
        while True:
            if down_at is None and quietly(node_down):
                down_at = time.perf_counter() - started
            if quietly(lambda: tasks_running_elsewhere(leader, created, worker_id) >= DEAD_WORKER_REPLICAS):
                replaced_at = time.perf_counter() - started
                break
            if time.perf_counter() - started > MEASURE_TIMEOUT_S:
                raise TimeoutError(f"{side.label}: the cut-off worker's tasks never ran elsewhere")
            time.sleep(POLL_S)
        if down_at is None:  # replaced before the Down was seen between two polls
            poll_until(node_down, f"{side.label}: {worker.name} down")
            down_at = time.perf_counter() - started
    finally:
        side.network.reconnect(worker.host)
    side.wait_healthy()
    remove_and_wait(side, created)
    return down_at, replaced_at


# --- converge -------------------------------------------------------------------------------------------


def converge_once(side: ClusterSide, name: str) -> tuple[float, float]:
    """(seconds to 20 running from create, seconds to 40 running from the scale request)."""
    first, second = CONVERGE
    client = side.live_leader().client
    service_id = ""

    def create() -> None:
        nonlocal service_id
        service_id = client.create_service(name=name, **service_spec(first))["ID"]

    started = time.perf_counter()
    create()
    poll_until(lambda: running_tasks(client, service_id) >= first, f"{side.label}: {first} running",
               MEASURE_TIMEOUT_S)
    created_in = time.perf_counter() - started
    started = time.perf_counter()
    scale(client, service_id, second)
    poll_until(lambda: running_tasks(client, service_id) >= second, f"{side.label}: {second} running",
               MEASURE_TIMEOUT_S)
    scaled_in = time.perf_counter() - started
    tasks = client.tasks(filters={"service": service_id})
    failed = [t for t in tasks if t["Status"]["State"] in ("failed", "rejected")]
    if failed:  # a start that failed was retried after the restart delay: say so beside the figure
        print(f"  {side.label:5} converge: {len(failed)} task start(s) failed: {failed[0]['Status'].get('Err')}")
    remove_and_wait(side, service_id)
    return created_in, scaled_in


# --- the run --------------------------------------------------------------------------------------------


Runs = dict[str, dict[str, list[float]]]  # measure -> side label -> seconds per round


def record(runs: Runs, measure: str, side: ClusterSide, value: float) -> None:
    runs.setdefault(measure, {}).setdefault(side.label, []).append(value)
    print(f"  {side.label:5} {measure}: {value:.2f} s", flush=True)


def alternate(sides: list[ClusterSide], round_no: int) -> list[ClusterSide]:
    return sides if round_no % 2 == 0 else sides[::-1]


def run_rounds(sides: list[ClusterSide], rounds: int, only: set[str], prefix: str, runs: Runs) -> None:
    scenarios: list[tuple[str, Callable[[ClusterSide, int], None]]] = []
    if "converge" in only:
        def converge(side: ClusterSide, r: int) -> None:
            made, scaled = converge_once(side, f"conv{r}")
            record(runs, f"{prefix}converge: create 20 -> 20 running", side, made)
            record(runs, f"{prefix}converge: scale 20 -> 40 running", side, scaled)
        scenarios.append(("converge", converge))
    if "failover" in only:
        def failover(side: ClusterSide, r: int) -> None:
            record(runs, f"{prefix}failover: kill -9 leader -> write accepted", side, failover_once(side, f"step{r}"))
        scenarios.append(("failover", failover))
    if "dead-worker" in only:
        def dead_worker(side: ClusterSide, r: int) -> None:
            down, replaced = dead_worker_once(side, f"dead{r}")
            record(runs, f"{prefix}dead worker: cut -> node Down", side, down)
            record(runs, f"{prefix}dead worker: cut -> tasks running elsewhere", side, replaced)
        scenarios.append(("dead-worker", dead_worker))
    for round_no in range(rounds):
        print(f"{prefix}round {round_no + 1}/{rounds}", flush=True)
        for _, measure in scenarios:
            for side in alternate(sides, round_no):
                measure(side, round_no)


def tables(runs: Runs) -> str:
    rows = [Comparison(measure, by_side["swarm"], by_side["shoal"]) for measure, by_side in runs.items()
            if by_side.get("swarm") and by_side.get("shoal")]
    return ratio_table(rows, "Swarm (dockerd 20.10)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--same-heartbeat", type=float, default=1.0,
                        help="seconds; 0 skips the same-heartbeat rounds")
    parser.add_argument("--same-rounds", type=int, default=None, help="rounds at the same heartbeat (default --rounds)")
    parser.add_argument("--only", nargs="+", default=["converge", "failover", "dead-worker"],
                        choices=["converge", "failover", "dead-worker"])
    parser.add_argument("--executor", default="oci", help="shoal's executor (oci runs the same image as Swarm)")
    parser.add_argument("--json", help="also write every run's figures to this file")
    args = parser.parse_args()
    runs: Runs = {}
    heartbeats: dict[str, dict[str, float]] = {}
    with LoadSampler() as load, both_sides(args.executor) as sides:
        for side in sides:
            side.live_leader().client.create_service(name=CANARY, **service_spec(0))
        heartbeats["defaults"] = {side.label: side.heartbeat() for side in sides}
        print(f"each side's default dispatcher heartbeat: {heartbeats['defaults']}", flush=True)
        run_rounds(sides, args.rounds, set(args.only), "", runs)
        if args.same_heartbeat and "dead-worker" in args.only:
            for side in sides:
                side.set_heartbeat(args.same_heartbeat)
            # Agents learn a new period only from their next heartbeat's answer, up to one old period
            # later: measuring before that would time a node that fell silent before the cut.
            time.sleep(2 * max(heartbeats["defaults"].values()))
            heartbeats["same"] = {side.label: side.heartbeat() for side in sides}
            run_rounds(sides, args.same_rounds or args.rounds, {"dead-worker"},
                       f"both at heartbeat {args.same_heartbeat:g} s, ", runs)
    print(f"\ncluster bench: 5 hosts (3 managers + 2 workers) per side, shoal executor {args.executor}, "
          f"{IMAGE} `{' '.join(COMMAND)}`, polled every {POLL_S * 1000:.0f} ms, {args.rounds} rounds; "
          f"heartbeats {heartbeats}; {platform.node()}; {load.summary()}\n")
    print(tables(runs))
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"runs": runs, "heartbeats": heartbeats, "load": load.samples}, out, indent=2)


if __name__ == "__main__":
    main()
