"""The routing mesh fed through the cluster port: a manager streams published ports and where their
running tasks are; a node (here with a worker's certificate) builds its own mesh from that, keeps its
last mesh when its manager goes, and moves to another manager."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from shoal.api.objects import SERVICES, TASKS, Obj
from shoal.base.clock import SystemClock
from shoal.dispatcher.meshstream import MeshStreamService, published_entries
from shoal.network.mesh import Backend, PublishedPort, UserspaceMesh
from shoal.node.meshfeed import MeshFeed, mesh_for_node
from shoal.rpc.client import RpcClient
from shoal.rpc.identity import MANAGER_ROLE, WORKER_ROLE, PeerPolicy
from shoal.rpc.server import RpcServer
from shoal.rpc.tls import client_context, server_context
from shoal.store.memory import MemoryStore
from shoal.testing.pki import TestCA
from shoal.testing.store_harness import InstantProposer

ME, OTHER = "w1", "w2"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def new_store() -> MemoryStore:
    return MemoryStore(InstantProposer(), SystemClock())


def service(service_id: str, *ports: tuple[int, int, str]) -> Obj:
    return {"ID": service_id, "Spec": {"Name": service_id}, "Endpoint": {"Ports": [
        {"Protocol": "tcp", "TargetPort": target, "PublishedPort": published, "PublishMode": mode}
        for published, target, mode in ports]}}


def task(task_id: str, service_id: str, node_id: str, addr: str, desired: str = "running") -> Obj:
    return {"ID": task_id, "ServiceID": service_id, "NodeID": node_id, "DesiredState": desired,
            "Status": {"State": "running", "ContainerStatus": {"Addr": f"{addr}/24"}}}


async def eventually(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


@dataclass
class Managers:
    ca: TestCA
    tmp: Path
    servers: dict[str, RpcServer] = field(default_factory=dict)

    async def start(self, name: str, store: MemoryStore) -> str:
        files = self.ca.issue(name, MANAGER_ROLE).write(self.tmp / name)
        server = RpcServer(PeerPolicy("c1"))
        MeshStreamService(store, keepalive=0.2).register(server)
        port = await server.start("127.0.0.1", 0, server_context(files.cert, files.key, files.ca))
        address = f"127.0.0.1:{port}"
        self.servers[address] = server
        return address

    def worker_client(self, node_id: str) -> RpcClient:
        files = self.ca.issue(node_id, WORKER_ROLE).write(self.tmp / node_id)
        return RpcClient(client_context(files.cert, files.key, files.ca))


@pytest.fixture
async def managers(tmp_path: Path) -> AsyncIterator[Managers]:
    found = Managers(TestCA("c1"), tmp_path)
    try:
        yield found
    finally:
        for server in found.servers.values():
            await server.close()


@dataclass
class Feed:
    feed: MeshFeed
    mesh: UserspaceMesh
    addresses: list[str]
    job: asyncio.Task[None]


@pytest.fixture
async def feed_for(managers: Managers) -> AsyncIterator[Callable[[list[str]], Feed]]:
    started: list[tuple[Feed, RpcClient]] = []

    def start(addresses: list[str]) -> Feed:
        client = managers.worker_client(ME)
        mesh = UserspaceMesh(host="127.0.0.1")
        feed = MeshFeed(lambda: client, lambda: list(addresses), mesh, ME, True, SystemClock())
        made = Feed(feed, mesh, addresses, asyncio.create_task(feed.run()))
        started.append((made, client))
        return made

    try:
        yield start
    finally:
        for made, client in started:
            made.job.cancel()
            await asyncio.gather(made.job, return_exceptions=True)
            await made.mesh.close()
            await client.close()


async def test_a_worker_builds_its_mesh_from_the_stream_and_follows_changes(
        managers: Managers, feed_for: Callable[[list[str]], Feed]) -> None:
    ingress, host = free_port(), free_port()
    store = new_store()
    await store.update(lambda tx: tx.create(SERVICES, service("web", (ingress, 80, "ingress"), (host, 81, "host"))))
    await store.update(lambda tx: tx.create(TASKS, task("t1", "web", ME, "10.1.0.2")))
    await store.update(lambda tx: tx.create(TASKS, task("t2", "web", OTHER, "10.2.0.2")))
    await store.update(lambda tx: tx.create(TASKS, task("t3", "web", ME, "10.1.0.3", desired="shutdown")))
    made = feed_for([await managers.start("m1", store)])
    ingress_port, host_port = PublishedPort(ingress), PublishedPort(host)

    # This node's own running task serves both ports; the task being shut down serves neither.
    await eventually(lambda: made.mesh.applied.get(ingress_port) == (Backend("10.1.0.2", 80),), "the first mesh")
    assert made.mesh.applied[host_port] == (Backend("10.1.0.2", 81),)

    # With no task of its own left, ingress goes to the other node's task; the host port to nothing.
    def stop_t1(tx: Any) -> None:
        tx.update(TASKS, {**tx.get(TASKS, "t1"), "DesiredState": "shutdown"})

    await store.update(stop_t1)
    await eventually(lambda: made.mesh.applied.get(ingress_port) == (Backend("10.2.0.2", 80),), "the changed mesh")
    assert made.mesh.applied.get(host_port, ()) == ()


async def test_the_last_mesh_stays_when_the_manager_goes_and_the_next_manager_takes_over(
        managers: Managers, feed_for: Callable[[list[str]], Feed]) -> None:
    port = free_port()
    first, second = new_store(), new_store()
    for store, addr in ((first, "10.1.0.2"), (second, "10.1.0.9")):
        await store.update(lambda tx: tx.create(SERVICES, service("web", (port, 80, "ingress"))))
        await store.update(lambda tx, addr=addr: tx.create(TASKS, task("t1", "web", ME, addr)))
    a = await managers.start("m1", first)
    made = feed_for([a])
    published = PublishedPort(port)
    await eventually(lambda: made.mesh.applied.get(published) == (Backend("10.1.0.2", 80),), "m1's mesh")

    await managers.servers.pop(a).close()
    await eventually(lambda: made.feed.source is None, "the feed to notice m1 is gone")
    assert made.mesh.applied[published] == (Backend("10.1.0.2", 80),)  # kept, not cleared

    made.addresses.append(await managers.start("m2", second))
    await eventually(lambda: made.mesh.applied.get(published) == (Backend("10.1.0.9", 80),), "m2's mesh")


async def test_a_restored_snapshot_reaches_the_stream(managers: Managers,
                                                      feed_for: Callable[[list[str]], Feed]) -> None:
    """A follower that installs a snapshot changes its whole state at once (store.restore): the
    streamed mesh follows it, stale ports go."""
    stale_port, port = free_port(), free_port()
    follower, leader = new_store(), new_store()
    await follower.update(lambda tx: tx.create(SERVICES, service("old", (stale_port, 80, "ingress"))))
    await follower.update(lambda tx: tx.create(TASKS, task("t0", "old", ME, "10.1.0.5")))
    await leader.update(lambda tx: tx.create(SERVICES, service("web", (port, 80, "ingress"))))
    await leader.update(lambda tx: tx.create(TASKS, task("t1", "web", ME, "10.1.0.7")))
    made = feed_for([await managers.start("m1", follower)])
    stale, served = PublishedPort(stale_port), PublishedPort(port)
    await eventually(lambda: stale in made.mesh.applied, "the follower's first state")
    follower.restore(leader.snapshot())
    await eventually(lambda: served in made.mesh.applied, "the restored state")
    assert made.mesh.applied[served] == (Backend("10.1.0.7", 80),)
    assert stale not in made.mesh.applied


async def test_the_entries_are_the_same_for_every_node_and_skip_what_the_mesh_cannot_route() -> None:
    store = new_store()
    spec = service("web", (8080, 80, "ingress"))
    spec["Endpoint"]["Ports"] += [{"Protocol": "sctp", "TargetPort": 9, "PublishedPort": 9},
                                  {"Protocol": "tcp", "TargetPort": 90, "PublishMode": "host"}]
    await store.update(lambda tx: tx.create(SERVICES, spec))
    await store.update(lambda tx: tx.create(TASKS, task("t1", "web", OTHER, "10.2.0.2")))
    assert published_entries(store.view()) == [
        {"port": 8080, "protocol": "tcp", "mode": "ingress", "target": 80, "tasks": [["10.2.0.2", OTHER]]}]


def test_malformed_entries_are_left_out_and_host_ports_wait_for_route_host_ports() -> None:
    entries = [
        {"port": 8080, "protocol": "tcp", "mode": "ingress", "target": 80, "tasks": [["10.1.0.2", ME]]},
        {"port": 8081, "protocol": "tcp", "mode": "host", "target": 81, "tasks": [["10.1.0.2", ME]]},
        {"port": 8082, "protocol": "tcp", "mode": "ingress", "target": 80, "tasks": [["not-an-ip", ME]]},
        {"port": "8083", "protocol": "tcp", "mode": "ingress", "target": 80, "tasks": []},
        {"port": 8084, "protocol": "sctp", "mode": "ingress", "target": 80, "tasks": []},
        "garbage",
    ]
    assert mesh_for_node(entries, ME, route_host_ports=False) == {PublishedPort(8080): [Backend("10.1.0.2", 80)]}
    assert mesh_for_node(entries, ME, route_host_ports=True) == {
        PublishedPort(8080): [Backend("10.1.0.2", 80)], PublishedPort(8081): [Backend("10.1.0.2", 81)]}
    assert mesh_for_node("not a list", ME, route_host_ports=True) == {}
