"""containers(): what `docker ps` shows of task containers; task addresses on the node network."""

from __future__ import annotations

import asyncio
import urllib.request

from shoal.executor.base import CAP_TASK_ADDRESS, ContainerState

from .conftest import Harness, eventually, within


async def test_containers_lists_tasks_like_docker_ps(harness: Harness) -> None:
    running = await harness.started("while :; do sleep 0.1; done")
    _, exited = await harness.finished("exit 2")
    status = await running.inspect()

    listed = {row.id: row for row in await harness.executor.containers()}
    assert status.container_id in listed and exited.container_id not in listed
    row = listed[status.container_id]
    assert row.names == (f"/{running.runtime.container_name}",)
    assert row.state is ContainerState.RUNNING
    assert row.status.startswith("Up ")
    assert row.labels.get("com.docker.swarm.service.name") == "conformance"

    if row.argv:  # optional detail for `docker inspect`
        assert list(row.argv) == running.runtime.argv
    if row.detail is not None:
        assert row.detail.pid == status.pid and row.detail.container_id == status.container_id

    everything = {row.id: row for row in await harness.executor.containers(all=True)}
    assert everything[exited.container_id].status.startswith("Exited (2) ")
    gone = everything[exited.container_id].detail
    if gone is not None:
        assert gone.exit_code == 2


async def test_replicas_each_listen_on_the_same_port(harness: Harness) -> None:
    harness.require(CAP_TASK_ADDRESS)
    serve = harness.kind.serve_hostname(80)
    first = await harness.started("", command=serve, args=())
    second = await harness.started("", command=serve, args=())
    answers = []
    for controller in (first, second):
        status = await controller.inspect()
        assert status.address is not None

        async def answered(address: str = status.address) -> bool:
            try:
                answers.append(await asyncio.to_thread(_get, f"http://{address}:80/"))
                return True
            except OSError:
                return False

        await within(eventually(answered))
    hostnames = [(await c.inspect()).hostname for c in (first, second)]
    assert answers == hostnames


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=2) as response:
        return response.read().decode().strip()
