"""The real store (shoal.store.MemoryStore) replicated through RaftProposer on three members."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from raftnode_harness import TICK, LocalNetwork

from shoal.api import errors
from shoal.api.objects import SERVICES
from shoal.manager.proposer import RaftProposer
from shoal.manager.raftnode import RaftNode, RaftNodeConfig
from shoal.manager.raftnode_storage import MemoryLog
from shoal.store.memory import MemoryStore
from shoal.testing.clock import FakeClock


@dataclass
class Manager:
    node: RaftNode
    proposer: RaftProposer
    store: MemoryStore


@dataclass
class Managers:
    clock: FakeClock
    network: LocalNetwork
    members: dict[int, Manager]

    async def start(
        self, raft_id: int, *, bootstrap: list[int] | None = None, peers: list[int] | None = None
    ) -> Manager:
        node = RaftNode(
            RaftNodeConfig(node_id=raft_id, address=f"m{raft_id}:2377", tick_interval=TICK, snapshot_interval=5),
            MemoryLog(),
            self.network.endpoint(raft_id),
            clock=self.clock,
            rand=random.Random(raft_id),
        )
        proposer = RaftProposer(node)
        store = MemoryStore(proposer, self.clock)
        proposer.set_snapshotter(store.snapshot, store.restore)
        await node.start(
            bootstrap={i: f"m{i}:2377" for i in bootstrap or []} or None,
            peers={i: f"m{i}:2377" for i in peers or []} or None,
        )
        manager = Manager(node, proposer, store)
        self.members[raft_id] = manager
        return manager

    async def tick(self, count: int = 1) -> None:
        for _ in range(count):
            self.clock.advance(TICK)
            for _ in range(50):
                await asyncio.sleep(0)

    async def leader(self) -> Manager:
        for _ in range(300):
            leaders = [m for m in self.members.values() if m.proposer.is_leader()]
            if leaders:
                return leaders[0]
            await self.tick()
        raise AssertionError("no leader")


@pytest.fixture
async def managers() -> AsyncIterator[Managers]:
    group = Managers(FakeClock(), LocalNetwork(), {})
    yield group
    for manager in group.members.values():
        await manager.node.stop()


async def test_store_writes_on_the_leader_reach_every_manager_with_raft_versions(managers: Managers) -> None:
    for raft_id in (1, 2, 3):
        await managers.start(raft_id, bootstrap=[1, 2, 3])
    leader = await managers.leader()
    await leader.store.update(lambda tx: tx.create(SERVICES, {"ID": "s1", "Spec": {"Name": "web"}}))
    created = leader.store.view().get(SERVICES, "s1")
    assert created is not None
    await managers.tick()
    for manager in managers.members.values():
        replica = manager.store.view().get(SERVICES, "s1")
        assert replica == created
        assert replica["Version"]["Index"] == leader.store.last_index


async def test_store_write_on_a_follower_is_unavailable(managers: Managers) -> None:
    for raft_id in (1, 2, 3):
        await managers.start(raft_id, bootstrap=[1, 2, 3])
    leader = await managers.leader()
    follower = next(m for m in managers.members.values() if m is not leader)
    with pytest.raises(errors.Unavailable):
        await follower.store.update(lambda tx: tx.create(SERVICES, {"ID": "s2", "Spec": {"Name": "db"}}))
    assert follower.store.view().get(SERVICES, "s2") is None


async def test_new_manager_gets_the_store_from_a_snapshot(managers: Managers) -> None:
    for raft_id in (1, 2, 3):
        await managers.start(raft_id, bootstrap=[1, 2, 3])
    leader = await managers.leader()
    for n in range(12):  # snapshot_interval is 5: the log is compacted under the joiner
        await leader.store.update(lambda tx, n=n: tx.create(SERVICES, {"ID": f"s{n}", "Spec": {"Name": f"svc{n}"}}))
    joiner = await managers.start(4, peers=[1, 2, 3])
    await leader.node.add_member(4, "m4:2377")
    for _ in range(100):
        if joiner.store.view().get(SERVICES, "s11") is not None:
            break
        await managers.tick()
    assert joiner.node.snapshot_index > 0
    assert sorted(s["ID"] for s in joiner.store.view().objects(SERVICES)) == sorted(f"s{n}" for n in range(12))
