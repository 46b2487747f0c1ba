"""A follower whose store installs a leader's snapshot: what the node shows from its store (docker
events, the routing mesh) catches up with the restored state, as it does after a transaction."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime

from shoal.api.objects import SERVICES, TASKS
from shoal.network.mesh import PublishedPort, UserspaceMesh
from shoal.node.events import EventHub
from shoal.node.meshfeed import feed_mesh
from shoal.store.memory import MemoryStore
from shoal.testing.clock import FakeClock
from shoal.testing.store_harness import InstantProposer

NODE = "node00000000000000000000a"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def new_store() -> MemoryStore:
    return MemoryStore(InstantProposer(), FakeClock())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_events_report_what_a_restored_snapshot_changed() -> None:
    follower, leader = new_store(), new_store()
    await leader.update(lambda tx: tx.create(SERVICES, {"ID": "svc1", "Spec": {"Name": "web"}}))
    hub = EventHub()
    follow = asyncio.create_task(hub.follow_store(follower, NODE))
    try:
        async with asyncio.timeout(5):
            messages = hub.stream(EPOCH, None)
            while follower.watchers() == 0:  # the hub reports only what follows its subscription
                await asyncio.sleep(0)
            await follower.update(lambda tx: tx.create(SERVICES, {"ID": "old1", "Spec": {"Name": "old"}}))
            assert (await anext(messages))["Actor"]["ID"] == "old1"
            follower.restore(leader.snapshot())
            restored = [await anext(messages), await anext(messages)]
    finally:
        follow.cancel()
    seen = {(m["Type"], m["Action"], m["Actor"]["ID"], m["Actor"]["Attributes"]["name"]) for m in restored}
    assert seen == {("service", "remove", "old1", "old"), ("service", "create", "svc1", "web")}


async def test_mesh_serves_the_tasks_of_a_restored_snapshot() -> None:
    port = free_port()
    follower, leader = new_store(), new_store()

    def service_and_running_task(tx: object) -> None:
        tx.create(SERVICES, {"ID": "svc1", "Spec": {"Name": "web"}, "Endpoint": {"Ports": [  # type: ignore[attr-defined]
            {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": port, "PublishMode": "ingress"}]}})
        tx.create(TASKS, {"ID": "t1", "ServiceID": "svc1", "NodeID": NODE, "DesiredState": "running",  # type: ignore[attr-defined]
                          "Status": {"State": "running", "ContainerStatus": {"Addr": "10.254.0.7/16"}}})

    await leader.update(service_and_running_task)
    stale_port = free_port()
    await follower.update(lambda tx: tx.create(SERVICES, {"ID": "old1", "Spec": {"Name": "old"}, "Endpoint": {
        "Ports": [{"Protocol": "tcp", "TargetPort": 80, "PublishedPort": stale_port, "PublishMode": "ingress"}]}}))
    mesh = UserspaceMesh(host="127.0.0.1")
    feed = asyncio.create_task(feed_mesh(follower, mesh, NODE, route_host_ports=False))
    stale, served = PublishedPort(stale_port, "tcp", "ingress"), PublishedPort(port, "tcp", "ingress")
    try:
        async with asyncio.timeout(5):
            while stale not in mesh.applied:  # the feed follows the store
                await asyncio.sleep(0.01)
            follower.restore(leader.snapshot())
            while served not in mesh.applied:
                await asyncio.sleep(0.01)
        assert [b.ip for b in mesh.applied[served]] == ["10.254.0.7"]
        assert stale not in mesh.applied
    finally:
        feed.cancel()
        await mesh.close()
