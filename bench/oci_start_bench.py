"""Task start benchmark of the oci executor: how long one task takes from `service create` to running
(start latency), and how long N replicas of one image take to all run (converge), shoal's oci executor
against dockerd 20.10's swarm mode on the same image, in the same run.

Both sides are timed the same way (bench/harness.py): the same in-process API client at 1.41, the
same request (the same spec, no image resolution, no published ports), both polled every
harness.POLL_S seconds for ServiceStatus.RunningTasks, and after each run both waited on until the
daemon holds no container of the service. The sides alternate inside each round (which one goes first
alternates too), so the i-th runs of each form a pair.

The image is busybox (Debian's busybox-static) imported into both from the same root filesystem tar.
dockerd runs in a network namespace of its own (shoal.testing.dockerd_hosts), with its swarm told to
prefer the local image as shoald does; shoald runs on the machine.

    python bench/oci_start_bench.py [--replicas 50] [--repeat 3] [--json FILE]

Needs root, crun or runc, overlayfs and dockerd installed. Prints the ratio table (reference / shoal:
above 1 means shoal is faster) and the load average."""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import uuid
from pathlib import Path

import docker
from harness import (
    POLL_S,
    Comparison,
    LoadSampler,
    Shoald,
    check_unresolved,
    create_service,
    ratio_table,
    remove_service,
    running_tasks,
    time_until,
)

from shoal.executor.oci.rootfs import build_busybox_rootfs, write_archive
from shoal.testing.dockerd_hosts import DockerdHosts, dockerd_unavailable
from shoal.testing.netns import netns_unavailable
from shoal.testing.registry import free_port

IMAGE = "bench-busybox:latest"
COMMAND = ["sleep", "3600"]


def converge_once(client: docker.APIClient, engine: docker.APIClient, replicas: int, name: str) -> float:
    service_id = ""

    def create() -> None:
        nonlocal service_id
        service_id = create_service(client, name, IMAGE, COMMAND, replicas)

    elapsed = time_until(create, lambda: running_tasks(client, service_id) >= replicas, f"{name} converged")
    check_unresolved(client, service_id, IMAGE)
    remove_service(client, engine, service_id)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write the raw timings here")
    args = parser.parse_args()
    why_not = dockerd_unavailable() or netns_unavailable()
    if why_not:
        raise SystemExit(f"cannot run the reference: {why_not}")

    with tempfile.TemporaryDirectory(prefix="oci-start-bench-") as work:
        rootfs = build_busybox_rootfs(Path(work) / "rootfs")
        archive = write_archive(rootfs, Path(work) / "busybox.tar")
        engines = DockerdHosts(f"ocib{uuid.uuid4().hex[:4]}", Path(work) / "dockerd")
        engines.start(1)
        try:
            reference = engines.nodes[0]
            engines.init(reference)
            engines.import_image(archive, IMAGE)
            with Shoald(executor="oci", listen_addr=f"127.0.0.1:{free_port()}") as shoal, LoadSampler() as load:
                repository, tag = IMAGE.rsplit(":", 1)
                shoal.client.import_image_from_file(str(archive), repository=repository, tag=tag)
                sides = {"shoal (oci)": (shoal.client, shoal.client),
                         "dockerd swarm": (reference.client, reference.client)}
                timings: dict[str, dict[str, list[float]]] = {
                    "start 1 task": {side: [] for side in sides}, f"converge {args.replicas}": {s: [] for s in sides}}
                for round_index in range(args.repeat):
                    order = list(sides) if round_index % 2 == 0 else list(reversed(sides))
                    for metric, replicas in (("start 1 task", 1), (f"converge {args.replicas}", args.replicas)):
                        for side in order:
                            client, engine = sides[side]
                            name = f"bench{round_index}r{replicas}"
                            timings[metric][side].append(converge_once(client, engine, replicas, name))
                rows = [Comparison(metric, per_side["dockerd swarm"], per_side["shoal (oci)"])
                        for metric, per_side in timings.items()]
                print(ratio_table(rows, "dockerd swarm"))
                print(f"polled every {POLL_S} s; {platform.node()}; {load.summary()}")
                if args.json:
                    args.json.write_text(json.dumps(timings, indent=1))
        finally:
            engines.destroy()


if __name__ == "__main__":
    main()
