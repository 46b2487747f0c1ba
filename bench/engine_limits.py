"""Reference times for the converge benchmark, measured on the local Docker Engine.

For each N (default 5 and 50) it measures the time until N containers of shoal-busybox:latest
(`sleep 3600`) are running:
  direct-api   N create+start chains in parallel through the Engine API (the engine's own speed limit)
  docker-exec  the same through shoal's docker executor (prepare+start per task): its overhead
  swarm-mode   dockerd's own Swarm: `docker service create --replicas N` (no published ports), timed from
               the CLI call until N tasks report running; the swarm is created for the run and left after

Needs root and a running dockerd with the image (ci/setup-dockerd.sh). Prints one JSON document.
  python bench/converge_docker_ref.py [--replicas 5 50] [--repeat 3] [--skip-swarm]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

from shoal.base.ids import new_id
from shoal.executor.base import TaskRuntime
from shoal.executor.docker import DockerExecutor
from shoal.executor.docker.address import DEFAULT_SOCKET
from shoal.executor.docker.engine import EngineClient

IMAGE = "shoal-busybox:latest"
COMMAND = ["sleep", "3600"]
DOCKER_CLI = ["/usr/bin/docker", "-H", f"unix://{DEFAULT_SOCKET}"]
BENCH_LABEL = "io.shoal.bench"
POLL_S = 0.05
CONVERGE_TIMEOUT_S = 300.0


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*DOCKER_CLI, *args], capture_output=True, text=True, check=check)


async def remove_labelled(engine: EngineClient, run_id: str) -> None:
    filters = {"label": [f"{BENCH_LABEL}={run_id}"]}
    listed = await engine.call("GET", "/containers/json", params={"all": True, "filters": filters})
    await asyncio.gather(
        *(engine.call("DELETE", f"/containers/{entry['Id']}", params={"force": True}) for entry in listed)
    )


async def count_running(engine: EngineClient, label: str) -> int:
    filters = {"label": [label], "status": ["running"]}
    return len(await engine.call("GET", "/containers/json", params={"filters": filters}))


async def wait_until(predicate: Callable[[], Awaitable[bool]]) -> None:
    deadline = time.monotonic() + CONVERGE_TIMEOUT_S
    while not await predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("did not converge")
        await asyncio.sleep(POLL_S)


async def direct_api(engine: EngineClient, replicas: int) -> float:
    run_id = new_id()

    async def create_and_start(index: int) -> None:
        body = {"Image": IMAGE, "Cmd": COMMAND, "Labels": {BENCH_LABEL: run_id}, "HostConfig": {}}
        created = await engine.call("POST", "/containers/create", params={"name": f"bench-{run_id}-{index}"}, body=body)
        await engine.call("POST", f"/containers/{created['Id']}/start")

    started = time.monotonic()
    try:
        await asyncio.gather(*(create_and_start(index) for index in range(replicas)))

        async def converged() -> bool:
            return await count_running(engine, f"{BENCH_LABEL}={run_id}") == replicas

        await wait_until(converged)
        return time.monotonic() - started
    finally:
        await remove_labelled(engine, run_id)


async def docker_executor(engine: EngineClient, replicas: int) -> float:
    with tempfile.TemporaryDirectory() as state_dir:
        executor = DockerExecutor(state_dir=state_dir)
        service_name, service_id, node_id = "benchexec" + new_id()[:6], new_id(), new_id()
        controllers = [
            executor.controller(
                TaskRuntime(
                    task_id=new_id(),
                    service_id=service_id,
                    service_name=service_name,
                    node_id=node_id,
                    slot=slot,
                    image=IMAGE,
                    command=tuple(COMMAND),
                )
            )
            for slot in range(1, replicas + 1)
        ]

        async def run(controller: Any) -> None:
            await controller.prepare()
            await controller.start()

        started = time.monotonic()
        try:
            await asyncio.gather(*(run(controller) for controller in controllers))

            async def converged() -> bool:
                return await count_running(engine, f"com.docker.swarm.service.id={service_id}") == replicas

            await wait_until(converged)
            return time.monotonic() - started
        finally:
            await asyncio.gather(*(controller.remove() for controller in controllers))
            await executor.close()


class SwarmMode:
    """dockerd's own swarm on this engine, made for the run and left afterwards."""

    def __init__(self, engine: EngineClient) -> None:
        self.engine = engine

    async def __aenter__(self) -> SwarmMode:
        info = await self.engine.call("GET", "/info")
        if info["Swarm"]["LocalNodeState"] != "inactive":
            raise SystemExit("the engine is already in a swarm; leave it first (this bench makes its own)")
        init = cli("swarm", "init", check=False)
        if init.returncode != 0:  # several addresses: pick the loopback one explicitly
            cli("swarm", "init", "--advertise-addr", "127.0.0.1")
        return self

    async def __aexit__(self, *exc: object) -> None:
        cli("swarm", "leave", "--force", check=False)

    async def converge(self, replicas: int) -> float:
        name = "benchref" + new_id()[:6]
        started = time.monotonic()
        cli("service", "create", "--detach", "--name", name, "--replicas", str(replicas), IMAGE, *COMMAND)
        filters = {"service": [name], "desired-state": ["running"]}

        async def converged() -> bool:
            tasks = await self.engine.call("GET", "/tasks", params={"filters": filters})
            return sum(task["Status"]["State"] == "running" for task in tasks) == replicas

        try:
            await wait_until(converged)
            return time.monotonic() - started
        finally:
            cli("service", "rm", name, check=False)

            async def gone() -> bool:
                return await count_running(self.engine, f"com.docker.swarm.service.name={name}") == 0

            await wait_until(gone)


def summary(method: str, replicas: int, seconds: list[float]) -> dict[str, Any]:
    return {
        "method": method,
        "replicas": replicas,
        "seconds": [round(value, 3) for value in seconds],
        "median_s": round(statistics.median(seconds), 3),
    }


async def main(arguments: argparse.Namespace) -> dict[str, Any]:
    engine = EngineClient()
    try:
        info = await engine.call("GET", "/info")
        await engine.call("GET", f"/images/{IMAGE}/json")
        results: list[dict[str, Any]] = []
        for replicas in arguments.replicas:
            for method, measure in (("direct-api", direct_api), ("docker-exec", docker_executor)):
                runs = [await measure(engine, replicas) for _ in range(arguments.repeat)]
                results.append(summary(method, replicas, runs))
        if not arguments.skip_swarm:
            async with SwarmMode(engine) as swarm:
                for replicas in arguments.replicas:
                    runs = [await swarm.converge(replicas) for _ in range(arguments.repeat)]
                    results.append(summary("swarm-mode", replicas, runs))
        return {
            "benchmark": "converge_docker_ref",
            "image": IMAGE,
            "command": COMMAND,
            "engine": info.get("ServerVersion"),
            "host": {"ncpu": info.get("NCPU"), "mem_bytes": info.get("MemTotal"), "kernel": info.get("KernelVersion")},
            "repeat": arguments.repeat,
            "results": results,
        }
    finally:
        await engine.close()


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicas", type=int, nargs="+", default=[5, 50])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--skip-swarm", action="store_true", help="only the direct measurements")
    return parser.parse_args(argv)


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(parse_arguments(sys.argv[1:]))), indent=2))
