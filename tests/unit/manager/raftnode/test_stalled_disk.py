"""A hung disk under a RaftNode: a FileOps whose fsyncs block until released (shoal.testing.stallfs)
under DiskStorage, on a FakeClock. The fsync runs in the driver's worker thread, so waiting for it
to block (or to finish) is a bounded real-time wait on a condition; Raft's own time is the clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest
from raftnode_harness import Cluster, Member, put

from shoal.manager.proposer import LostLeadership, NotLeader
from shoal.manager.raftnode_storage import DiskLog
from shoal.manager.wal.crypto import DataKey, KeyRing
from shoal.manager.wal.storage import DiskStorage
from shoal.raft.errors import ProposalDropped
from shoal.raft.types import MessageType
from shoal.testing.clock import FakeClock
from shoal.testing.fileops_proxy import FileOpsProxy
from shoal.testing.memfs import MemoryFS
from shoal.testing.stallfs import StallingFS

T = TypeVar("T")
KEY = KeyRing(DataKey(bytes(range(32))))
MEMBERS = [1, 2, 3]


DiskFactory = Callable[[], tuple[StallingFS, DiskLog]]


@pytest.fixture
def stalling_disk(cluster: Cluster) -> Iterator[DiskFactory]:
    """Makes hung-able disks, and releases them all when the test ends: a failed assertion must not
    leave a worker thread blocked (the loop's shutdown would wait for it)."""
    made: list[StallingFS] = []

    def make() -> tuple[StallingFS, DiskLog]:
        disk = StallingFS(MemoryFS())
        made.append(disk)
        return disk, DiskLog(DiskStorage.open("/data", keys=KEY, file_ops=disk))

    yield make
    for disk in made:
        disk.release()


async def wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    """Wait (real time, bounded) for work done in a driver's worker thread."""
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(0.001)


async def start_with_stalling_leader(
    cluster: Cluster, stalling_disk: DiskFactory
) -> tuple[StallingFS, Member, list[Member]]:
    disk, log = stalling_disk()
    one = await cluster.start(1, bootstrap=MEMBERS, storage=log)
    others = [await cluster.start(i, bootstrap=MEMBERS) for i in MEMBERS[1:]]
    await one.node.campaign()
    await wait_for(one.proposer.is_leader)
    return disk, one, others


async def test_leader_whose_fsync_hangs_steps_down_and_the_followers_take_over(
    cluster: Cluster, stalling_disk: DiskFactory
) -> None:
    disk, old, others = await start_with_stalling_leader(cluster, stalling_disk)
    acked = {f"k{i}": str(i) for i in range(3)}
    for key, value in acked.items():
        await asyncio.wait_for(old.proposer.propose(put(key, value)), 10)
    term = old.node.term

    disk.stall()
    in_doubt = asyncio.ensure_future(old.proposer.propose(put("in-doubt", "1")))
    await wait_for(lambda: disk.blocked > 0)
    # Past an election timeout the old leader stops heartbeating, and the followers elect one of
    # themselves (election timeouts are 1-2 s; 6 s is plenty).
    await cluster.until(lambda: any(o.proposer.is_leader() for o in others), max_ticks=60)
    new = next(o for o in others if o.proposer.is_leader())
    assert new.node.term > term
    assert old.node.stats["stall_stepdowns"] == 1
    # Meanwhile the old leader neither acknowledges writes nor serves reads.
    assert not old.proposer.is_leader()
    assert in_doubt.done() and isinstance(in_doubt.exception(), LostLeadership)
    with pytest.raises(NotLeader):
        await old.proposer.propose(put("refused", "1"))
    with pytest.raises(ProposalDropped):
        await old.node.read_index()
    # The two others make a quorum: the cluster commits new writes.
    for i in range(3):
        key = f"after{i}"
        acked[key] = "new"
        await asyncio.wait_for(new.proposer.propose(put(key, "new")), 10)

    disk.release()
    # The old leader finishes its write, steps down and follows the new leader.
    await wait_for(lambda: old.node.status()["role"] != "LEADER")
    await cluster.until(
        lambda: old.node.leader_id == new.node.node_id and old.kv.data.get("after2") == "new", max_ticks=100
    )
    assert not old.proposer.is_leader()
    assert old.node.term == new.node.term
    for member in cluster.members.values():
        for key, value in acked.items():
            assert member.kv.data.get(key) == value, f"member {member.node.node_id} lost acknowledged {key}"
    # The write caught by the stall had an unknown outcome; whatever it was, every member agrees.
    assert len({m.kv.data.get("in-doubt") for m in cluster.members.values()}) == 1


async def test_a_stall_shorter_than_an_election_timeout_costs_no_election(
    cluster: Cluster, stalling_disk: DiskFactory
) -> None:
    disk, one, others = await start_with_stalling_leader(cluster, stalling_disk)
    term = one.node.term
    disk.stall()
    write = asyncio.ensure_future(one.proposer.propose(put("k", "v")))
    await wait_for(lambda: disk.blocked > 0)
    await cluster.tick(8)  # 0.8 s of a stalled fsync, under the 1 s election timeout
    assert one.node.stats["stall_heartbeats"] > 0
    disk.release()
    await asyncio.wait_for(write, 10)
    assert one.proposer.is_leader() and one.node.term == term
    assert [o.node.leader_id for o in others] == [1, 1]
    assert [o.node.term for o in others] == [term, term]
    assert one.node.stats["stall_stepdowns"] == 0


async def test_a_lone_leader_with_a_hung_disk_gives_up_then_leads_again(
    cluster: Cluster, stalling_disk: DiskFactory
) -> None:
    disk, log = stalling_disk()
    one = await cluster.start(1, bootstrap=[1], storage=log)
    await cluster.until(one.proposer.is_leader)
    await wait_for(lambda: one.kv.applied != [] or one.proposer.is_leader())
    await asyncio.wait_for(one.proposer.propose(put("before", "1")), 10)
    disk.stall()
    in_doubt = asyncio.ensure_future(one.proposer.propose(put("in-doubt", "1")))
    await wait_for(lambda: disk.blocked > 0)
    await cluster.until(lambda: not one.proposer.is_leader(), max_ticks=15)
    assert isinstance(in_doubt.exception(), LostLeadership)
    with pytest.raises(NotLeader):
        await one.proposer.propose(put("refused", "1"))
    disk.release()
    await wait_for(lambda: one.node.status()["role"] != "LEADER")
    await cluster.until(one.proposer.is_leader, max_ticks=40)
    await asyncio.wait_for(one.proposer.propose(put("after", "1")), 10)
    assert one.kv.data == {"before": "1", "in-doubt": "1", "after": "1"}  # it was on disk: it committed


async def test_follower_with_a_hung_disk_lags_without_acknowledging_or_campaigning(
    cluster: Cluster, stalling_disk: DiskFactory
) -> None:
    leader = await cluster.start(1, bootstrap=MEMBERS)
    disk, log = stalling_disk()
    slow = await cluster.start(2, bootstrap=MEMBERS, storage=log)
    await cluster.start(3, bootstrap=MEMBERS)
    await leader.node.campaign()
    await wait_for(leader.proposer.is_leader)
    term = leader.node.term
    disk.stall()
    first_new = leader.storage.last_index() + 1
    # The leader and member 3 commit without member 2, whose write hangs.
    for i in range(5):
        await asyncio.wait_for(leader.proposer.propose(put(f"k{i}", str(i))), 10)
    await wait_for(lambda: disk.blocked > 0)
    await cluster.tick(40)  # 4 s: twice the longest election timeout
    acks = [m for m in cluster.network.delivered if m.frm == 2 and m.type == MessageType.APP_RESP]
    assert all(m.index < first_new for m in acks), "member 2 acknowledged entries it had not made durable"
    assert slow.node.term == term and leader.node.term == term and leader.proposer.is_leader()
    disk.release()
    await cluster.until(lambda: slow.kv.data.get("k4") == "4", max_ticks=50)
    await cluster.tick(20)  # the ticks queued during the stall do not turn into an election
    assert [m.node.term for m in cluster.members.values()] == [term] * 3
    assert leader.proposer.is_leader()


class SlowFsyncFS(FileOpsProxy):
    """Each fsync, once armed, takes ``seconds`` of the fake clock: a write that blocks the event
    loop (``fsync_in_thread=False``), where no watchdog can run while it lasts."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(MemoryFS())
        self.clock = clock
        self.seconds = 0.0

    def _call(self, name: str, mutating: bool, fn: Callable[[], T]) -> T:
        if name == "fsync":
            self.clock.advance(self.seconds)
        return fn()


async def test_leader_blocked_on_the_loop_past_an_election_timeout_gives_up_afterwards(cluster: Cluster) -> None:
    disk = SlowFsyncFS(cluster.clock)
    log = DiskLog(DiskStorage.open("/data", keys=KEY, file_ops=disk))
    one = await cluster.start(1, bootstrap=MEMBERS, storage=log, fsync_in_thread=False)
    for i in MEMBERS[1:]:
        await cluster.start(i, bootstrap=MEMBERS)
    await one.node.campaign()
    await wait_for(one.proposer.is_leader)
    await asyncio.wait_for(one.proposer.propose(put("fast", "1")), 10)
    assert one.node.stats["stall_stepdowns"] == 0
    disk.seconds = 1.5  # past the 1 s election timeout
    in_doubt = asyncio.ensure_future(one.proposer.propose(put("slow", "1")))
    await cluster.until(in_doubt.done, max_ticks=5)
    assert isinstance(in_doubt.exception(), LostLeadership)
    assert one.node.stats["stall_stepdowns"] == 1
    disk.seconds = 0.0
    await cluster.until(lambda: len(cluster.leaders()) == 1, max_ticks=60)
    leader = cluster.members[cluster.leaders()[0]]
    await asyncio.wait_for(leader.proposer.propose(put("after", "1")), 10)
    await cluster.until(lambda: all(m.kv.data.get("after") == "1" for m in cluster.members.values()))
    assert len({m.kv.data.get("slow") for m in cluster.members.values()}) == 1
