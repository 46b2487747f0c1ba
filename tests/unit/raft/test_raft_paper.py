"""The rules of the Raft paper (sections 5.1-5.4), one rule per test."""

from __future__ import annotations

import pytest

from shoal.raft.core import Raft
from shoal.raft.types import Entry, Message, MessageType, Role

from .netharness import (
    BlackHole,
    entries_of,
    new_network,
    new_raft,
    read_messages,
    storage_with_terms,
)

MT = MessageType


def elect(r: Raft) -> None:
    """Make ``r`` leader by timing out and collecting a quorum of votes by hand."""
    r.become_candidate()
    if r.trk.is_singleton():
        r.become_leader()
    for peer in r.trk.ids():
        if peer != r.id:
            r.step(Message(MT.VOTE_RESP, to=r.id, frm=peer, term=r.term))
    assert r.role is Role.LEADER
    read_messages(r)


def commit_noop_entry(r: Raft) -> None:
    """Replicate the new leader's empty entry to everyone and apply it (5.4.2)."""
    for peer in r.trk.ids():
        if peer != r.id:
            r.step(Message(MT.APP_RESP, frm=peer, to=r.id, term=r.term, index=r.log.last_index()))
    assert r.log.committed == r.log.last_index()
    read_messages(r)
    r.log.applied_to(r.log.committed)


# --- 5.1 terms ------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.FOLLOWER, Role.CANDIDATE, Role.LEADER])
def test_higher_term_makes_any_role_a_follower_of_that_term(role: Role) -> None:
    r = new_raft(1, [1, 2, 3])
    if role is Role.CANDIDATE:
        r.become_candidate()
    elif role is Role.LEADER:
        elect(r)
    r.step(Message(MT.APP, frm=2, to=1, term=5))
    assert r.term == 5
    assert r.role is Role.FOLLOWER
    assert r.lead == 2


def test_stale_term_message_is_ignored() -> None:
    r = new_raft(1, [1, 2, 3])
    r.become_follower(2, 0)
    r.step(Message(MT.APP, frm=2, to=1, term=1, entries=(Entry(1, 1),)))
    assert r.log.last_index() == 0
    assert read_messages(r) == []


def test_nodes_start_as_followers() -> None:
    r = new_raft(1, [1, 2, 3])
    assert r.role is Role.FOLLOWER and r.term == 0 and r.lead == 0


# --- 5.2 leader election ----------------------------------------------------------------


def test_leader_sends_heartbeats_every_heartbeat_tick() -> None:
    r = new_raft(1, [1, 2, 3], heartbeat=1)
    elect(r)
    r.tick()
    msgs = sorted(read_messages(r), key=lambda m: m.to)
    assert [(m.type, m.to, m.term) for m in msgs] == [(MT.HEARTBEAT, 2, 1), (MT.HEARTBEAT, 3, 1)]


@pytest.mark.parametrize("role", [Role.FOLLOWER, Role.CANDIDATE])
def test_election_timeout_starts_election_for_next_term(role: Role) -> None:
    r = new_raft(1, [1, 2, 3], election=10)
    if role is Role.CANDIDATE:
        r.become_candidate()
    term = r.term
    for _ in range(2 * 10):
        r.tick()
    assert r.term == term + 1
    assert r.role is Role.CANDIDATE
    assert r.trk.votes == {1: True}
    assert r.vote == 1
    msgs = sorted(read_messages(r), key=lambda m: m.to)
    assert [(m.type, m.to, m.term) for m in msgs] == [(MT.VOTE, 2, term + 1), (MT.VOTE, 3, term + 1)]


@pytest.mark.parametrize(
    ("size", "votes", "want"),
    [
        (1, {}, Role.LEADER),
        (3, {2: True, 3: True}, Role.LEADER),
        (3, {2: True}, Role.LEADER),
        (5, {2: True, 3: True, 4: True, 5: True}, Role.LEADER),
        (5, {2: True, 3: True}, Role.LEADER),
        (3, {2: False, 3: False}, Role.FOLLOWER),  # lost: back to follower
        (5, {2: False, 3: False, 4: False}, Role.FOLLOWER),
        (3, {}, Role.CANDIDATE),  # no answer yet
        (5, {2: True}, Role.CANDIDATE),
        (5, {2: False, 3: False}, Role.CANDIDATE),
    ],
)
def test_election_won_lost_or_pending_after_one_round(size: int, votes: dict[int, bool], want: Role) -> None:
    r = new_raft(1, range(1, size + 1))
    r.step(Message(MT.HUP, frm=1))
    for peer, granted in votes.items():
        r.step(Message(MT.VOTE_RESP, frm=peer, to=1, term=r.term, reject=not granted))
    assert r.role is want
    assert r.term == 1


@pytest.mark.parametrize(
    ("vote", "candidate", "granted"),
    [(0, 2, True), (0, 3, True), (2, 2, True), (3, 3, True), (2, 3, False), (3, 2, False)],
)
def test_follower_votes_at_most_once_per_term(vote: int, candidate: int, granted: bool) -> None:
    r = new_raft(1, [1, 2, 3])
    r.term, r.vote = 1, vote
    r.step(Message(MT.VOTE, frm=candidate, to=1, term=1))
    msgs = read_messages(r)
    assert [(m.type, m.to, m.reject) for m in msgs] == [(MT.VOTE_RESP, candidate, not granted)]


@pytest.mark.parametrize("leader_term", [1, 2])
def test_candidate_concedes_to_leader_of_same_or_newer_term(leader_term: int) -> None:
    r = new_raft(1, [1, 2, 3])
    r.step(Message(MT.HUP, frm=1))
    assert r.role is Role.CANDIDATE and r.term == 1
    r.step(Message(MT.APP, frm=2, to=1, term=leader_term))
    assert r.role is Role.FOLLOWER and r.term == leader_term and r.lead == 2


def test_randomized_election_timeout_in_range() -> None:
    seen = set()
    for seed in range(200):
        r = new_raft(1, [1, 2, 3], election=10, seed=seed)
        r.become_follower(r.term + 1, 0)
        seen.add(r.randomized_election_timeout)
        r.tick()
        ticks = 1
        while r.role is Role.FOLLOWER:
            r.tick()
            ticks += 1
        assert 10 <= ticks < 20
    assert seen == set(range(10, 20))


def test_election_needs_a_quorum_of_live_nodes() -> None:
    nt = new_network(None, BlackHole(), BlackHole())
    nt.campaign(1)
    assert nt.raft(1).role is Role.CANDIDATE
    nt = new_network(None, None, BlackHole())
    nt.campaign(1)
    assert nt.raft(1).role is Role.LEADER
    nt = new_network(None, BlackHole(), BlackHole(), None, None)
    nt.campaign(1)
    assert nt.raft(1).role is Role.LEADER


def test_dueling_candidates_one_wins_other_steps_down() -> None:
    a = new_raft(1, [1, 2, 3])
    b = new_raft(2, [1, 2, 3])
    c = new_raft(3, [1, 2, 3])
    nt = new_network(a, b, c)
    nt.cut(1, 3)
    nt.campaign(1)
    nt.campaign(3)
    # 1 wins with 2's vote; 3 only has its own vote and stays candidate.
    assert a.role is Role.LEADER and c.role is Role.CANDIDATE
    nt.recover()
    # 3 campaigns at a higher term; its log is behind so it cannot win, but it deposes 1.
    nt.campaign(3)
    assert c.role is Role.FOLLOWER and a.role is Role.FOLLOWER
    assert c.term == 2
    assert entries_of(a) == entries_of(b) == [(1, 1, b"")]
    assert c.log.last_index() == 0


def test_one_node_cluster_elects_itself_and_commits() -> None:
    nt = new_network(None)
    nt.campaign(1)
    nt.propose(1, b"some")
    nt.propose(1, b"more")
    r = nt.raft(1)
    assert r.role is Role.LEADER
    assert r.log.committed == 3


# --- 5.3 log replication ----------------------------------------------------------------


def test_leader_replicates_proposal_with_previous_index_and_term() -> None:
    r = new_raft(1, [1, 2, 3])
    elect(r)
    commit_noop_entry(r)
    r.step(Message(MT.PROP, frm=1, to=1, entries=(Entry(0, 0, data=b"some"),)))
    assert r.log.last_index() == 2
    msgs = sorted(read_messages(r), key=lambda m: m.to)
    assert [(m.type, m.to, m.index, m.log_term, m.commit) for m in msgs] == [
        (MT.APP, 2, 1, 1, 1),
        (MT.APP, 3, 1, 1, 1),
    ]
    assert all(m.entries == (Entry(1, 2, data=b"some"),) for m in msgs)


def test_leader_commits_once_a_majority_has_the_entry() -> None:
    r = new_raft(1, [1, 2, 3])
    elect(r)
    commit_noop_entry(r)
    r.step(Message(MT.PROP, frm=1, to=1, entries=(Entry(0, 0, data=b"some"),)))
    for m in read_messages(r):
        r.step(Message(MT.APP_RESP, frm=m.to, to=1, term=1, index=m.index + len(m.entries)))
    assert r.log.committed == 2
    # Followers then learn the new commit index.
    msgs = sorted(read_messages(r), key=lambda m: m.to)
    assert [(m.type, m.to, m.commit) for m in msgs] == [(MT.APP, 2, 2), (MT.APP, 3, 2)]


@pytest.mark.parametrize(
    ("size", "acks", "committed"),
    [
        (1, set(), True),
        (3, set(), False),
        (3, {2}, True),
        (3, {2, 3}, True),
        (5, set(), False),
        (5, {2}, False),
        (5, {2, 3}, True),
        (5, {2, 3, 4, 5}, True),
    ],
)
def test_commit_needs_acknowledgement_from_a_majority(size: int, acks: set[int], committed: bool) -> None:
    r = new_raft(1, range(1, size + 1))
    elect(r)
    commit_noop_entry(r)
    r.step(Message(MT.PROP, frm=1, to=1, entries=(Entry(0, 0, data=b"some"),)))
    for m in read_messages(r):
        if m.to in acks:
            r.step(Message(MT.APP_RESP, frm=m.to, to=1, term=m.term, index=m.index + len(m.entries)))
    assert (r.log.committed == 2) is committed


def test_committing_an_entry_commits_all_preceding_entries() -> None:
    for prior_terms in ([], [2], [1, 2]):
        storage = storage_with_terms([1, 2, 3], *prior_terms)
        r = new_raft(1, storage=storage)
        r.become_follower(2, 0)
        elect(r)
        r.step(Message(MT.PROP, frm=1, to=1, entries=(Entry(0, 0, data=b"some"),)))
        last = len(prior_terms) + 2
        assert r.log.committed == 0
        r.step(Message(MT.APP_RESP, frm=2, to=1, term=r.term, index=last))
        assert r.log.committed == last


def test_follower_applies_leader_commit_index() -> None:
    r = new_raft(1, [1, 2, 3])
    r.become_follower(1, 2)
    ents = (Entry(1, 1, data=b"a"), Entry(1, 2, data=b"b"))
    r.step(Message(MT.APP, frm=2, to=1, term=1, log_term=0, index=0, entries=ents, commit=1))
    assert r.log.committed == 1
    assert [e.data for e in r.log.next_committed_entries()] == [b"a"]


def test_follower_commit_stops_at_the_last_entry_the_append_confirmed() -> None:
    """Commit is min(leader commit, last new entry): entries past what the append matched
    may be a stale suffix from an older term that the leader's log does not hold."""
    r = new_raft(1, storage=storage_with_terms([1, 2, 3], 1, 1, 2))  # index 3 (term 2) is stale
    r.become_follower(3, 2)
    r.step(Message(MT.APP, frm=2, to=1, term=3, log_term=1, index=1, entries=(Entry(1, 2),), commit=3))
    assert [(m.type, m.index, m.reject) for m in read_messages(r)] == [(MT.APP_RESP, 2, False)]
    assert r.log.committed == 2
    assert [e.term for e in r.log.all_entries()] == [1, 1, 2]


@pytest.mark.parametrize(
    ("log_term", "index", "reject", "reject_hint"),
    [
        (0, 0, False, 0),  # match at the start
        (1, 1, False, 0),
        (2, 2, False, 0),
        (1, 2, True, 1),  # term mismatch at 2; our index 1 has term <= 1
        (3, 3, True, 2),  # index past our log: hint our last index
    ],
)
def test_follower_rejects_append_whose_previous_entry_does_not_match(
    log_term: int, index: int, reject: bool, reject_hint: int
) -> None:
    r = new_raft(1, storage=storage_with_terms([1, 2, 3], 1, 2))
    r.become_follower(2, 2)
    r.step(Message(MT.APP, frm=2, to=1, term=2, log_term=log_term, index=index, commit=0))
    msgs = read_messages(r)
    assert [(m.type, m.reject, m.reject_hint if m.reject else 0) for m in msgs] == [(MT.APP_RESP, reject, reject_hint)]


@pytest.mark.parametrize(
    ("index", "log_term", "ents", "want_terms"),
    [
        (2, 2, [3], [1, 2, 3]),  # append
        (1, 1, [3, 4], [1, 3, 4]),  # conflict: truncate and append
        (0, 0, [1], [1, 2]),  # already present: no truncation
        (0, 0, [3], [3]),  # conflict at the start
    ],
)
def test_follower_appends_and_truncates_conflicting_entries(
    index: int, log_term: int, ents: list[int], want_terms: list[int]
) -> None:
    r = new_raft(1, storage=storage_with_terms([1, 2, 3], 1, 2))
    r.become_follower(2, 2)
    entries = tuple(Entry(t, index + 1 + i) for i, t in enumerate(ents))
    r.step(Message(MT.APP, frm=2, to=1, term=2, log_term=log_term, index=index, entries=entries))
    assert [e.term for e in r.log.all_entries()] == want_terms


FIGURE_7_LEADER = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6]
FIGURE_7_FOLLOWERS = [
    [1, 1, 1, 4, 4, 5, 5, 6, 6],  # (a) missing entries
    [1, 1, 1, 4],  # (b)
    [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],  # (c) extra uncommitted entry
    [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],  # (d) extra entries of a later term
    [1, 1, 1, 4, 4, 4, 4],  # (e) diverged
    [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],  # (f) diverged over several terms
]


@pytest.mark.parametrize("follower_terms", FIGURE_7_FOLLOWERS)
def test_leader_brings_any_follower_log_in_line_with_its_own(follower_terms: list[int]) -> None:
    lead = new_raft(1, storage=storage_with_terms([1, 2, 3], *FIGURE_7_LEADER))
    lead.term = 8
    lead.log.committed = lead.log.last_index()
    follower = new_raft(2, storage=storage_with_terms([1, 2, 3], *follower_terms))
    follower.term = 7
    # Node 3 votes for 1 (it has nothing) so 1 becomes leader of term 9.
    nt = new_network(lead, follower, BlackHole())
    nt.peers[3] = new_raft(3, [1, 2, 3])
    nt.raft(3).term = 7
    nt.campaign(1)
    assert lead.role is Role.LEADER
    nt.propose(1, b"")
    assert entries_of(lead) == entries_of(follower)


# --- 5.4 safety ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cand_index", "cand_term", "granted"),
    [
        (1, 1, False),  # our last term is 2
        (2, 1, False),
        (3, 1, False),
        (1, 2, False),  # same last term, shorter
        (2, 2, True),
        (3, 2, True),
        (1, 3, True),  # higher last term
        (3, 3, True),
    ],
)
def test_vote_only_for_candidate_at_least_as_up_to_date(cand_index: int, cand_term: int, granted: bool) -> None:
    r = new_raft(1, storage=storage_with_terms([1, 2, 3], 1, 2))
    r.step(Message(MT.VOTE, frm=2, to=1, term=3, log_term=cand_term, index=cand_index))
    msgs = read_messages(r)
    assert [(m.type, m.reject) for m in msgs] == [(MT.VOTE_RESP, not granted)]


def test_candidate_vote_request_carries_its_last_log_position() -> None:
    r = new_raft(1, storage=storage_with_terms([1, 2, 3], 1, 1, 2))
    r.term = 2
    r.step(Message(MT.HUP, frm=1))
    msgs = read_messages(r)
    assert {(m.type, m.index, m.log_term, m.term) for m in msgs} == {(MT.VOTE, 3, 2, 3)}


def test_leader_never_commits_earlier_term_entry_by_counting() -> None:
    """Figure 8: an entry of an older term is committed only with one of the leader's own."""
    r = new_raft(1, storage=storage_with_terms([1, 2, 3], 1, 2))
    r.term = 2
    elect(r)  # term 3, appends an empty entry at index 3
    assert r.term == 3
    # A follower acknowledges index 2 (the term-2 entry) only: nothing may commit.
    r.step(Message(MT.APP_RESP, frm=2, to=1, term=3, index=2))
    assert r.log.committed == 0
    # Acknowledging the term-3 entry commits everything before it too.
    r.step(Message(MT.APP_RESP, frm=2, to=1, term=3, index=3))
    assert r.log.committed == 3


def test_elected_leader_has_all_committed_entries() -> None:
    nt = new_network(None, None, None, None, None)
    nt.campaign(1)
    nt.isolate(5)
    for i in range(3):
        nt.propose(1, f"e{i}".encode())
    committed = nt.raft(1).log.committed
    nt.recover()
    nt.isolate(1)
    # 5 missed the entries: it cannot be elected; one of 2-4 can, and has them all.
    nt.campaign(5)
    assert nt.raft(5).role is not Role.LEADER
    nt.campaign(2)
    lead = nt.raft(2)
    assert lead.role is Role.LEADER
    assert [e.data for e in lead.log.all_entries()][:committed] == [e.data for e in nt.raft(1).log.all_entries()][
        :committed
    ]


def test_old_leader_messages_are_ignored_after_new_election() -> None:
    nt = new_network(None, None, None)
    nt.campaign(1)
    nt.campaign(2)
    nt.campaign(1)  # term 3
    # A term-2 append from the deposed leader 2 with a conflicting entry is refused.
    nt.send(Message(MT.APP, frm=2, to=1, term=2, entries=(Entry(2, 3),)))
    nt.propose(1, b"new")
    want = [(1, 1, b""), (2, 2, b""), (3, 3, b""), (3, 4, b"new")]
    for i in (1, 2, 3):
        assert entries_of(nt.raft(i)) == want
        assert nt.raft(i).log.committed == 4


def test_proposal_forwarded_by_follower_is_committed() -> None:
    nt = new_network(None, None, None)
    nt.campaign(1)
    nt.propose(2, b"via follower")
    for i in (1, 2, 3):
        assert entries_of(nt.raft(i))[-1] == (1, 2, b"via follower")
        assert nt.raft(i).log.committed == 2


def test_log_replication_across_leader_changes() -> None:
    nt = new_network(None, None, None)
    nt.campaign(1)
    nt.propose(1, b"a")
    nt.campaign(2)
    nt.propose(1, b"b")  # 1 is now a follower: forwarded to 2
    for i in (1, 2, 3):
        r = nt.raft(i)
        assert [e.data for e in r.log.all_entries() if e.data] == [b"a", b"b"]
        assert r.log.committed == 4
