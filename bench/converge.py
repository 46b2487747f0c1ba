"""Converge benchmark: time from `service create --replicas N` until N tasks run.

Compared in the same run and timed the same way (bench/harness.py): shoal with the docker executor and
dockerd's own swarm mode on the same engine, both driven by the same in-process API client with the same
request (the same spec and image, no image resolution, no published ports since dockerd's ingress needs
IPVS), both polled every harness.POLL_S seconds for ServiceStatus.RunningTasks == N, and after each run
both waited on until the engine holds no container of the service. The two sides alternate inside each
round (which one goes first alternates too), so the i-th runs of each form a pair.

Beside them, for reading the figures: the engine's own limits (bench/engine_limits.py: the same
containers created and started directly in parallel, and shoal's docker executor alone) and shoal on its
process executor (no engine).

    python bench/converge.py [--replicas 5 50] [--repeat 3] [--skip-engine-limits] [--json FILE]

Needs root and a dockerd with shoal-busybox:latest that is not in a swarm (ci/setup-dockerd.sh).
Prints the ratio table (reference / shoal: above 1 means shoal is faster) and the load average."""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
from collections.abc import Callable
from typing import Any

import docker
import engine_limits
from harness import (
    POLL_S,
    SYSTEM_DOCKERD,
    Comparison,
    DockerdSwarm,
    LoadSampler,
    Shoald,
    Spread,
    api_client,
    check_unresolved,
    create_service,
    ratio_table,
    remove_service,
    running_tasks,
    time_until,
)

IMAGE = "shoal-busybox:latest"
PROCESS_IMAGE = "my-apache2:latest"  # the process executor only names the workload with it
COMMAND = ["sleep", "3600"]


def converge_once(client: docker.APIClient, engine: docker.APIClient, image: str, replicas: int,
                  name: str) -> float:
    service_id = ""

    def create() -> None:
        nonlocal service_id
        service_id = create_service(client, name, image, COMMAND, replicas)

    elapsed = time_until(create, lambda: running_tasks(client, service_id) >= replicas, f"{name} converged")
    check_unresolved(client, service_id, image)
    remove_service(client, engine, service_id)
    return elapsed


def interleaved(replicas: list[int], repeat: int) -> tuple[dict[int, list[float]], dict[int, list[float]]]:
    """shoal (docker executor) and dockerd swarm mode, alternating; returns (shoal, reference) runs per N."""
    ours: dict[int, list[float]] = {n: [] for n in replicas}
    theirs: dict[int, list[float]] = {n: [] for n in replicas}
    engine = api_client(SYSTEM_DOCKERD)
    engine.inspect_image(IMAGE)  # fail early, with docker-py's message, when the image is missing
    # Both run at once on this host, so their cluster ports must differ.
    with Shoald(executor="docker", listen_addr="127.0.0.1:4567") as shoal, DockerdSwarm() as swarm:
        sides: list[tuple[dict[int, list[float]], Callable[[int, str], float]]] = [
            (ours, lambda n, name: converge_once(shoal.client, engine, IMAGE, n, name)),
            (theirs, lambda n, name: converge_once(swarm.client, engine, IMAGE, n, name)),
        ]
        for round_no in range(repeat):
            for n in replicas:
                order = sides if round_no % 2 == 0 else sides[::-1]
                for runs, measure in order:
                    runs[n].append(measure(n, f"bench{n}r{round_no}"))
    engine.close()
    return ours, theirs


def process_executor(replicas: list[int], repeat: int) -> dict[int, list[float]]:
    runs: dict[int, list[float]] = {n: [] for n in replicas}
    with Shoald(executor="process") as shoal:
        for round_no in range(repeat):
            for n in replicas:
                runs[n].append(converge_once(shoal.client, shoal.client, PROCESS_IMAGE, n, f"proc{n}r{round_no}"))
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicas", type=int, nargs="+", default=[5, 50])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-engine-limits", action="store_true")
    parser.add_argument("--json", help="also write every run's figures to this file")
    args = parser.parse_args()
    with LoadSampler() as load:
        ours, theirs = interleaved(args.replicas, args.repeat)
        process = process_executor(args.replicas, args.repeat)
        limits = None if args.skip_engine_limits else asyncio.run(engine_limits.measure(args.replicas, args.repeat))
    engine = api_client(SYSTEM_DOCKERD)
    version = engine.version()["Version"]
    engine.close()
    print(f"converge: {IMAGE} `{' '.join(COMMAND)}`, polled every {POLL_S * 1000:.0f} ms, {args.repeat} rounds; "
          f"dockerd {version}; {platform.node()}; {load.summary()}\n")
    rows = [Comparison(f"{n} replicas", theirs[n], ours[n]) for n in args.replicas]
    print(ratio_table(rows, "dockerd swarm mode"))
    print("\n| N | shoal, process executor | direct API, parallel | shoal's docker executor alone |")
    print("|---|---|---|---|")
    by_method: dict[tuple[str, int], list[float]] = {}
    for entry in (limits or {}).get("results", []):
        by_method[(entry["method"], entry["replicas"])] = entry["seconds"]
    for n in args.replicas:
        cells = [Spread.of(process[n]).show()]
        for method in ("direct-api", "docker-exec"):
            found = by_method.get((method, n))
            cells.append(Spread.of(found).show() if found else "-")
        print(f"| {n} | {' | '.join(cells)} |")
    if args.json:
        report: dict[str, Any] = {"shoal-docker": ours, "swarm-mode": theirs, "shoal-process": process,
                                  "engine-limits": limits, "load": load.samples, "dockerd": version}
        with open(args.json, "w") as out:
            json.dump(report, out, indent=2)


if __name__ == "__main__":
    main()
