"""Agents and the dispatcher across a real TLS cluster port: the session goes to the leader whichever
manager the agent knows, the node is the one its certificate names, and the assignment stream sends a
full set then numbered changes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from shoal.agent.remote_dispatcher import RemoteDispatcher
from shoal.api import errors
from shoal.api.dispatch import Assignments, StatusUpdate
from shoal.api.dispatch_wire import AssignmentDiffer, AssignmentReceiver
from shoal.api.objects import NODES, TASKS
from shoal.base.clock import SystemClock
from shoal.dispatcher.dispatcher import Dispatcher
from shoal.dispatcher.rpc_service import DispatcherService
from shoal.rpc.client import RpcClient
from shoal.rpc.identity import MANAGER_ROLE, WORKER_ROLE, PeerPolicy
from shoal.rpc.server import RpcServer
from shoal.rpc.tls import client_context, server_context
from shoal.store.memory import MemoryStore
from shoal.testing.pki import TestCA
from shoal.testing.store_harness import InstantProposer


async def eventually(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


@dataclass
class Flag:
    address: str | None = None

    def is_leader(self) -> bool:
        return False

    def leader_address(self) -> str | None:
        return self.address


@dataclass
class Cluster:
    store: MemoryStore
    dispatcher: Dispatcher
    leader_addr: str
    follower_addr: str
    ca: TestCA
    tmp: Path

    def client(self, node_id: str) -> RpcClient:
        files = self.ca.issue(node_id, WORKER_ROLE).write(self.tmp / node_id)
        return RpcClient(client_context(files.cert, files.key, files.ca))


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    clock = SystemClock()
    store = MemoryStore(InstantProposer(), clock)
    for node_id in ("n1", "n2"):
        await store.update(lambda tx, node_id=node_id: tx.create(
            NODES, {"ID": node_id, "Spec": {}, "Status": {"State": "unknown"}}))
    await store.update(lambda tx: tx.create(TASKS, {"ID": "t1", "NodeID": "n1", "Status": {"State": "assigned"}}))
    await store.update(lambda tx: tx.create(TASKS, {"ID": "t9", "NodeID": "n2", "Status": {"State": "assigned"}}))
    dispatcher = Dispatcher(store, clock, heartbeat_period=5.0)
    flusher = asyncio.create_task(dispatcher.run())
    ca = TestCA("c1")
    servers, addrs = [], []
    leader_flag, follower_flag = Flag(), Flag()
    for name, current, flag in (("leader", dispatcher, leader_flag), ("follower", None, follower_flag)):
        files = ca.issue(name, MANAGER_ROLE).write(tmp_path / name)
        server = RpcServer(PeerPolicy("c1"))
        DispatcherService(lambda current=current: current, flag, lambda: list(addrs)).register(server)
        port = await server.start("127.0.0.1", 0, server_context(files.cert, files.key, files.ca))
        servers.append(server)
        addrs.append(f"127.0.0.1:{port}")
    leader_flag.address = follower_flag.address = addrs[0]
    try:
        yield Cluster(store, dispatcher, addrs[0], addrs[1], ca, tmp_path)
    finally:
        flusher.cancel()
        for server in servers:
            await server.close()


async def test_an_agent_that_knows_a_follower_holds_its_session_with_the_leader(cluster: Cluster) -> None:
    client = cluster.client("n1")
    learned: list[list[str]] = []
    remote = RemoteDispatcher(client, [cluster.follower_addr], on_managers=learned.append)
    try:
        session = await remote.register("ignored", {"Hostname": "h1"}, "0.0.0.0")
        assert remote.leader == cluster.leader_addr
        assert learned == [[cluster.leader_addr, cluster.follower_addr]]
        node = cluster.store.view().get(NODES, "n1") or {}
        assert node["Status"] == {"State": "ready", "Addr": "127.0.0.1"}
        assert await remote.heartbeat("n1", session.session_id) == 5.0

        received: asyncio.Queue[Assignments] = asyncio.Queue()

        async def follow() -> None:
            async for assignments in remote.assignments("n1", session.session_id):
                received.put_nowait(assignments)

        follower = asyncio.create_task(follow())
        first = await asyncio.wait_for(received.get(), 10)
        assert set(first.tasks) == {"t1"}  # only this node's tasks, whatever the node claimed to be
        await cluster.store.update(lambda tx: tx.create(
            TASKS, {"ID": "t2", "NodeID": "n1", "Status": {"State": "assigned"}}))
        assert set((await asyncio.wait_for(received.get(), 10)).tasks) == {"t1", "t2"}
        await cluster.store.update(lambda tx: tx.delete(TASKS, "t1"))
        assert set((await asyncio.wait_for(received.get(), 10)).tasks) == {"t2"}

        await remote.update_status("n1", session.session_id, [StatusUpdate("t2", {"State": "running"})])
        await eventually(lambda: (cluster.store.view().get(TASKS, "t2") or {})["Status"]["State"] == "running",
                         "the reported status to be written")
        with pytest.raises(errors.Forbidden, match="cannot update a task not assigned this node"):
            await remote.update_status("n1", session.session_id, [StatusUpdate("t9", {"State": "running"})])
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)
    finally:
        await client.close()


async def test_a_node_the_store_does_not_know_cannot_register(cluster: Cluster) -> None:
    client = cluster.client("ghost")
    try:
        with pytest.raises(errors.NotFound, match="node not found"):
            await RemoteDispatcher(client, [cluster.leader_addr]).register("n1", {}, "10.0.0.9")
    finally:
        await client.close()


async def test_without_a_leader_registration_is_unavailable(cluster: Cluster, tmp_path: Path) -> None:
    client = cluster.client("n1")
    try:
        with pytest.raises(errors.Unavailable):
            await RemoteDispatcher(client, ["127.0.0.1:9"]).register("n1", {}, "10.0.0.9")
    finally:
        await client.close()


def test_the_stream_sends_a_full_set_then_changes_and_refuses_a_gap() -> None:
    differ, receiver = AssignmentDiffer(), AssignmentReceiver()
    first = differ.message({"a": {"v": 1}, "b": {"v": 1}})
    assert first == {"seq": 1, "full": {"a": {"v": 1}, "b": {"v": 1}}}
    assert differ.message({"a": {"v": 1}, "b": {"v": 1}}) is None
    second = differ.message({"a": {"v": 2}, "c": {"v": 1}})
    assert second == {"seq": 2, "update": {"a": {"v": 2}, "c": {"v": 1}}, "remove": ["b"]}
    assert receiver.apply(first) == {"a": {"v": 1}, "b": {"v": 1}}
    assert receiver.apply(second) == {"a": {"v": 2}, "c": {"v": 1}}
    with pytest.raises(errors.Unavailable, match="out of sequence"):
        receiver.apply({"seq": 4, "update": {}, "remove": []})
    with pytest.raises(errors.Unavailable, match="did not start with a full set"):
        AssignmentReceiver().apply({"seq": 1, "update": {}, "remove": []})
