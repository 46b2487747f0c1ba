"""Membership changes and snapshots at the level of the core."""

from __future__ import annotations

import pytest

from shoal.raft import confchange
from shoal.raft.core import Raft
from shoal.raft.errors import ConfChangeRefused, ProposalDropped
from shoal.raft.progress import ProgressState
from shoal.raft.storage import MemoryStorage
from shoal.raft.types import (
    ConfChange,
    ConfChangeType,
    ConfState,
    Entry,
    EntryType,
    Message,
    MessageType,
    Role,
    Snapshot,
    SnapshotMetadata,
)

from .netharness import Network, new_network, new_raft, new_storage, read_messages

MT = MessageType
ADD, REMOVE, UPDATE = ConfChangeType.ADD_NODE, ConfChangeType.REMOVE_NODE, ConfChangeType.UPDATE_NODE


# --- pure rules -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cc", "reachable", "refused"),
    [
        (ConfChange(ADD, 4), {1}, None),
        (ConfChange(ADD, 2), {1}, "already a member"),
        (ConfChange(ADD, 9), {1}, "cannot be reused"),
        (ConfChange(UPDATE, 2, b"addr"), {1}, None),
        (ConfChange(UPDATE, 7), {1}, "not a member"),
        (ConfChange(REMOVE, 7), {1, 2, 3}, "not a member"),
        (ConfChange(REMOVE, 3), {1, 2}, None),  # {1, 2} remain, both reachable
        (ConfChange(REMOVE, 3), {1}, "loss of quorum"),  # 1 of 2 remaining is not a quorum
        (ConfChange(REMOVE, 1), {1, 2, 3}, None),
        (ConfChange(ADD, 0), {1}, "invalid node id"),
    ],
)
def test_refusal_reason(cc: ConfChange, reachable: set[int], refused: str | None) -> None:
    conf = ConfState(voters=(1, 2, 3), removed=(9,))
    reason = confchange.refusal_reason(cc, conf, reachable)
    if refused is None:
        assert reason is None
    else:
        assert reason is not None and refused in reason


def test_refusal_of_removing_the_last_member() -> None:
    assert confchange.refusal_reason(ConfChange(REMOVE, 1), ConfState((1,)), {1}) == "cannot remove the last member"


def test_apply_is_idempotent_and_remembers_removed_ids() -> None:
    conf = ConfState((1, 2, 3))
    conf = confchange.apply(conf, ConfChange(REMOVE, 3))
    assert conf == ConfState((1, 2), (), (3,))
    assert confchange.apply(conf, ConfChange(REMOVE, 3)) == conf
    assert confchange.apply(conf, ConfChange(ADD, 3)) == conf  # never comes back
    conf = confchange.apply(conf, ConfChange(ADD, 4))
    assert confchange.apply(conf, ConfChange(ADD, 4)) == conf
    assert confchange.apply(conf, ConfChange(UPDATE, 4, b"x")) == conf


def test_conf_change_round_trips_through_bytes() -> None:
    cc = ConfChange(ADD, 2**40, b"10.1.2.3:2377")
    assert ConfChange.decode(cc.encode()) == cc
    with pytest.raises(ValueError):
        ConfChange.decode(b"\x00")


# --- in the core -------------------------------------------------------------------------


def conf_entry(cc: ConfChange) -> Entry:
    return Entry(0, 0, EntryType.CONF_CHANGE, cc.encode())


def leader_of_three() -> tuple[Network, Raft]:
    nt = new_network(None, None, None)
    nt.campaign(1)
    lead = nt.raft(1)
    lead.log.applied_to(lead.log.committed)
    return nt, lead


def test_only_one_conf_change_pending() -> None:
    nt, lead = leader_of_three()
    lead.step(Message(MT.PROP, frm=1, entries=(conf_entry(ConfChange(ADD, 4)),)))
    with pytest.raises(ProposalDropped, match="already pending"):
        lead.step(Message(MT.PROP, frm=1, entries=(conf_entry(ConfChange(ADD, 5)),)))
    # Once the first is applied, the next may go.
    lead.log.applied_to(lead.log.committed)
    nt.send(*read_messages(lead))
    lead.log.applied_to(lead.log.committed)
    lead.apply_conf_change(ConfChange(ADD, 4))
    lead.step(Message(MT.PROP, frm=1, entries=(conf_entry(ConfChange(ADD, 5)),)))


def test_new_leader_refuses_conf_changes_until_its_inherited_log_is_applied() -> None:
    # Entries 1-2 come from an earlier term; we do not know whether they hold conf changes
    # that are still to be applied, so no new change may be proposed before they are.
    storage = new_storage([1, 2, 3])
    storage.append([Entry(1, 1), Entry(1, 2)])
    r = new_raft(1, storage=storage)
    r.become_follower(1, 0)
    r.become_candidate()
    r.become_leader()
    assert r.pending_conf_index == 2
    with pytest.raises(ProposalDropped, match="already pending"):
        r.step(Message(MT.PROP, frm=1, entries=(conf_entry(ConfChange(ADD, 4)),)))
    r.log.commit_to(3)
    r.log.applied_to(2)
    r.step(Message(MT.PROP, frm=1, entries=(conf_entry(ConfChange(ADD, 4)),)))
    assert r.log.last_index() == 4


def test_campaign_blocked_while_committed_conf_change_is_unapplied() -> None:
    storage = new_storage([1, 2, 3])
    storage.append([Entry(1, 1, EntryType.CONF_CHANGE, ConfChange(REMOVE, 3).encode())])
    r = new_raft(1, storage=storage)
    r.log.commit_to(1)
    r.step(Message(MT.HUP, frm=1))
    assert r.role is Role.FOLLOWER
    r.log.applied_to(1)
    r.step(Message(MT.HUP, frm=1))
    assert r.role is Role.CANDIDATE


def test_leader_removed_steps_down_and_hands_over() -> None:
    _, lead = leader_of_three()
    lead.apply_conf_change(ConfChange(REMOVE, 1))
    assert lead.role is Role.FOLLOWER
    msgs = read_messages(lead)
    assert any(m.type is MT.TIMEOUT_NOW for m in msgs)
    assert not lead.promotable()


def test_removal_refused_when_remaining_members_unreachable() -> None:
    _, lead = leader_of_three()
    for _ in range(lead.election_timeout + 1):
        lead.tick()
    read_messages(lead)
    with pytest.raises(ConfChangeRefused, match="loss of quorum"):
        lead.step(Message(MT.PROP, frm=1, entries=(conf_entry(ConfChange(REMOVE, 2)),)))
    # Hearing from 3 again makes {1, 3} a reachable quorum of the remaining members.
    lead.step(Message(MT.HEARTBEAT_RESP, frm=3, to=1, term=1))
    lead.step(Message(MT.PROP, frm=1, entries=(conf_entry(ConfChange(REMOVE, 2)),)))


def test_removing_a_voter_can_commit_pending_entries() -> None:
    nt, lead = leader_of_three()
    nt.isolate(3)
    nt.isolate(2)
    lead.step(Message(MT.PROP, frm=1, entries=(Entry(0, 0, data=b"x"),)))
    committed = lead.log.committed
    lead.apply_conf_change(ConfChange(REMOVE, 2))
    lead.apply_conf_change(ConfChange(REMOVE, 3))
    assert lead.log.committed == committed + 1


# --- snapshots ----------------------------------------------------------------------------


def snapshot(index: int, term: int, voters: tuple[int, ...] = (1, 2)) -> Snapshot:
    return Snapshot(SnapshotMetadata(index, term, ConfState(voters)), b"data")


def test_follower_restores_newer_snapshot() -> None:
    r = new_raft(1, [1, 2])
    r.step(Message(MT.SNAP, frm=2, to=1, term=2, snapshot=snapshot(11, 2, (1, 2, 3))))
    assert r.log.committed == 11 and r.log.last_index() == 11 and r.log.term(11) == 2
    assert r.conf.voters == (1, 2, 3)
    assert [(m.type, m.index) for m in read_messages(r)] == [(MT.APP_RESP, 11)]


def test_follower_ignores_snapshot_covered_by_its_commit() -> None:
    r = new_raft(1, storage=_storage_with(5, term=1))
    r.become_follower(1, 2)
    r.log.commit_to(5)
    r.step(Message(MT.SNAP, frm=2, to=1, term=1, snapshot=snapshot(3, 1)))
    assert r.log.last_index() == 5
    assert [(m.type, m.index) for m in read_messages(r)] == [(MT.APP_RESP, 5)]


def test_follower_with_the_snapshot_entry_only_moves_its_commit() -> None:
    r = new_raft(1, storage=_storage_with(5, term=1))
    r.become_follower(1, 2)
    r.step(Message(MT.SNAP, frm=2, to=1, term=1, snapshot=snapshot(4, 1)))
    assert r.log.committed == 4 and r.log.last_index() == 5
    assert r.log.unstable.snapshot is None


def test_leader_sends_snapshot_when_follower_needs_compacted_entries() -> None:
    storage = _storage_with(5, term=1, voters=(1, 2))
    storage.create_snapshot(4, ConfState((1, 2)), b"state")
    storage.compact(4)
    r = new_raft(1, storage=storage)
    r.become_follower(1, 0)
    r.become_candidate()
    r.become_leader()
    read_messages(r)
    pr = r.trk.progress[2]
    pr.recent_active = True
    # 2 rejects: it only has index 1, which we compacted.
    r.step(Message(MT.APP_RESP, frm=2, to=1, term=2, index=5, reject=True, reject_hint=1))
    msgs = read_messages(r)
    assert [m.type for m in msgs] == [MT.SNAP]
    assert msgs[0].snapshot is not None and msgs[0].snapshot.metadata.index == 4
    assert pr.state is ProgressState.SNAPSHOT and pr.pending_snapshot == 4
    # Nothing else is sent while the snapshot is in flight.
    r.step(Message(MT.PROP, frm=1, entries=(Entry(0, 0, data=b"x"),)))
    assert [m.to for m in read_messages(r)] == []
    # A failed send returns the follower to probing after the next heartbeat answer.
    r.step(Message(MT.SNAP_STATUS, frm=2, reject=True))
    assert pr.state is ProgressState.PROBE and pr.is_paused()
    r.step(Message(MT.HEARTBEAT_RESP, frm=2, to=1, term=2))
    assert [m.type for m in read_messages(r)] == [MT.SNAP]
    # Once the follower acknowledges the snapshot, plain replication resumes.
    r.step(Message(MT.APP_RESP, frm=2, to=1, term=2, index=4))
    assert pr.state is ProgressState.REPLICATE
    assert [m.type for m in read_messages(r)] == [MT.APP]


def test_snapshot_skipped_for_inactive_follower() -> None:
    storage = _storage_with(5, term=1, voters=(1, 2))
    storage.create_snapshot(4, ConfState((1, 2)), b"state")
    storage.compact(4)
    r = new_raft(1, storage=storage)
    r.become_candidate()
    r.become_leader()
    read_messages(r)
    pr = r.trk.progress[2]
    pr.recent_active = False
    pr.next = 2  # it needs entries we compacted
    r.step(Message(MT.PROP, frm=1, entries=(Entry(0, 0, data=b"x"),)))
    assert read_messages(r) == []
    assert pr.state is ProgressState.PROBE


def _storage_with(last: int, term: int, voters: tuple[int, ...] = (1, 2)) -> MemoryStorage:
    storage = new_storage(voters)
    storage.append([Entry(term, i) for i in range(1, last + 1)])
    return storage


def test_refused_batch_leaves_no_pending_conf_change() -> None:
    _, lead = leader_of_three()
    batch = (conf_entry(ConfChange(ADD, 4)), conf_entry(ConfChange(ADD, 5)))
    with pytest.raises(ProposalDropped, match="already pending"):
        lead.step(Message(MT.PROP, frm=1, entries=batch))
    last = lead.log.last_index()
    lead.step(Message(MT.PROP, frm=1, entries=(conf_entry(ConfChange(ADD, 4)),)))
    assert lead.log.last_index() == last + 1
