"""RawNode: the Ready/advance contract a driver relies on."""

from __future__ import annotations

import random

import pytest

from shoal.raft.config import Config
from shoal.raft.core import CAMPAIGN_TRANSFER
from shoal.raft.errors import ProposalDropped, StepLocalMsg, StepPeerNotFound
from shoal.raft.rawnode import RawNode
from shoal.raft.storage import MemoryStorage
from shoal.raft.types import (
    ConfChange,
    ConfChangeType,
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    Ready,
    Role,
    SoftState,
)
from shoal.testing.raft_mutations import vote_not_synced

from .netharness import QuietLogger

MT = MessageType


def new_node(node_id: int = 1, storage: MemoryStorage | None = None, applied: int = 0) -> RawNode:
    return RawNode(
        Config(
            id=node_id,
            storage=storage if storage is not None else MemoryStorage(),
            rand=random.Random(node_id),
            logger=QuietLogger(),
            applied=applied,
        )
    )


def persist(storage: MemoryStorage, rd: Ready) -> None:
    if rd.snapshot is not None:
        storage.apply_snapshot(rd.snapshot)
    storage.append(list(rd.entries))
    if rd.hard_state is not None:
        storage.set_hard_state(rd.hard_state)


def drain(node: RawNode, storage: MemoryStorage) -> list[Ready]:
    readies = []
    while node.has_ready():
        rd = node.ready()
        persist(storage, rd)
        node.advance(rd)
        readies.append(rd)
    return readies


def elect(node: RawNode, storage: MemoryStorage) -> None:
    """Campaign and grant every (pre-)vote request, answering as the other members."""
    node.campaign()
    while not node.is_leader():
        rd = node.ready()
        persist(storage, rd)
        node.advance(rd)
        for m in rd.messages:
            kind = MT.PRE_VOTE_RESP if m.type is MT.PRE_VOTE else MT.VOTE_RESP
            node.step(Message(kind, frm=m.to, to=m.frm, term=m.term))
    drain(node, storage)


def test_single_node_bootstrap_campaign_propose_commit() -> None:
    storage = MemoryStorage()
    node = new_node(1, storage)
    node.bootstrap([1], {1: b"10.0.0.1:2377"})
    rd = node.ready()
    assert rd.hard_state == HardState(1, 0, 1)
    assert [e.type for e in rd.entries] == [EntryType.CONF_CHANGE]
    assert ConfChange.decode(rd.entries[0].data) == ConfChange(ConfChangeType.ADD_NODE, 1, b"10.0.0.1:2377")
    assert rd.committed_entries == rd.entries
    assert rd.must_sync
    persist(storage, rd)
    node.advance(rd)
    node.campaign()
    rd = node.ready()
    assert rd.soft_state == SoftState(1, Role.LEADER)
    assert rd.hard_state is not None and rd.hard_state.term == 2 and rd.hard_state.vote == 1
    persist(storage, rd)
    node.advance(rd)
    drain(node, storage)
    node.propose(b"hello")
    rd = node.ready()
    assert [e.data for e in rd.entries] == [b"hello"]
    assert [e.data for e in rd.committed_entries] == [b"hello"]
    assert rd.must_sync
    persist(storage, rd)
    node.advance(rd)
    assert not node.has_ready()


def test_must_sync_only_for_entries_term_or_vote() -> None:
    """A Ready that only moves the commit index need not be fsynced."""
    storage = MemoryStorage()
    node = new_node(2, storage)
    node.bootstrap([1, 2, 3])
    drain(node, storage)
    node.step(Message(MT.APP, frm=1, to=2, term=1, log_term=1, index=3, entries=(Entry(1, 4, data=b"x"),)))
    rd = node.ready()
    assert rd.must_sync  # new entries
    persist(storage, rd)
    node.advance(rd)
    node.step(Message(MT.HEARTBEAT, frm=1, to=2, term=1, commit=4))
    rd = node.ready()
    assert rd.hard_state == HardState(1, 0, 4)
    assert not rd.must_sync  # only the commit index moved
    node.advance(rd)
    # (a transfer-initiated vote, which a follower grants even while it has a leader)
    node.step(Message(MT.VOTE, frm=3, to=2, term=5, log_term=1, index=4, context=CAMPAIGN_TRANSFER))
    rd = node.ready()
    assert rd.must_sync  # term and vote
    assert rd.hard_state == HardState(5, 3, 4)
    assert [(m.type, m.to, m.reject) for m in rd.messages] == [(MT.VOTE_RESP, 3, False)]


def vote_only_ready() -> Ready:
    """The Ready of a vote granted in a term the node already reached: only the vote changes.

    A stale candidate moves the node to term 5 (its log is behind, so no vote); another
    candidate of term 5 then gets the vote. Lose that vote in a crash and the node can
    vote again in term 5.
    """
    storage = MemoryStorage()
    node = new_node(1, storage)
    node.bootstrap([1, 2, 3])
    drain(node, storage)
    node.step(Message(MT.VOTE, frm=2, to=1, term=5, log_term=0, index=0))
    rejected = drain(node, storage)
    assert [(m.type, m.to, m.reject) for rd in rejected for m in rd.messages] == [(MT.VOTE_RESP, 2, True)]
    assert storage.initial_state()[0] == HardState(5, 0, 3)
    node.step(Message(MT.VOTE, frm=3, to=1, term=5, log_term=1, index=3))
    rd = node.ready()
    assert rd.hard_state == HardState(5, 3, 3)
    assert [(m.type, m.to, m.reject) for m in rd.messages] == [(MT.VOTE_RESP, 3, False)]
    return rd


def test_a_vote_alone_must_be_synced() -> None:
    assert vote_only_ready().must_sync


def test_the_vote_sync_test_catches_the_unsynced_vote_mutation() -> None:
    with vote_not_synced():
        assert not vote_only_ready().must_sync


def test_ready_twice_without_advance_is_an_error() -> None:
    node = new_node()
    node.bootstrap([1])
    node.ready()
    with pytest.raises(RuntimeError):
        node.ready()


def test_advance_with_a_stale_ready_is_an_error() -> None:
    node = new_node()
    node.bootstrap([1])
    rd = node.ready()
    node.advance(rd)
    with pytest.raises(RuntimeError):
        node.advance(rd)


def test_bootstrap_requires_an_empty_node() -> None:
    storage = MemoryStorage()
    node = new_node(1, storage)
    node.bootstrap([1])
    drain(node, storage)
    with pytest.raises(RuntimeError):
        new_node(1, storage).bootstrap([1])


def test_restart_from_storage_keeps_term_vote_and_log() -> None:
    storage = MemoryStorage()
    node = new_node(1, storage)
    node.bootstrap([1])
    drain(node, storage)
    node.campaign()
    drain(node, storage)
    node.propose(b"a")
    drain(node, storage)
    restarted = new_node(1, storage)
    st = restarted.status()
    assert st.hard_state == HardState(2, 1, 3)
    assert st.soft_state.role is Role.FOLLOWER
    # Committed entries are handed out again (the state machine is rebuilt from them),
    # including the bootstrap conf change, which restores the membership.
    rd = restarted.ready()
    assert [e.index for e in rd.committed_entries] == [1, 2, 3]
    restarted.advance(rd)
    assert restarted.conf_state().voters == (1,)
    restarted.campaign()
    assert restarted.is_leader()


def test_restart_with_applied_index_does_not_reapply() -> None:
    storage = MemoryStorage()
    node = new_node(1, storage)
    node.bootstrap([1])
    drain(node, storage)
    node.campaign()
    drain(node, storage)
    node.propose(b"a")
    drain(node, storage)
    snap = storage.create_snapshot(2, node.conf_state(), b"state@2")
    storage.compact(2)
    restarted = new_node(1, storage, applied=snap.metadata.index)
    rd = restarted.ready()
    assert [e.data for e in rd.committed_entries] == [b"a"]
    assert restarted.conf_state().voters == (1,)


def test_step_refuses_local_messages_and_unknown_responders() -> None:
    node = new_node(1)
    node.bootstrap([1, 2, 3])
    with pytest.raises(StepLocalMsg):
        node.step(Message(MT.HUP, frm=2, to=1))
    with pytest.raises(StepPeerNotFound):
        node.step(Message(MT.APP_RESP, frm=9, to=1, term=1))


def test_proposal_forwarded_to_a_leader_that_cannot_take_it_is_swallowed() -> None:
    """A peer's proposal we cannot accept is lost like a dropped message, not an error."""
    node = new_node(1)
    node.bootstrap([1, 2, 3])
    node.step(Message(MT.PROP, frm=2, to=1, entries=()))  # no leader: dropped quietly
    with pytest.raises(ProposalDropped):
        node.propose(b"mine")


def test_messages_from_removed_members_are_ignored() -> None:
    storage = MemoryStorage()
    node = new_node(1, storage)
    node.bootstrap([1, 2, 3])
    drain(node, storage)
    elect(node, storage)
    for peer in (2, 3):
        node.step(Message(MT.APP_RESP, frm=peer, to=1, term=2, index=4))
    drain(node, storage)
    node.propose_conf_change(ConfChange(ConfChangeType.REMOVE_NODE, 3))
    drain(node, storage)
    node.step(Message(MT.APP_RESP, frm=2, to=1, term=2, index=5))
    drain(node, storage)
    assert node.conf_state().voters == (1, 2)
    assert node.conf_state().removed == (3,)
    # A vote request from the removed member at a higher term changes nothing.
    node.step(Message(MT.VOTE, frm=3, to=1, term=9, log_term=2, index=9))
    assert node.status().hard_state.term == 2
    assert node.is_leader()


def test_report_snapshot_and_unreachable_move_progress_to_probe() -> None:
    storage = MemoryStorage()
    node = new_node(1, storage)
    node.bootstrap([1, 2])
    drain(node, storage)
    elect(node, storage)
    node.step(Message(MT.APP_RESP, frm=2, to=1, term=2, index=3))
    assert node.status().progress[2].startswith("REPLICATE")
    node.report_unreachable(2)
    assert node.status().progress[2].startswith("PROBE")


def test_transfer_leader_api() -> None:
    storage = MemoryStorage()
    node = new_node(1, storage)
    node.bootstrap([1, 2])
    drain(node, storage)
    elect(node, storage)
    node.step(Message(MT.APP_RESP, frm=2, to=1, term=2, index=3))
    drain(node, storage)
    node.transfer_leader(2)
    rd = node.ready()
    assert [m.type for m in rd.messages] == [MT.TIMEOUT_NOW]
    assert node.status().lead_transferee == 2


def test_propose_batch_appends_all_entries_in_one_go() -> None:
    storage = MemoryStorage()
    node = new_node(1, storage)
    node.bootstrap([1, 2])
    drain(node, storage)
    elect(node, storage)
    node.step(Message(MT.APP_RESP, frm=2, to=1, term=2, index=3))
    drain(node, storage)
    node.propose_batch([b"a", b"b", b"c"])
    rd = node.ready()
    assert [e.data for e in rd.entries] == [b"a", b"b", b"c"]
    assert [len(m.entries) for m in rd.messages if m.type is MT.APP] == [3]
    node.advance(rd)
    node.transfer_leader(2)
    with pytest.raises(ProposalDropped):
        node.propose_batch([b"d", b"e"])
