"""The engine's own speed limit for the converge benchmark, measured on the local Docker Engine.

For each N (default 5 and 50) it measures the time until N containers of shoal-busybox:latest
(`sleep 3600`) are running, polling the engine every harness.POLL_S seconds as bench/converge.py does:
  direct-api   N create+start chains in parallel through the Engine API (no orchestrator at all)
  docker-exec  the same through shoal's docker executor alone (prepare+start per task): its overhead

bench/converge.py runs these beside its shoal and swarm-mode rounds. Needs root and a running dockerd with
the image (ci/setup-dockerd.sh). Prints one JSON document.
  python bench/engine_limits.py [--replicas 5 50] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

from harness import POLL_S, TIMEOUT_S

from shoal.base.ids import new_id
from shoal.executor.base import TaskRuntime
from shoal.executor.docker import DockerExecutor
from shoal.executor.docker.engine import EngineClient

IMAGE = "shoal-busybox:latest"
COMMAND = ["sleep", "3600"]
BENCH_LABEL = "io.shoal.bench"

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
    deadline = time.monotonic() + TIMEOUT_S
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


def summary(method: str, replicas: int, seconds: list[float]) -> dict[str, Any]:
    return {
        "method": method,
        "replicas": replicas,
        "seconds": [round(value, 3) for value in seconds],
        "median_s": round(statistics.median(seconds), 3),
    }


async def measure(replicas_list: list[int], repeat: int) -> dict[str, Any]:
    engine = EngineClient()
    try:
        info = await engine.call("GET", "/info")
        await engine.call("GET", f"/images/{IMAGE}/json")
        results: list[dict[str, Any]] = []
        for replicas in replicas_list:
            for method, timed in (("direct-api", direct_api), ("docker-exec", docker_executor)):
                runs = [await timed(engine, replicas) for _ in range(repeat)]
                results.append(summary(method, replicas, runs))
        return {
            "benchmark": "engine_limits",
            "image": IMAGE,
            "command": COMMAND,
            "engine": info.get("ServerVersion"),
            "host": {"ncpu": info.get("NCPU"), "mem_bytes": info.get("MemTotal"), "kernel": info.get("KernelVersion")},
            "repeat": repeat,
            "results": results,
        }
    finally:
        await engine.close()


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicas", type=int, nargs="+", default=[5, 50])
    parser.add_argument("--repeat", type=int, default=1)
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_arguments(sys.argv[1:])
    print(json.dumps(asyncio.run(measure(arguments.replicas, arguments.repeat)), indent=2))
