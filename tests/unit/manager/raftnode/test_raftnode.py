"""RaftNode + RaftProposer over an in-memory network on a FakeClock."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from raftnode_harness import Cluster, put

from shoal.api.errors import Unavailable
from shoal.manager.proposer import LostLeadership, NotLeader, unwrap_payload, wrap_payload
from shoal.manager.raftnode import LeadershipChange
from shoal.manager.raftnode_storage import DiskLog, MemoryLog
from shoal.raft.errors import RaftError
from shoal.raft.types import HardState, MessageType


async def test_single_member_elects_itself_and_commits(cluster: Cluster) -> None:
    one = await cluster.start(1, bootstrap=[1])
    assert not one.proposer.is_leader()
    ticks = await cluster.until(one.proposer.is_leader)
    assert 10 <= ticks <= 21  # a randomized election timeout in [10, 20) ticks, plus one to notice
    index = await one.proposer.propose(put("a", "1"))
    assert one.kv.data == {"a": "1"}
    assert one.kv.applied == [index]
    assert one.node.members() == {1: "node1:2377"}


async def test_three_members_apply_the_same_log(cluster: Cluster) -> None:
    for node_id in (1, 2, 3):
        await cluster.start(node_id, bootstrap=[1, 2, 3])
    leader = await cluster.elect()
    indexes = [await leader.proposer.propose(put(f"k{i}", str(i))) for i in range(5)]
    assert indexes == sorted(indexes)
    await cluster.settle()
    await cluster.tick()  # a heartbeat carries the commit index to the followers
    for member in cluster.members.values():
        assert member.kv.data == {f"k{i}": str(i) for i in range(5)}
        assert member.kv.applied == indexes
        assert member.node.leader_id == leader.node.node_id
    assert sorted(leader.transport.peers) == [i for i in (1, 2, 3) if i != leader.node.node_id]


async def test_follower_refuses_proposals_with_not_leader(cluster: Cluster) -> None:
    for node_id in (1, 2, 3):
        await cluster.start(node_id, bootstrap=[1, 2, 3])
    leader = await cluster.elect()
    follower = next(m for i, m in cluster.members.items() if i != leader.node.node_id)
    with pytest.raises(NotLeader) as caught:
        await follower.proposer.propose(put("x", "y"))
    assert isinstance(caught.value, Unavailable)
    assert "x" not in follower.kv.data


async def test_isolated_leader_fails_pending_proposals_and_a_new_leader_takes_over(cluster: Cluster) -> None:
    for node_id in (1, 2, 3):
        await cluster.start(node_id, bootstrap=[1, 2, 3])
    old = await cluster.elect()
    old_id = old.node.node_id
    changes = old.proposer.subscribe()
    assert changes.get_nowait() == LeadershipChange(True, old_id, old.node.term)
    cluster.network.isolate(old_id, cluster.members)
    pending = asyncio.ensure_future(old.proposer.propose(put("lost", "maybe")))
    await cluster.settle()
    assert not pending.done()
    # Check-quorum makes the old leader step down; the others elect a new one.
    await cluster.until(lambda: pending.done() and len(cluster.leaders()) == 1)
    with pytest.raises(LostLeadership):
        pending.result()
    assert cluster.leaders() != [old_id]
    assert changes.get_nowait().is_leader is False
    new = cluster.members[cluster.leaders()[0]]
    await new.proposer.propose(put("after", "yes"))
    cluster.network.heal()
    await cluster.until(lambda: old.kv.data.get("after") == "yes")
    assert "lost" not in old.kv.data  # never committed: overwritten by the new leader's log


async def test_read_index_on_a_follower_sees_the_last_acknowledged_write(cluster: Cluster) -> None:
    for node_id in (1, 2, 3):
        await cluster.start(node_id, bootstrap=[1, 2, 3])
    leader = await cluster.elect()
    follower = next(m for i, m in cluster.members.items() if i != leader.node.node_id)
    index = await leader.proposer.propose(put("r", "1"))
    read = asyncio.ensure_future(follower.node.read_index())
    await cluster.until(read.done)
    assert read.result() >= index
    assert follower.node.applied_index >= index
    assert follower.kv.data["r"] == "1"


async def test_snapshot_compacts_the_log_and_catches_up_a_new_member(cluster: Cluster) -> None:
    cluster.snapshot_interval = 5
    for node_id in (1, 2, 3):
        await cluster.start(node_id, bootstrap=[1, 2, 3])
    leader = await cluster.elect()
    for i in range(12):
        await leader.proposer.propose(put(f"k{i}", str(i)))
    assert leader.node.snapshot_index >= 10
    assert leader.storage.first_index() > 5  # entries before the snapshot are gone
    # A fourth member joins: it only knows the members' addresses and gets the snapshot.
    joiner = await cluster.start(4, peers=[1, 2, 3])
    await leader.node.add_member(4, cluster.address(4))
    await cluster.until(lambda: joiner.kv.data.get("k11") == "11")
    assert joiner.kv.data == {f"k{i}": str(i) for i in range(12)}
    assert joiner.node.members() == {i: cluster.address(i) for i in (1, 2, 3, 4)}
    assert joiner.node.snapshot_index > 0


async def test_restart_from_storage_rebuilds_the_state_machine(cluster: Cluster) -> None:
    cluster.snapshot_interval = 4
    for node_id in (1, 2, 3):
        await cluster.start(node_id, bootstrap=[1, 2, 3])
    leader = await cluster.elect()
    for i in range(6):
        await leader.proposer.propose(put(f"k{i}", str(i)))
    await cluster.tick()
    victim_id = next(i for i in cluster.members if i != leader.node.node_id)
    stopped = await cluster.stop(victim_id)
    await leader.proposer.propose(put("while-down", "1"))
    restarted = await cluster.start(victim_id, storage=MemoryLog(stopped.storage.storage))
    await cluster.until(lambda: restarted.kv.data.get("while-down") == "1")
    assert restarted.kv.data == {**{f"k{i}": str(i) for i in range(6)}, "while-down": "1"}
    assert restarted.node.members() == {i: cluster.address(i) for i in (1, 2, 3)}


async def test_removed_member_is_dropped_from_the_transport(cluster: Cluster) -> None:
    for node_id in (1, 2, 3):
        await cluster.start(node_id, bootstrap=[1, 2, 3])
    leader = await cluster.elect()
    victim_id = next(i for i in cluster.members if i != leader.node.node_id)
    await leader.node.remove_member(victim_id)
    await cluster.settle()
    assert victim_id not in leader.transport.peers
    assert victim_id not in leader.node.members()
    await leader.proposer.propose(put("two", "members"))


def test_payload_envelope_round_trips_and_rejects_foreign_data() -> None:
    rid = bytes(range(16))
    assert unwrap_payload(wrap_payload(rid, b"payload")) == (rid, b"payload")
    with pytest.raises(ValueError):
        unwrap_payload(b"\x02" + rid)


class FailingLog(MemoryLog):
    """Storage whose writes start failing on demand, as a full or broken disk would."""

    broken = False

    def save(self, hard_state, entries, snapshot):  # type: ignore[no-untyped-def]
        if self.broken and entries:
            raise OSError(28, "No space left on device")
        super().save(hard_state, entries, snapshot)


async def test_storage_failure_stops_the_node_and_fails_the_proposal(cluster: Cluster) -> None:
    storage = FailingLog()
    one = await cluster.start(1, bootstrap=[1], storage=storage)
    await cluster.until(one.proposer.is_leader)
    await one.proposer.propose(put("before", "1"))
    storage.broken = True
    with pytest.raises(Unavailable):
        await one.proposer.propose(put("after", "1"))
    assert isinstance(one.node.failure, OSError)
    assert "after" not in one.kv.data
    assert not one.proposer.is_leader()
    with pytest.raises(NotLeader):
        await one.proposer.propose(put("later", "1"))


async def test_refused_conf_change_fails_only_the_caller(cluster: Cluster) -> None:
    one = await cluster.start(1, bootstrap=[1])
    await cluster.until(one.proposer.is_leader)
    with pytest.raises(RaftError):
        await one.node.add_member(1, cluster.address(1))  # already a member
    assert one.node.failure is None
    await one.proposer.propose(put("still", "works"))


class GatedLog(MemoryLog):
    """A 'disk' whose fsync blocks (in the driver's worker thread) until the test opens the gate."""

    durable = True

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.gate.set()

    def sync(self) -> None:
        assert self.gate.wait(10), "test never opened the gate"


async def _wait_for(condition: Callable[[], bool]) -> None:
    """Wait (in real time, bounded) for work done in the driver's worker thread."""
    async with asyncio.timeout(10):
        while not condition():
            await asyncio.sleep(0.001)


async def test_leader_sends_before_its_own_fsync_but_commits_only_after_it(cluster: Cluster) -> None:
    gated = GatedLog()
    one = await cluster.start(1, bootstrap=[1, 2, 3], storage=gated)
    others = [await cluster.start(i, bootstrap=[1, 2, 3]) for i in (2, 3)]
    await one.node.campaign()
    await _wait_for(one.proposer.is_leader)
    gated.gate.clear()
    entry_index = one.storage.last_index() + 1
    write = asyncio.ensure_future(one.proposer.propose(put("k", "v")))
    # The followers get (and acknowledge) the entry while the leader's own fsync is still blocked...
    await _wait_for(lambda: all(o.storage.last_index() >= entry_index for o in others))
    await cluster.settle()
    # ... but a quorum of acknowledgements must not commit it before the leader has it on disk.
    assert not write.done()
    assert "k" not in one.kv.data
    gated.gate.set()
    index = await asyncio.wait_for(write, 10)
    assert one.kv.data["k"] == "v" and index == entry_index


async def test_follower_acknowledges_only_after_its_fsync(cluster: Cluster) -> None:
    gated = GatedLog()
    one = await cluster.start(1, bootstrap=[1, 2, 3])
    slow = await cluster.start(2, bootstrap=[1, 2, 3], storage=gated)
    await cluster.start(3, bootstrap=[1, 2, 3])
    await one.node.campaign()
    await _wait_for(one.proposer.is_leader)
    # Let member 2 apply everything so far first: a later hard-state change (its commit index moving)
    # would block in the closed gate before the new entry is even written.
    await _wait_for(lambda: slow.node.applied_index >= one.node.applied_index)
    await cluster.settle()
    gated.gate.clear()
    entry_index = one.storage.last_index() + 1
    # Member 3 and the leader make a quorum: the write commits while member 2's fsync is blocked.
    await asyncio.wait_for(one.proposer.propose(put("k", "v")), 10)
    await _wait_for(lambda: slow.storage.last_index() >= entry_index)
    await cluster.settle()
    acks_from_slow = [
        m for m in cluster.network.delivered if m.frm == 2 and m.type == MessageType.APP_RESP and m.index >= entry_index
    ]
    assert acks_from_slow == []
    gated.gate.set()
    await _wait_for(
        lambda: any(
            m.frm == 2 and m.type == MessageType.APP_RESP and m.index >= entry_index for m in cluster.network.delivered
        )
    )


def test_disk_log_that_recorded_nothing_counts_as_empty(tmp_path: Path) -> None:
    opened = DiskLog.open(tmp_path)
    assert opened.is_empty()
    opened.close()
    reopened = DiskLog.open(tmp_path)  # the WAL exists now, but holds no state
    assert reopened.is_empty()
    reopened.save(HardState(term=1, vote=0, commit=0), [], None)
    reopened.sync()
    reopened.close()
    assert not DiskLog.open(tmp_path).is_empty()


async def test_wait_applied_returns_once_a_follower_applied_the_index(cluster: Cluster) -> None:
    for node_id in (1, 2, 3):
        await cluster.start(node_id, bootstrap=[1, 2, 3])
    leader = await cluster.elect()
    follower = next(m for i, m in cluster.members.items() if i != leader.node.node_id)
    index = await leader.proposer.propose(put("w", "1"))
    waiting = asyncio.ensure_future(follower.node.wait_applied(index))
    await cluster.until(waiting.done)
    assert follower.kv.data["w"] == "1"
    await follower.node.wait_applied(index - 1)  # already applied: returns at once
