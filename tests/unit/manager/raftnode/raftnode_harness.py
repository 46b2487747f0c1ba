"""RaftNodes in one event loop over an in-memory network, on a FakeClock.

Time only moves when a test calls ``Cluster.tick``; messages are delivered by the event loop
(``call_soon``), so ``Cluster.settle`` just lets the loop run until nothing is left to do.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import msgpack

from shoal.manager.proposer import RaftProposer
from shoal.manager.raftnode import RaftMessageSink, RaftNode, RaftNodeConfig
from shoal.manager.raftnode_storage import MemoryLog, RaftLogStorage
from shoal.raft.types import Message, MessageType
from shoal.testing.clock import FakeClock

TICK = 0.1


class LocalNetwork:
    def __init__(self, *, record: bool = True) -> None:
        self.sinks: dict[int, RaftMessageSink] = {}
        self.cut: set[frozenset[int]] = set()
        self.down: set[int] = set()
        self.record = record
        """Keep every delivered message in ``delivered`` (long simulations turn it off)."""
        self.delivered: list[Message] = []

    def endpoint(self, node_id: int) -> LocalTransport:
        return LocalTransport(self, node_id)

    def reachable(self, frm: int, to: int) -> bool:
        return (
            to in self.sinks and frm not in self.down and to not in self.down and frozenset((frm, to)) not in self.cut
        )

    def isolate(self, node_id: int, others: Iterable[int]) -> None:
        for other in others:
            if other != node_id:
                self.cut.add(frozenset((node_id, other)))

    def heal(self) -> None:
        self.cut.clear()


class LocalTransport:
    def __init__(self, network: LocalNetwork, node_id: int) -> None:
        self.network = network
        self.node_id = node_id
        self.peers: dict[int, str] = {}
        self.sink: RaftMessageSink | None = None

    def set_sink(self, sink: RaftMessageSink) -> None:
        self.sink = sink

    async def start(self) -> None:
        assert self.sink is not None
        self.network.sinks[self.node_id] = self.sink

    async def stop(self) -> None:
        if self.network.sinks.get(self.node_id) is self.sink:
            del self.network.sinks[self.node_id]

    def add_peer(self, node_id: int, address: str) -> None:
        self.peers[node_id] = address

    async def remove_peer(self, node_id: int) -> None:
        self.peers.pop(node_id, None)

    def send(self, messages: Iterable[Message]) -> None:
        loop = asyncio.get_running_loop()
        assert self.sink is not None
        for message in messages:
            if message.to in self.peers and self.network.reachable(self.node_id, message.to):
                target = self.network.sinks[message.to]
                if self.network.record:
                    self.network.delivered.append(message)
                loop.call_soon(target.receive, message)
                if message.type == MessageType.SNAP:
                    loop.call_soon(self.sink.report_snapshot, message.to, True)
            else:
                if message.type == MessageType.SNAP:
                    self.sink.report_snapshot(message.to, False)
                self.sink.report_unreachable(message.to)


@dataclass
class KV:
    """A state machine: payloads are msgpack [key, value] puts."""

    data: dict[str, str] = field(default_factory=dict)
    applied: list[int] = field(default_factory=list)

    def apply(self, index: int, payload: bytes) -> None:
        key, value = msgpack.unpackb(payload)
        self.data[key] = value
        self.applied.append(index)

    def snapshot(self) -> bytes:
        data = msgpack.packb(self.data)
        assert isinstance(data, bytes)
        return data

    def restore(self, blob: bytes) -> None:
        self.data = dict(msgpack.unpackb(blob)) if blob else {}


def put(key: str, value: str) -> bytes:
    data = msgpack.packb([key, value])
    assert isinstance(data, bytes)
    return data


@dataclass
class Member:
    node: RaftNode
    proposer: RaftProposer
    kv: KV
    storage: RaftLogStorage
    transport: LocalTransport


@dataclass
class Cluster:
    clock: FakeClock
    network: LocalNetwork
    members: dict[int, Member] = field(default_factory=dict)
    snapshot_interval: int = 10_000

    def address(self, node_id: int) -> str:
        return f"node{node_id}:2377"

    async def start(
        self,
        node_id: int,
        *,
        bootstrap: Iterable[int] = (),
        peers: Iterable[int] = (),
        storage: RaftLogStorage | None = None,
        fsync_in_thread: bool = True,
    ) -> Member:
        storage = storage or MemoryLog()
        transport = self.network.endpoint(node_id)
        node = RaftNode(
            RaftNodeConfig(
                node_id=node_id,
                address=self.address(node_id),
                tick_interval=TICK,
                snapshot_interval=self.snapshot_interval,
                log_entries_for_slow_followers=2,
                fsync_in_thread=fsync_in_thread,
            ),
            storage,
            transport,
            clock=self.clock,
            rand=random.Random(node_id),
        )
        kv = KV()
        proposer = RaftProposer(node, snapshot=kv.snapshot, restore=kv.restore)
        proposer.set_apply(kv.apply)
        member = Member(node, proposer, kv, storage, transport)
        self.members[node_id] = member
        await node.start(
            bootstrap={i: self.address(i) for i in bootstrap} or None,
            peers={i: self.address(i) for i in peers} or None,
        )
        await self.settle()
        return member

    async def stop(self, node_id: int) -> Member:
        member = self.members.pop(node_id)
        await member.node.stop()
        return member

    async def settle(self, rounds: int = 50) -> None:
        """Let the event loop deliver messages and run Ready loops (no time passes)."""
        for _ in range(rounds):
            await asyncio.sleep(0)

    async def tick(self, count: int = 1) -> None:
        for _ in range(count):
            self.clock.advance(TICK)
            await self.settle()

    async def until(self, condition: Callable[[], bool], max_ticks: int = 200) -> int:
        """Tick until ``condition`` holds; the number of ticks it took. Fails past ``max_ticks``."""
        for ticks in range(max_ticks + 1):
            if condition():
                return ticks
            await self.tick()
        raise AssertionError(f"condition not reached within {max_ticks} ticks")

    def leaders(self) -> list[int]:
        return [node_id for node_id, m in self.members.items() if m.node.is_leader()]

    async def elect(self) -> Member:
        await self.until(lambda: len(self.leaders()) == 1)
        return self.members[self.leaders()[0]]
