"""Pre-vote, check-quorum, leader transfer, read index, proposal dropping, flow control."""

from __future__ import annotations

import pytest

from shoal.raft.errors import ProposalDropped
from shoal.raft.progress import ProgressState
from shoal.raft.types import Entry, Message, MessageType, ReadState, Role

from .netharness import new_network, new_raft, read_messages

MT = MessageType


def tick_until_election(r: object, times: int) -> None:
    for _ in range(times):
        r.tick()  # type: ignore[attr-defined]


# --- pre-vote -----------------------------------------------------------------------------


def test_prevote_isolated_node_does_not_bump_its_term() -> None:
    nt = new_network(None, None, None, pre_vote=True)
    nt.campaign(1)
    nt.isolate(3)
    for _ in range(5):
        nt.campaign(3)
    r3 = nt.raft(3)
    assert r3.term == 1
    assert r3.role is Role.PRE_CANDIDATE


def test_prevote_rejoining_node_does_not_disrupt_leader() -> None:
    nt = new_network(None, None, None, pre_vote=True)
    nt.campaign(1)
    nt.isolate(3)
    nt.propose(1, b"while 3 was away")
    nt.campaign(3)
    nt.recover()
    # 3 pre-campaigns with a stale log: refused, and the leader keeps its term.
    nt.campaign(3)
    assert nt.raft(1).role is Role.LEADER and nt.raft(1).term == 1
    assert nt.raft(3).role is Role.FOLLOWER or nt.raft(3).role is Role.PRE_CANDIDATE
    nt.propose(1, b"after")
    assert nt.raft(3).log.committed == nt.raft(1).log.committed


def test_prevote_is_granted_for_a_future_term_without_changing_voter_state() -> None:
    r = new_raft(1, [1, 2, 3], pre_vote=True)
    r.become_follower(2, 0)
    r.step(Message(MT.PRE_VOTE, frm=2, to=1, term=3, log_term=0, index=0))
    msgs = read_messages(r)
    assert [(m.type, m.term, m.reject) for m in msgs] == [(MT.PRE_VOTE_RESP, 3, False)]
    assert (r.term, r.vote) == (2, 0)


def test_prevote_win_starts_a_real_election() -> None:
    nt = new_network(None, None, None, pre_vote=True)
    nt.campaign(1)
    r1 = nt.raft(1)
    assert r1.role is Role.LEADER and r1.term == 1
    types = [m.type for m in nt.delivered]
    assert types.index(MT.PRE_VOTE) < types.index(MT.VOTE)


def test_prevote_candidate_with_stale_log_is_refused() -> None:
    nt = new_network(None, None, None, pre_vote=True)
    nt.campaign(1)
    nt.isolate(3)
    nt.propose(1, b"x")
    nt.recover()
    nt.isolate(1)
    # 3 lacks an entry 2 has: 2 refuses, so 3 cannot win its pre-election.
    nt.campaign(3)
    assert nt.raft(3).role is Role.PRE_CANDIDATE
    nt.campaign(2)
    assert nt.raft(2).role is Role.LEADER


# --- check-quorum ---------------------------------------------------------------------------


def test_check_quorum_leader_steps_down_without_quorum() -> None:
    nt = new_network(None, None, None, check_quorum=True)
    nt.campaign(1)
    nt.isolate(1)
    r1 = nt.raft(1)
    # The first check after losing contact still sees the answers to the election; the
    # next one, an election timeout later, finds nobody.
    for _ in range(2 * r1.election_timeout):
        r1.tick()
        nt.send(*read_messages(r1))
    assert r1.role is Role.FOLLOWER


def test_check_quorum_leader_stays_with_quorum() -> None:
    nt = new_network(None, None, None, check_quorum=True)
    nt.campaign(1)
    nt.isolate(3)
    r1 = nt.raft(1)
    for _ in range(3 * r1.election_timeout):
        r1.tick()
        nt.send(*read_messages(r1))
    assert r1.role is Role.LEADER


def test_check_quorum_followers_ignore_votes_while_leader_is_alive() -> None:
    nt = new_network(None, None, None, check_quorum=True)
    nt.campaign(1)
    # 3 times out (it lost contact) while 2 still hears from 1: 2 ignores 3's vote request.
    r3 = nt.raft(3)
    r3.become_candidate()
    nt.send(*read_messages(r3))
    assert nt.raft(2).term == 1
    assert nt.raft(1).role is Role.LEADER


def test_stale_leader_learns_new_term_from_answer_to_its_heartbeat() -> None:
    nt = new_network(None, None, None, pre_vote=True, check_quorum=True)
    nt.campaign(1)
    nt.isolate(1)
    for r in (nt.raft(2), nt.raft(3)):
        r.election_elapsed = r.election_timeout  # their lease on 1 expired
    nt.campaign(2)
    assert nt.raft(2).role is Role.LEADER and nt.raft(2).term == 2
    nt.recover()
    r1 = nt.raft(1)
    assert r1.role is Role.LEADER and r1.term == 1
    # 1's heartbeat is answered with term 2 and 1 steps down.
    r1.step(Message(MT.BEAT, frm=1))
    nt.send(*read_messages(r1))
    assert r1.role is Role.FOLLOWER and r1.term == 2


# --- leader transfer --------------------------------------------------------------------


def test_transfer_to_up_to_date_follower() -> None:
    nt = new_network(None, None, None)
    nt.campaign(1)
    nt.send(Message(MT.TRANSFER_LEADER, frm=2, to=1))
    assert nt.raft(2).role is Role.LEADER
    assert nt.raft(1).role is Role.FOLLOWER and nt.raft(1).lead == 2


def test_transfer_waits_for_transferee_to_catch_up() -> None:
    nt = new_network(None, None, None)
    nt.campaign(1)
    nt.isolate(3)
    nt.propose(1, b"x")
    nt.recover()
    lead = nt.raft(1)
    # Hold back the append to 3 so we can watch the transfer wait.
    nt.ignore(MT.APP)
    nt.send(Message(MT.TRANSFER_LEADER, frm=3, to=1))
    assert lead.lead_transferee == 3 and lead.role is Role.LEADER
    nt.recover()
    lead.step(Message(MT.HEARTBEAT_RESP, frm=3, to=1, term=1))
    nt.send(*read_messages(lead))
    assert nt.raft(3).role is Role.LEADER


def test_proposals_are_refused_during_transfer() -> None:
    nt = new_network(None, None, None)
    nt.campaign(1)
    nt.isolate(3)
    lead = nt.raft(1)
    nt.send(Message(MT.TRANSFER_LEADER, frm=3, to=1))
    assert lead.lead_transferee == 3
    with pytest.raises(ProposalDropped):
        lead.step(Message(MT.PROP, frm=1, to=1, entries=(Entry(0, 0, data=b"x"),)))


def test_transfer_is_abandoned_after_an_election_timeout() -> None:
    nt = new_network(None, None, None)
    nt.campaign(1)
    nt.isolate(3)
    lead = nt.raft(1)
    nt.send(Message(MT.TRANSFER_LEADER, frm=3, to=1))
    for _ in range(lead.election_timeout):
        lead.tick()
    assert lead.lead_transferee == 0 and lead.role is Role.LEADER
    nt.propose(1, b"accepted again")
    assert lead.log.committed == 2


def test_transfer_to_self_is_ignored() -> None:
    nt = new_network(None, None, None)
    nt.campaign(1)
    nt.send(Message(MT.TRANSFER_LEADER, frm=1, to=1))
    assert nt.raft(1).role is Role.LEADER and nt.raft(1).lead_transferee == 0


def test_timeout_now_skips_prevote_and_leases() -> None:
    nt = new_network(None, None, None, pre_vote=True, check_quorum=True)
    nt.campaign(1)
    nt.send(Message(MT.TRANSFER_LEADER, frm=3, to=1))
    assert nt.raft(3).role is Role.LEADER and nt.raft(3).term == 2


def test_follower_forwards_transfer_request_to_leader() -> None:
    nt = new_network(None, None, None)
    nt.campaign(1)
    nt.send(Message(MT.TRANSFER_LEADER, frm=3, to=2))
    assert nt.raft(3).role is Role.LEADER


# --- proposals without a leader ------------------------------------------------------------


def test_proposal_without_leader_is_dropped_with_error() -> None:
    r = new_raft(1, [1, 2, 3])
    with pytest.raises(ProposalDropped):
        r.step(Message(MT.PROP, frm=1, to=1, entries=(Entry(0, 0, data=b"x"),)))
    r.become_candidate()
    with pytest.raises(ProposalDropped):
        r.step(Message(MT.PROP, frm=1, to=1, entries=(Entry(0, 0, data=b"x"),)))
    assert r.log.last_index() == 0


def test_proposal_on_follower_is_forwarded_to_leader() -> None:
    r = new_raft(2, [1, 2, 3])
    r.become_follower(1, 1)
    r.step(Message(MT.PROP, frm=2, to=2, entries=(Entry(0, 0, data=b"x"),)))
    assert [(m.type, m.to) for m in read_messages(r)] == [(MT.PROP, 1)]


# --- read index -------------------------------------------------------------------------


def test_read_index_on_leader_needs_a_heartbeat_quorum() -> None:
    nt = new_network(None, None, None)
    nt.campaign(1)
    lead = nt.raft(1)
    nt.isolate(1)
    lead.step(Message(MT.READ_INDEX, frm=1, context=b"ctx1"))
    nt.send(*read_messages(lead))
    assert lead.read_states == []
    nt.recover()
    lead.step(Message(MT.READ_INDEX, frm=1, context=b"ctx2"))
    nt.send(*read_messages(lead))
    # Confirming the later request confirms the earlier one as well.
    assert lead.read_states == [ReadState(1, b"ctx1"), ReadState(1, b"ctx2")]


def test_read_index_from_follower_is_answered_via_leader() -> None:
    nt = new_network(None, None, None)
    nt.campaign(1)
    nt.propose(1, b"x")
    follower = nt.raft(2)
    follower.step(Message(MT.READ_INDEX, frm=2, context=b"r"))
    nt.send(*read_messages(follower))
    assert follower.read_states == [ReadState(2, b"r")]


def test_read_index_waits_for_new_leader_to_commit_in_its_term() -> None:
    nt = new_network(None, None, None)
    nt.campaign(1)
    nt.ignore(MT.APP)  # 2's empty entry of term 2 cannot commit
    nt.campaign(2)
    lead = nt.raft(2)
    assert lead.role is Role.LEADER and not lead.committed_entry_in_current_term()
    lead.step(Message(MT.READ_INDEX, frm=2, context=b"early"))
    nt.send(*read_messages(lead))
    assert lead.read_states == []
    nt.recover()
    nt.send(Message(MT.BEAT, frm=2, to=2))
    assert lead.read_states == [ReadState(2, b"early")]


def test_read_index_single_node_is_immediate() -> None:
    nt = new_network(None)
    nt.campaign(1)
    lead = nt.raft(1)
    lead.step(Message(MT.READ_INDEX, frm=1, context=b"solo"))
    assert lead.read_states == [ReadState(1, b"solo")]


def test_read_index_without_leader_is_dropped() -> None:
    r = new_raft(1, [1, 2, 3])
    with pytest.raises(ProposalDropped):
        r.step(Message(MT.READ_INDEX, frm=1, context=b"x"))


# --- flow control -----------------------------------------------------------------------


def test_probe_state_sends_one_append_until_answered() -> None:
    r = new_raft(1, [1, 2], max_inflight=10)
    r.become_candidate()
    r.become_leader()
    read_messages(r)
    for i in range(3):
        r.step(Message(MT.PROP, frm=1, to=1, entries=(Entry(0, 0, data=bytes([i])),)))
    msgs = read_messages(r)
    # The first proposal sent a probe; the next two wait for its answer.
    assert [m.type for m in msgs] == [MT.APP]
    assert r.trk.progress[2].state is ProgressState.PROBE
    # A heartbeat response unpauses the probe.
    r.step(Message(MT.HEARTBEAT_RESP, frm=2, to=1, term=1))
    assert [m.type for m in read_messages(r)] == [MT.APP]


def test_replicate_state_bounded_by_inflight_window() -> None:
    r = new_raft(1, [1, 2], max_inflight=2, max_size_per_msg=1)
    r.become_candidate()
    r.become_leader()
    r.step(Message(MT.APP_RESP, frm=2, to=1, term=1, index=r.log.last_index()))
    assert r.trk.progress[2].state is ProgressState.REPLICATE
    read_messages(r)
    for i in range(5):
        r.step(Message(MT.PROP, frm=1, to=1, entries=(Entry(0, 0, data=bytes([i])),)))
    msgs = read_messages(r)
    assert len(msgs) == 2  # the window is full
    assert r.trk.progress[2].is_paused()
    r.step(Message(MT.APP_RESP, frm=2, to=1, term=1, index=msgs[0].index + len(msgs[0].entries)))
    assert len(read_messages(r)) == 1


def test_rejected_append_backs_off_by_whole_terms() -> None:
    nt = new_network(None, None, None)
    nt.campaign(1)
    nt.isolate(1)
    for i in range(5):
        nt.propose(1, bytes([i]))  # uncommitted entries of term 1 on 1 only
    nt.recover()
    nt.isolate(1)
    nt.campaign(2)
    nt.propose(2, b"new")
    nt.recover()
    nt.send(Message(MT.BEAT, frm=2, to=2))  # the heartbeat answer unpauses the probe to 1
    nt.propose(2, b"newer")
    want = [(e.term, e.data) for e in nt.raft(2).log.all_entries()]
    assert [(e.term, e.data) for e in nt.raft(1).log.all_entries()] == want
    rejections = [m for m in nt.delivered if m.type is MT.APP_RESP and m.reject]
    assert len(rejections) <= 2


def test_max_entries_per_append() -> None:
    from shoal.raft.config import Config
    from shoal.raft.core import Raft

    from .netharness import QuietLogger, new_storage

    r = Raft(Config(id=1, storage=new_storage([1, 2]), max_entries_per_msg=2, logger=QuietLogger()))
    r.become_candidate()
    r.become_leader()
    r.step(Message(MT.APP_RESP, frm=2, to=1, term=1, index=1))
    read_messages(r)
    r.trk.progress[2].become_probe()
    for i in range(5):
        r.step(Message(MT.PROP, frm=1, to=1, entries=(Entry(0, 0, data=bytes([i])),)))
    msgs = read_messages(r)
    assert [len(m.entries) for m in msgs] == [1]  # probing: one message, with the first proposal
    r.step(Message(MT.APP_RESP, frm=2, to=1, term=1, index=2))
    assert [len(m.entries) for m in read_messages(r)] == [2, 2]
