"""The log broker across a real TLS cluster port: agents' publishers (worker certificates) serve their
tasks' lines from their executors, the broker merges them; a node that cannot answer is skipped with
swarmkit's warning instead of hanging the stream; following picks up tasks that start later; a
manager that does not lead gets the same stream from the leader's broker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from shoal.agent import logpublisher
from shoal.agent.logpublisher import LogPublisher
from shoal.api import errors
from shoal.api.objects import SERVICES, TASKS, Obj
from shoal.base.clock import SystemClock
from shoal.dispatcher import logbroker
from shoal.dispatcher.logbroker import (
    BrokerLine,
    LogBroker,
    LogSelector,
    SubscriptionOptions,
    remote_logs,
)
from shoal.executor.base import TaskRuntime
from shoal.rpc.client import RpcClient
from shoal.rpc.identity import MANAGER_ROLE, WORKER_ROLE, PeerPolicy
from shoal.rpc.server import RpcServer
from shoal.rpc.tls import client_context, server_context
from shoal.store.memory import MemoryStore
from shoal.testing.fake_executor import FakeExecutor
from shoal.testing.pki import TestCA
from shoal.testing.store_harness import InstantProposer

INCOMPLETE = "warning: incomplete log stream. some logs could not be retrieved for the following reasons: "


async def eventually(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


@dataclass
class Swarm:
    ca: TestCA
    tmp: Path
    store: MemoryStore
    broker: LogBroker
    address: str
    executors: dict[str, FakeExecutor] = field(default_factory=dict)
    clients: list[RpcClient] = field(default_factory=list)
    jobs: list[asyncio.Task[None]] = field(default_factory=list)

    def client(self, node_id: str, role: str = WORKER_ROLE) -> RpcClient:
        files = self.ca.issue(node_id, role).write(self.tmp / node_id)
        client = RpcClient(client_context(files.cert, files.key, files.ca))
        self.clients.append(client)
        return client

    async def node(self, node_id: str) -> FakeExecutor:
        """A node whose publisher is connected to the broker (again, with the same executor, as a
        restarted daemon, if it was connected before)."""
        executor = self.executors.setdefault(node_id, FakeExecutor())
        client = self.client(node_id)
        publisher = LogPublisher(lambda: client, lambda: [self.address], executor, SystemClock())
        self.jobs.append(asyncio.create_task(publisher.run(), name=node_id))
        await eventually(lambda: node_id in self.broker.connected(), f"{node_id}'s publisher")
        return executor

    async def stop(self, node_id: str) -> None:
        for job in [job for job in self.jobs if job.get_name() == node_id]:
            job.cancel()
            await asyncio.gather(job, return_exceptions=True)
        await eventually(lambda: node_id not in self.broker.connected(), f"{node_id}'s publisher to go")

    async def task(self, task_id: str, node_id: str, *lines: bytes) -> None:
        """A running task of service web on ``node_id`` that printed ``lines``."""
        container_id = ""
        executor = self.executors.get(node_id)
        if executor is not None:
            controller = executor.controller(TaskRuntime(task_id, "web", "web", node_id, 1, "img", command=("x",)))
            await controller.prepare()
            await controller.start()
            container_id = (await controller.inspect()).container_id
            for line in lines:
                executor.emit_log(task_id, line)
        elif lines:
            container_id = "c" * 64  # on a node that is not connected
        task: Obj = {"ID": task_id, "ServiceID": "web", "NodeID": node_id, "DesiredState": "running",
                     "CreatedAt": task_id, "Status": {"State": "running",
                                                      "ContainerStatus": {"ContainerID": container_id}}}
        await self.store.update(lambda tx: tx.create(TASKS, task))


@pytest.fixture
async def swarm(tmp_path: Path) -> AsyncIterator[Swarm]:
    ca = TestCA("c1")
    store = MemoryStore(InstantProposer(), SystemClock())
    await store.update(lambda tx: tx.create(SERVICES, {"ID": "web", "Spec": {"Name": "web"}}))
    broker = LogBroker(store, silence=0.5)
    server = RpcServer(PeerPolicy("c1"))
    broker.register(server)
    files = ca.issue("m1", MANAGER_ROLE).write(tmp_path / "m1")
    port = await server.start("127.0.0.1", 0, server_context(files.cert, files.key, files.ca))
    found = Swarm(ca, tmp_path, store, broker, f"127.0.0.1:{port}")
    try:
        yield found
    finally:
        for job in found.jobs:
            job.cancel()
        await asyncio.gather(*found.jobs, return_exceptions=True)
        await server.close()
        for client in found.clients:
            await client.close()


async def read_all(lines: AsyncIterator[BrokerLine]) -> list[tuple[str, bytes]]:
    return [(line.task_id, line.data) async for line in lines]


def test_both_sides_name_the_same_route() -> None:
    assert logpublisher.PUBLISH_PATH == logbroker.PUBLISH_PATH


async def test_lines_of_tasks_on_every_node_merged_in_time_order(swarm: Swarm) -> None:
    await swarm.node("w1")
    await swarm.node("w2")
    await swarm.task("t1", "w1", b"one")
    await swarm.task("t2", "w2", b"two")
    swarm.executors["w1"].emit_log("t1", b"three")
    lines = swarm.broker.subscribe(LogSelector(service_id="web"), SubscriptionOptions())
    assert await read_all(lines) == [("t1", b"one\n"), ("t2", b"two\n"), ("t1", b"three\n")]

    tail = swarm.broker.subscribe(LogSelector(service_id="web"), SubscriptionOptions(tail=1))
    assert await read_all(tail) == [("t2", b"two\n"), ("t1", b"three\n")]  # the last line of each task
    one = swarm.broker.subscribe(LogSelector(task_id="t2"), SubscriptionOptions())
    assert await read_all(one) == [("t2", b"two\n")]


async def test_a_node_that_is_not_connected_is_skipped_with_swarmkits_warning(swarm: Swarm) -> None:
    await swarm.node("w1")
    await swarm.task("t1", "w1", b"here")
    await swarm.task("t2", "w9", b"never read")
    got: list[tuple[str, bytes]] = []
    with pytest.raises(errors.Unknown) as raised:
        async for line in swarm.broker.subscribe(LogSelector(service_id="web"), SubscriptionOptions()):
            got.append((line.task_id, line.data))
    assert got == [("t1", b"here\n")]
    assert str(raised.value) == f"rpc error: code = Unknown desc = {INCOMPLETE}node w9 is not available"


async def test_a_task_waiting_for_a_node_is_named_in_the_warning(swarm: Swarm) -> None:
    await swarm.node("w1")
    await swarm.task("t1", "w1", b"here")
    pending: Obj = {"ID": "t2", "ServiceID": "web", "DesiredState": "running", "Status": {"State": "pending"}}
    given_up: Obj = {"ID": "t3", "ServiceID": "web", "DesiredState": "shutdown", "Status": {"State": "pending"}}
    await swarm.store.update(lambda tx: [tx.create(TASKS, pending), tx.create(TASKS, given_up)])
    with pytest.raises(errors.Unknown) as raised:
        await read_all(swarm.broker.subscribe(LogSelector(service_id="web"), SubscriptionOptions()))
    assert raised.value.message == f"{INCOMPLETE}task t2 has not been scheduled"


async def test_a_connected_node_that_stays_silent_does_not_hang_the_stream(swarm: Swarm) -> None:
    """A paused node keeps its connection open but answers nothing."""
    await swarm.node("w1")
    await swarm.task("t1", "w1", b"here")
    silent = await swarm.client("w2").stream(swarm.address, logbroker.PUBLISH_PATH)
    await eventually(lambda: "w2" in swarm.broker.connected(), "the silent node's stream")
    await swarm.task("t2", "w2", b"never sent")
    with pytest.raises(errors.Unknown, match="node w2 is not available"):
        await read_all(swarm.broker.subscribe(LogSelector(service_id="web"), SubscriptionOptions()))
    await silent.close()


async def test_a_node_cannot_speak_for_another_nodes_task(swarm: Swarm) -> None:
    await swarm.node("w1")
    await swarm.task("t1", "w1", b"real")
    liar = await swarm.client("w2").stream(swarm.address, logbroker.PUBLISH_PATH)
    await eventually(lambda: "w2" in swarm.broker.connected(), "the other node's stream")
    await swarm.task("t2", "w2", b"x")
    lines = swarm.broker.subscribe(LogSelector(service_id="web"), SubscriptionOptions())
    reader = asyncio.create_task(read_all(lines))
    request = await liar.recv(timeout=10)
    assert [t["task"] for t in request["tasks"]] == ["t2"]  # asked only for its own task
    sub = request["sub"]
    forged: dict[str, Any] = {"sub": sub, "task": "t1", "lines": [[1, "2020-01-01T00:00:00.000000000Z", b"forged\n"]]}
    await liar.send(forged)
    await liar.send({"sub": sub, "task": "t2", "lines": [[1, "2020-01-01T00:00:00.000000000Z", b"own\n"]]})
    await liar.send({"sub": sub, "task": "t2", "done": True})
    assert await asyncio.wait_for(reader, 10) == [("t2", b"own\n"), ("t1", b"real\n")]
    await liar.close()


async def test_following_picks_up_a_task_that_starts_later_on_any_node(swarm: Swarm) -> None:
    await swarm.node("w1")
    await swarm.node("w2")
    await swarm.task("t1", "w1", b"first")
    lines = swarm.broker.subscribe(LogSelector(service_id="web"), SubscriptionOptions(follow=True))
    try:
        line = await asyncio.wait_for(anext(lines), 10)
        assert (line.task_id, line.data) == ("t1", b"first\n")
        await swarm.task("t2", "w2", b"replacement")  # e.g. the replacement of a failed task
        line = await asyncio.wait_for(anext(lines), 10)
        assert (line.task_id, line.data) == ("t2", b"replacement\n")
        assert line.attrs == {"com.docker.swarm.node.id": "w2", "com.docker.swarm.service.id": "web",
                              "com.docker.swarm.task.id": "t2"}
    finally:
        await lines.aclose()


async def test_following_goes_on_where_it_was_when_a_node_comes_back(swarm: Swarm) -> None:
    executor = await swarm.node("w1")
    await swarm.task("t1", "w1", b"first")
    lines = swarm.broker.subscribe(LogSelector(service_id="web"), SubscriptionOptions(follow=True))
    try:
        assert (await asyncio.wait_for(anext(lines), 10)).data == b"first\n"
        await swarm.stop("w1")  # e.g. its daemon restarts; the task keeps running
        executor.emit_log("t1", b"second")
        await swarm.node("w1")
        assert (await asyncio.wait_for(anext(lines), 10)).data == b"second\n"  # not "first" again
    finally:
        await lines.aclose()


async def test_a_manager_that_does_not_lead_gets_the_leaders_stream(swarm: Swarm) -> None:
    await swarm.node("w1")
    await swarm.task("t1", "w1", b"one")
    await swarm.task("t2", "w9", b"gone")
    follower = swarm.client("m2", MANAGER_ROLE)
    got: list[tuple[str, bytes]] = []
    with pytest.raises(errors.Unknown, match="node w9 is not available"):
        async for line in remote_logs(follower, swarm.address, LogSelector(service_id="web"), SubscriptionOptions()):
            got.append((line.task_id, line.data))
    assert got == [("t1", b"one\n")]
    with pytest.raises(errors.Forbidden):  # the forwarded stream is for managers only
        await read_all(remote_logs(swarm.client("w5"), swarm.address, LogSelector(service_id="web"),
                                   SubscriptionOptions()))


async def test_a_publisher_follows_its_session_to_another_manager(swarm: Swarm) -> None:
    """After a leader change the agent's session is with the new leader, whose broker will ask."""
    other = LogBroker(swarm.store)
    server = RpcServer(PeerPolicy("c1"))
    other.register(server)
    files = swarm.ca.issue("m2", MANAGER_ROLE).write(swarm.tmp / "m2")
    port = await server.start("127.0.0.1", 0, server_context(files.cert, files.key, files.ca))
    managers = [swarm.address, f"127.0.0.1:{port}"]
    client = swarm.client("w1")
    publisher = LogPublisher(lambda: client, lambda: list(managers), FakeExecutor(), SystemClock())
    job = asyncio.create_task(publisher.run())
    try:
        await eventually(lambda: "w1" in swarm.broker.connected(), "the stream to the first manager")
        managers.reverse()
        await eventually(lambda: "w1" in other.connected(), "the stream to the session's new manager")
        await eventually(lambda: "w1" not in swarm.broker.connected(), "the old stream to close")
    finally:
        job.cancel()
        await asyncio.gather(job, return_exceptions=True)
        await server.close()


async def test_a_followed_stream_for_another_manager_ends_when_that_manager_stops_reading(swarm: Swarm) -> None:
    await swarm.node("w1")
    await swarm.task("t1", "w1", b"one")
    lines = remote_logs(swarm.client("m2", MANAGER_ROLE), swarm.address, LogSelector(service_id="web"),
                        SubscriptionOptions(follow=True))
    assert (await asyncio.wait_for(anext(lines), 10)).data == b"one\n"
    assert swarm.broker.subscriptions() == 1
    await lines.aclose()  # its docker CLI went away
    await eventually(lambda: swarm.broker.subscriptions() == 0, "the leader's subscription to end")
