"""Manager components, dispatcher and agent in one process, over a FakeExecutor: tasks go through
Swarm's states to running, failures are restarted, scale-down removes tasks, and re-adoption after a
restart keeps running tasks. Real time is short here: only batching intervals of 50 ms are waited."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shoal.agent.agent import Agent
from shoal.api import states
from shoal.api.objects import NODES, TASKS, Obj
from shoal.base.clock import SystemClock
from shoal.ca import certs
from shoal.controlapi.services import ServiceControl
from shoal.dispatcher.dispatcher import Dispatcher
from shoal.node.consensus import open_consensus
from shoal.node.identity import save_certificates
from shoal.node.manager_components import manager_loops
from shoal.rpc.tls import client_context
from shoal.testing.fake_executor import FakeExecutor

NODE = "node00000000000000000000a"


RAFT_ID = 7


class Cluster:
    """One manager+worker node on Raft (a one-member group persisted under `path`)."""

    def __init__(self, path: Path, executor: FakeExecutor) -> None:
        self.clock = SystemClock()
        self.path = path
        if not (path / "certificates").exists():
            root = certs.create_root_ca(self.clock.now())
            node = certs.issue_node_certificate(root, NODE, certs.ROLE_MANAGER, "cluster", self.clock.now())
            save_certificates(path, root.cert_pem, node)
        certs_dir = path / "certificates"
        client_ssl = client_context(certs_dir / "swarm-node.crt", certs_dir / "swarm-node.key",
                                    certs_dir / "swarm-root-ca.crt")
        self.consensus = open_consensus(path, RAFT_ID, "cluster", "127.0.0.1:2377", self.clock, client_ssl)
        self.store = self.consensus.store
        self.executor = executor
        self.dispatcher = Dispatcher(self.store, self.clock)
        self.agent = Agent(NODE, "127.0.0.1", executor, self.dispatcher, self.clock)
        self.services = ServiceControl(self.store, self.clock)
        self.jobs: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        if self.consensus.log.is_empty():
            await self.consensus.bootstrap(RAFT_ID, "127.0.0.1:2377")
        else:
            await self.consensus.restart(RAFT_ID)
        if self.store.view().get(NODES, NODE) is None:
            await self.store.update(lambda tx: tx.create(NODES, {
                "ID": NODE, "Spec": {"Role": "manager", "Availability": "active", "Labels": {}},
                "Status": {"State": "unknown"}, "Description": {"Hostname": "fake"}}))
        coros = [self.dispatcher.run(), self.agent.run(), *(f() for _, f in manager_loops(self.store, self.clock))]
        self.jobs = [asyncio.create_task(c) for c in coros]

    async def stop(self) -> None:
        for job in self.jobs:
            job.cancel()
        await asyncio.gather(*self.jobs, return_exceptions=True)
        await self.agent.stop()
        await self.consensus.stop()

    def tasks(self, service_id: str) -> list[Obj]:
        return self.store.view().tasks_of_service(service_id)

    def running(self, service_id: str) -> list[Obj]:
        return [t for t in self.tasks(service_id)
                if t["DesiredState"] == states.RUNNING and t["Status"]["State"] == states.RUNNING]

    async def until(self, condition: object, what: str, timeout: float = 10.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            if condition():  # type: ignore[operator]
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    running = Cluster(tmp_path, FakeExecutor())
    await running.start()
    yield running
    await running.stop()


def spec(name: str, replicas: int, **task: object) -> Obj:
    return {"Name": name, "TaskTemplate": {"ContainerSpec": {"Image": "busybox", "Args": ["true"]}, **task},
            "Mode": {"Replicated": {"Replicas": replicas}}}


async def test_tasks_reach_running_through_swarm_states(cluster: Cluster) -> None:
    created = await cluster.services.create(spec("web", 3))
    await cluster.until(lambda: len(cluster.running(created["ID"])) == 3, "3 running tasks")
    slots = sorted(t["Slot"] for t in cluster.running(created["ID"]))
    assert slots == [1, 2, 3]
    task = cluster.running(created["ID"])[0]
    assert task["NodeID"] == NODE
    assert task["Status"]["Message"] == "started"
    assert cluster.executor.steps(task["ID"])[:2] == ["prepare", "start"]


async def test_failed_task_is_restarted_in_its_slot(cluster: Cluster) -> None:
    created = await cluster.services.create(spec("web", 1, RestartPolicy={"Condition": "any", "Delay": 0}))
    await cluster.until(lambda: len(cluster.running(created["ID"])) == 1, "first task running")
    first = cluster.running(created["ID"])[0]
    cluster.executor.exit_task(first["ID"], 3)
    await cluster.until(
        lambda: any(t["ID"] != first["ID"] for t in cluster.running(created["ID"])), "a replacement task")
    old = cluster.store.view().get(TASKS, first["ID"])
    assert old is not None
    assert old["Status"]["State"] == states.FAILED
    assert old["Status"]["Err"] == "task: non-zero exit (3)"
    assert cluster.running(created["ID"])[0]["Slot"] == first["Slot"]


async def test_scale_down_removes_highest_slots(cluster: Cluster) -> None:
    created = await cluster.services.create(spec("web", 3))
    await cluster.until(lambda: len(cluster.running(created["ID"])) == 3, "3 running")
    service = cluster.services.inspect("web", False)
    new_spec = {**service["Spec"], "Mode": {"Replicated": {"Replicas": 1}}}
    await cluster.services.update("web", service["Version"]["Index"], new_spec, rollback=False)
    await cluster.until(lambda: len(cluster.running(created["ID"])) == 1, "1 running")
    assert cluster.running(created["ID"])[0]["Slot"] == 1


async def test_running_tasks_are_readopted_after_restart(tmp_path: Path) -> None:
    executor = FakeExecutor()
    first = Cluster(tmp_path, executor)
    await first.start()
    created = await first.services.create(spec("web", 2))
    await first.until(lambda: len(first.running(created["ID"])) == 2, "2 running")
    before = {t["ID"] for t in first.running(created["ID"])}
    await first.stop()

    second = Cluster(tmp_path, executor.restarted())
    await second.start()
    try:
        await second.until(lambda: set(second.agent.managers) >= before, "the agent to take the tasks back")
        # Each adopted task's manager settles into waiting on its container; a wrongful restart
        # would have run a start step before that.
        await second.until(lambda: all("wait" in second.executor.steps(t) for t in before),
                           "the agent to watch the adopted tasks")
        after = {t["ID"] for t in second.running(created["ID"])}
        assert after == before
        for task_id in before:
            assert "start" not in second.executor.steps(task_id)
    finally:
        await second.stop()
