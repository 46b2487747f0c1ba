"""The raft state machine: roles, elections, replication, commit, transfer, reads.

``Raft.step`` consumes a message and ``tick`` advances logical time; both only change
memory and queue outgoing messages in ``msgs``. A role change swaps ``_step_role`` and
``_tick``. Nothing here touches a disk, a socket or a clock.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable
from typing import Any

from shoal.raft import confchange
from shoal.raft.config import Config
from shoal.raft.errors import (
    Compacted,
    ConfChangeRefused,
    ProposalDropped,
    SnapshotTemporarilyUnavailable,
    Unavailable,
)
from shoal.raft.log import RaftLog
from shoal.raft.progress import Progress, ProgressState, ProgressTracker
from shoal.raft.quorum import VoteResult, vote_result
from shoal.raft.readonly import ReadOnly
from shoal.raft.types import (
    NONE,
    ConfChange,
    ConfChangeType,
    ConfState,
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    ReadState,
    Role,
    Snapshot,
    SoftState,
)

MT = MessageType

CAMPAIGN_TRANSFER = b"CampaignTransfer"
"""Vote context marking an election started by a leader transfer: it may bypass leases."""


class CampaignKind(enum.Enum):
    PRE_ELECTION = "pre-election"
    ELECTION = "election"
    TRANSFER = "transfer"


def vote_response_type(kind: MessageType) -> MessageType:
    if kind is MT.VOTE:
        return MT.VOTE_RESP
    if kind is MT.PRE_VOTE:
        return MT.PRE_VOTE_RESP
    raise ValueError(f"not a vote message: {kind!r}")


class Raft:
    def __init__(self, config: Config) -> None:
        config.validate()
        self.id = config.id
        self.config = config
        self.logger = config.logger
        self.rand = config.rand
        self.log = RaftLog(config.storage, config.max_committed_size_per_ready)
        self.max_msg_size = config.max_size_per_msg
        self.max_msg_entries = config.max_entries_per_msg
        self.trk = ProgressTracker(config.max_inflight_msgs)
        self.conf = ConfState()
        self.term = 0
        self.vote = NONE
        self.lead = NONE
        self.role = Role.FOLLOWER
        self.msgs: list[Message] = []
        self.read_states: list[ReadState] = []
        self.lead_transferee = NONE
        # Index of the last conf change the leader may have appended but not yet applied.
        self.pending_conf_index = 0
        self.read_only = ReadOnly()
        self.pending_read_index_messages: list[Message] = []
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.ticks = 0
        self.check_quorum = config.check_quorum
        self.pre_vote = config.pre_vote
        self.heartbeat_timeout = config.heartbeat_tick
        self.election_timeout = config.election_tick
        self.randomized_election_timeout = self.election_timeout
        self._tick: Callable[[], None] = self._tick_election
        self._step_role: Callable[[Message], None] = self._step_follower

        hard_state, conf_state = config.storage.initial_state()
        self._switch_to_config(conf_state)
        if not hard_state.is_empty():
            self._load_state(hard_state)
        if config.applied > 0:
            self.log.applied_to(config.applied)
        self.become_follower(self.term, NONE)

    # --- state snapshots for the RawNode --------------------------------------------------

    def soft_state(self) -> SoftState:
        return SoftState(self.lead, self.role)

    def hard_state(self) -> HardState:
        return HardState(self.term, self.vote, self.log.committed)

    def _load_state(self, hs: HardState) -> None:
        if hs.commit > self.log.last_index():
            # Entries the hard state says are committed are gone: storage lost synced data.
            raise RuntimeError(f"{self.id} state.commit {hs.commit} is past the last index {self.log.last_index()}")
        # A commit below the snapshot index (a crash between saving a snapshot and its hard
        # state) is harmless: everything in the snapshot is committed.
        self.log.committed = max(hs.commit, self.log.committed)
        self.term = hs.term
        self.vote = hs.vote

    def promotable(self) -> bool:
        """Only a voter whose log is not being replaced by a snapshot may campaign."""
        return self.id in self.trk.voters and self.log.unstable.snapshot is None

    def _log_position(self) -> str:
        return f"[logterm: {self.log.last_term()}, index: {self.log.last_index()}, vote: {self.vote}]"

    def _info(self, msg: str) -> None:
        self.logger.info(f"{self.id} {msg}")

    # --- sending ----------------------------------------------------------------------

    def send(self, m: Message) -> None:
        term = m.term
        if m.type in _TERMED_EXPLICITLY:
            if term == 0:
                raise RuntimeError(f"term should be set when sending {m.type.name}")
        elif term != 0:
            raise RuntimeError(f"term should not be set when sending {m.type.name} (was {term})")
        elif m.type not in (MT.PROP, MT.READ_INDEX):
            # Forwarded proposals and reads are local in spirit and carry no term.
            term = self.term
        if m.frm == NONE or term != m.term:
            m = _with_sender(m, m.frm or self.id, term)
        self.msgs.append(m)

    def _send_append(self, to: int) -> None:
        self._maybe_send_append(to, send_if_empty=True)

    def _maybe_send_append(self, to: int, send_if_empty: bool) -> bool:
        """Send entries (or a snapshot) to ``to`` if its progress allows; True if sent."""
        pr = self.trk.progress[to]
        if pr.is_paused():
            return False
        try:
            prev_term = self.log.term(pr.next - 1)
            entries = self.log.entries(pr.next, self.max_msg_size)
            if self.max_msg_entries is not None:
                entries = entries[: self.max_msg_entries]
        except (Compacted, Unavailable):
            return self._maybe_send_snapshot(to, pr)
        if not entries and not send_if_empty:
            return False
        self.send(
            Message(
                MT.APP,
                to=to,
                index=pr.next - 1,
                log_term=prev_term,
                entries=tuple(entries),
                commit=self.log.committed,
            )
        )
        if pr.state is ProgressState.REPLICATE:
            if entries:
                last = entries[-1].index
                pr.optimistic_update(last)
                pr.inflights.add(last)
        elif pr.state is ProgressState.PROBE:
            pr.probe_sent = True
        return True

    def _maybe_send_snapshot(self, to: int, pr: Progress) -> bool:
        if not pr.recent_active:
            return False
        try:
            snap = self.log.snapshot()
        except SnapshotTemporarilyUnavailable:
            return False
        if snap.is_empty():
            raise RuntimeError("need a non-empty snapshot")
        self._info(
            f"sending snapshot [index: {snap.metadata.index}, term: {snap.metadata.term}] to {to} [{pr.describe()}]"
        )
        pr.become_snapshot(snap.metadata.index)
        self.send(Message(MT.SNAP, to=to, snapshot=snap))
        return True

    def _send_heartbeat(self, to: int, ctx: bytes) -> None:
        # Never tell a follower to commit past what it is known to hold.
        commit = min(self.trk.progress[to].match, self.log.committed)
        self.send(Message(MT.HEARTBEAT, to=to, commit=commit, context=ctx))

    def bcast_append(self) -> None:
        for node_id, _ in self.trk:
            if node_id != self.id:
                self._send_append(node_id)

    def bcast_heartbeat(self) -> None:
        self._bcast_heartbeat_with_ctx(self.read_only.last_pending_ctx())

    def _bcast_heartbeat_with_ctx(self, ctx: bytes) -> None:
        for node_id, _ in self.trk:
            if node_id != self.id:
                self._send_heartbeat(node_id, ctx)

    def _send_timeout_now(self, to: int) -> None:
        self.send(Message(MT.TIMEOUT_NOW, to=to))

    # --- commit -----------------------------------------------------------------------

    def maybe_commit(self) -> bool:
        return self.log.maybe_commit(self.trk.committed(), self.term)

    def committed_entry_in_current_term(self) -> bool:
        return self.log.term_or_zero(self.log.committed) == self.term

    def _append_entries(self, entries: list[Entry]) -> None:
        last = self.log.last_index()
        stamped = [Entry(term=self.term, index=last + 1 + i, type=e.type, data=e.data) for i, e in enumerate(entries)]
        self.log.append(stamped)
        self.trk.progress[self.id].maybe_update(self.log.last_index())
        # A single-voter group commits at once.
        if self.maybe_commit():
            self._release_pending_read_index_messages()

    # --- ticking ----------------------------------------------------------------------

    def tick(self) -> None:
        self.ticks += 1
        self._tick()

    def past_election_timeout(self) -> bool:
        return self.election_elapsed >= self.randomized_election_timeout

    def _reset_randomized_election_timeout(self) -> None:
        self.randomized_election_timeout = self.election_timeout + self.rand.randrange(self.election_timeout)

    def _tick_election(self) -> None:
        self.election_elapsed += 1
        if self.promotable() and self.past_election_timeout():
            self.election_elapsed = 0
            self.step(Message(MT.HUP, frm=self.id))

    def _tick_heartbeat(self) -> None:
        self.heartbeat_elapsed += 1
        self.election_elapsed += 1
        if self.election_elapsed >= self.election_timeout:
            self.election_elapsed = 0
            if self.check_quorum:
                self.step(Message(MT.CHECK_QUORUM, frm=self.id))
            # A transfer that did not finish within an election timeout is abandoned.
            if self.role is Role.LEADER and self.lead_transferee != NONE:
                self._info(f"abandons leadership transfer to {self.lead_transferee}: it took too long")
                self.abort_leader_transfer()
        if self.role is not Role.LEADER:
            return
        if self.heartbeat_elapsed >= self.heartbeat_timeout:
            self.heartbeat_elapsed = 0
            self.step(Message(MT.BEAT, frm=self.id))

    # --- role transitions -------------------------------------------------------------

    def _reset(self, term: int) -> None:
        if self.term != term:
            self.term = term
            self.vote = NONE
        self.lead = NONE
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self._reset_randomized_election_timeout()
        self.abort_leader_transfer()
        self.trk.reset_votes()
        last = self.log.last_index()
        for node_id in list(self.trk.progress):
            pr = Progress(last + 1, self.trk.max_inflight)
            if node_id == self.id:
                pr.match = last
            pr.last_heard_tick = self.trk.progress[node_id].last_heard_tick
            self.trk.progress[node_id] = pr
        self.pending_conf_index = 0
        self.read_only = ReadOnly()
        self.pending_read_index_messages = []

    def become_follower(self, term: int, lead: int) -> None:
        self._step_role = self._step_follower
        self._reset(term)
        self._tick = self._tick_election
        self.lead = lead
        self.role = Role.FOLLOWER
        self._info(f"became follower at term {self.term}")

    def become_candidate(self) -> None:
        if self.role is Role.LEADER:
            raise RuntimeError("invalid transition [leader -> candidate]")
        self._step_role = self._step_candidate
        self._reset(self.term + 1)
        self._tick = self._tick_election
        self.vote = self.id
        self.role = Role.CANDIDATE
        self._info(f"became candidate at term {self.term}")

    def become_pre_candidate(self) -> None:
        if self.role is Role.LEADER:
            raise RuntimeError("invalid transition [leader -> pre-candidate]")
        # A pre-candidate changes neither its term nor its vote.
        self._step_role = self._step_candidate
        self.trk.reset_votes()
        self._tick = self._tick_election
        self.lead = NONE
        self.role = Role.PRE_CANDIDATE
        self._info(f"became pre-candidate at term {self.term}")

    def become_leader(self) -> None:
        if self.role is Role.FOLLOWER:
            raise RuntimeError("invalid transition [follower -> leader]")
        self._step_role = self._step_leader
        self._reset(self.term)
        self._tick = self._tick_heartbeat
        self.lead = self.id
        self.role = Role.LEADER
        me = self.trk.progress[self.id]
        me.become_replicate()
        me.recent_active = True
        # No conf change may be proposed until everything in our log so far is applied:
        # that includes conf changes of earlier terms we do not know to be applied yet.
        self.pending_conf_index = self.log.last_index()
        # Commit an entry of our own term so that earlier entries commit and reads can be served.
        self._append_entries([Entry(term=0, index=0)])
        self._info(f"became leader at term {self.term}")

    # --- elections --------------------------------------------------------------------

    def _has_unapplied_conf_changes(self) -> bool:
        if self.log.applied >= self.log.committed:
            return False
        lo = max(self.log.applied + 1, self.log.first_index())
        entries = self.log.slice(lo, self.log.committed + 1)
        return any(e.type is EntryType.CONF_CHANGE for e in entries)

    def hup(self, kind: CampaignKind) -> None:
        if self.role is Role.LEADER:
            self._info("ignoring HUP because already leader")
            return
        if not self.promotable():
            self._info("is unpromotable and can not campaign")
            return
        if self._has_unapplied_conf_changes():
            self._info("cannot campaign: there are unapplied conf changes")
            return
        self._info(f"is starting a new election at term {self.term}")
        self.campaign(kind)

    def campaign(self, kind: CampaignKind) -> None:
        if kind is CampaignKind.PRE_ELECTION:
            self.become_pre_candidate()
            vote_msg = MT.PRE_VOTE
            # Ask for votes for the term we would use, without moving to it yet.
            term = self.term + 1
        else:
            self.become_candidate()
            vote_msg = MT.VOTE
            term = self.term
        if self._poll(self.id, vote_response_type(vote_msg), True) is VoteResult.WON:
            # A single-voter group wins at once.
            if kind is CampaignKind.PRE_ELECTION:
                self.campaign(CampaignKind.ELECTION)
            else:
                self.become_leader()
            return
        ctx = CAMPAIGN_TRANSFER if kind is CampaignKind.TRANSFER else b""
        for node_id in self.trk.ids():
            if node_id == self.id:
                continue
            self._info(
                f"[logterm: {self.log.last_term()}, index: {self.log.last_index()}] sent "
                f"{vote_msg.name} request to {node_id} at term {self.term}"
            )
            self.send(
                Message(
                    vote_msg,
                    to=node_id,
                    term=term,
                    index=self.log.last_index(),
                    log_term=self.log.last_term(),
                    context=ctx,
                )
            )

    def _poll(self, node_id: int, kind: MessageType, granted: bool) -> VoteResult:
        if granted:
            self._info(f"received {kind.name} from {node_id} at term {self.term}")
        else:
            self._info(f"received {kind.name} rejection from {node_id} at term {self.term}")
        self.trk.record_vote(node_id, granted)
        return self.trk.tally_votes()[2]

    # --- step: the term rules shared by every role ---------------------------------------

    def step(self, m: Message) -> None:
        if m.frm in self.trk.progress and m.frm != self.id:
            self.trk.progress[m.frm].last_heard_tick = self.ticks
        if m.term == 0:
            pass  # local message
        elif m.term > self.term:
            if m.type in (MT.VOTE, MT.PRE_VOTE):
                force = m.context == CAMPAIGN_TRANSFER
                in_lease = self.check_quorum and self.lead != NONE and self.election_elapsed < self.election_timeout
                if not force and in_lease:
                    # We heard from a live leader recently: this candidate must not disrupt it.
                    self._info(
                        f"{self._log_position()} ignored {m.type.name} from {m.frm} "
                        f"[logterm: {m.log_term}, index: {m.index}] "
                        f"at term {self.term}: lease is not expired"
                    )
                    return
            if m.type is MT.PRE_VOTE:
                pass  # a pre-vote never changes our term
            elif m.type is MT.PRE_VOTE_RESP and not m.reject:
                pass  # granted pre-votes carry the future term; we move there once we win
            else:
                self._info(f"received {m.type.name} with higher term {m.term} from {m.frm}")
                if m.type in (MT.APP, MT.HEARTBEAT, MT.SNAP):
                    self.become_follower(m.term, m.frm)
                else:
                    self.become_follower(m.term, NONE)
        elif m.term < self.term:
            if (self.check_quorum or self.pre_vote) and m.type in (MT.HEARTBEAT, MT.APP):
                # A stale leader (e.g. one that was partitioned) learns our term and steps
                # down; without this it would never hear a higher term once pre-vote blocks
                # our elections from reaching it.
                self.send(Message(MT.APP_RESP, to=m.frm))
            elif m.type is MT.PRE_VOTE:
                self.send(Message(MT.PRE_VOTE_RESP, to=m.frm, term=self.term, reject=True))
            return

        if m.type is MT.HUP:
            self.hup(CampaignKind.PRE_ELECTION if self.pre_vote else CampaignKind.ELECTION)
        elif m.type in (MT.VOTE, MT.PRE_VOTE):
            self._handle_vote_request(m)
        else:
            self._step_role(m)

    def _handle_vote_request(self, m: Message) -> None:
        can_vote = (
            self.vote == m.frm
            or (self.vote == NONE and self.lead == NONE)
            or (m.type is MT.PRE_VOTE and m.term > self.term)
        )
        if can_vote and self.log.is_up_to_date(m.index, m.log_term):
            self._info(
                f"{self._log_position()} cast {m.type.name} for {m.frm} "
                f"[logterm: {m.log_term}, index: {m.index}] at term {self.term}"
            )
            # Answer with the request's term: a pre-vote is granted "for" the future term.
            self.send(Message(vote_response_type(m.type), to=m.frm, term=m.term))
            if m.type is MT.VOTE:
                self.election_elapsed = 0
                self.vote = m.frm
        else:
            self._info(
                f"{self._log_position()} rejected {m.type.name} from {m.frm} "
                f"[logterm: {m.log_term}, index: {m.index}] "
                f"at term {self.term}"
            )
            self.send(Message(vote_response_type(m.type), to=m.frm, term=self.term, reject=True))

    # --- step: per role -----------------------------------------------------------------

    def _step_leader(self, m: Message) -> None:
        if m.type is MT.BEAT:
            self.bcast_heartbeat()
            return
        if m.type is MT.CHECK_QUORUM:
            if not self.trk.quorum_active():
                self._info("stepped down to follower since quorum is not active")
                self.become_follower(self.term, NONE)
            for node_id, peer in self.trk:
                if node_id != self.id:
                    peer.recent_active = False
            return
        if m.type is MT.PROP:
            self._leader_propose(m)
            return
        if m.type is MT.READ_INDEX:
            self._leader_read_index(m)
            return

        pr = self.trk.progress.get(m.frm)
        if pr is None:
            return
        if m.type is MT.APP_RESP:
            self._handle_append_response(m, pr)
        elif m.type is MT.HEARTBEAT_RESP:
            self._handle_heartbeat_response(m, pr)
        elif m.type is MT.SNAP_STATUS:
            if pr.state is not ProgressState.SNAPSHOT:
                return
            if m.reject:
                pr.pending_snapshot = 0
            pr.become_probe()
            # Wait for a heartbeat response before probing again.
            pr.probe_sent = True
        elif m.type is MT.UNREACHABLE:
            # Appends were probably lost: fall back to probing.
            if pr.state is ProgressState.REPLICATE:
                pr.become_probe()
        elif m.type is MT.TRANSFER_LEADER:
            self._handle_transfer_leader(m, pr)

    def _leader_propose(self, m: Message) -> None:
        if not m.entries:
            raise ProposalDropped("empty proposal")
        if self.id not in self.trk.progress:
            raise ProposalDropped(f"{self.id} was removed from the configuration")
        if self.lead_transferee != NONE:
            raise ProposalDropped(f"leadership is being transferred to {self.lead_transferee}")
        # Check the whole batch before changing anything: a refusal leaves no trace.
        pending_conf_index = self.pending_conf_index
        for i, entry in enumerate(m.entries):
            if entry.type is not EntryType.CONF_CHANGE:
                continue
            if pending_conf_index > self.log.applied:
                raise ProposalDropped(
                    f"a configuration change is already pending (index {pending_conf_index}, "
                    f"applied {self.log.applied})"
                )
            reason = confchange.refusal_reason(ConfChange.decode(entry.data), self.conf, self.reachable_voters())
            if reason is not None:
                raise ConfChangeRefused(reason)
            pending_conf_index = self.log.last_index() + i + 1
        self.pending_conf_index = pending_conf_index
        self._append_entries(list(m.entries))
        self.bcast_append()

    def reachable_voters(self) -> set[int]:
        """Voters heard from within the last election timeout, plus ourselves."""
        horizon = self.ticks - self.election_timeout
        return {
            node_id
            for node_id, pr in self.trk
            if node_id == self.id or (pr.last_heard_tick >= 0 and pr.last_heard_tick >= horizon)
        }

    def _leader_read_index(self, m: Message) -> None:
        if self.trk.is_singleton():
            self._respond_to_read_index(m, self.log.committed)
            return
        if not self.committed_entry_in_current_term():
            # Our commit index may lag the true one until an entry of our term commits.
            self.pending_read_index_messages.append(m)
            return
        self._start_read_index(m)

    def _start_read_index(self, m: Message) -> None:
        self.read_only.add_request(self.log.committed, m)
        self.read_only.recv_ack(self.id, m.context)
        self._bcast_heartbeat_with_ctx(m.context)

    def _release_pending_read_index_messages(self) -> None:
        if self.role is not Role.LEADER or not self.committed_entry_in_current_term():
            return
        pending, self.pending_read_index_messages = self.pending_read_index_messages, []
        for m in pending:
            if self.trk.is_singleton():
                self._respond_to_read_index(m, self.log.committed)
            else:
                self._start_read_index(m)

    def _respond_to_read_index(self, req: Message, index: int) -> None:
        if req.frm in (NONE, self.id):
            self.read_states.append(ReadState(index, req.context))
        else:
            self.send(Message(MT.READ_INDEX_RESP, to=req.frm, index=index, context=req.context))

    def _handle_append_response(self, m: Message, pr: Progress) -> None:
        pr.recent_active = True
        if m.reject:
            next_probe = m.reject_hint
            if m.log_term > 0:
                # Skip every entry of ours whose term is above the follower's term at the hint.
                next_probe, _ = self.log.find_conflict_by_term(m.reject_hint, m.log_term)
            if pr.maybe_decr_to(m.index, next_probe):
                if pr.state is ProgressState.REPLICATE:
                    pr.become_probe()
                self._send_append(m.frm)
            return
        was_paused = pr.is_paused()
        # An acknowledgement of exactly our match still ends probing (e.g. after a snapshot).
        if not pr.maybe_update(m.index) and not (pr.state is ProgressState.PROBE and pr.match == m.index):
            return
        if pr.state is ProgressState.PROBE:
            pr.become_replicate()
        elif pr.state is ProgressState.SNAPSHOT and pr.match + 1 >= self.log.first_index():
            # The follower caught up past our compaction point: plain appends work again.
            pr.become_probe()
            pr.become_replicate()
        elif pr.state is ProgressState.REPLICATE:
            pr.inflights.free_le(m.index)
        if self.maybe_commit():
            self._release_pending_read_index_messages()
            self.bcast_append()
        elif was_paused:
            self._send_append(m.frm)
        while self._maybe_send_append(m.frm, send_if_empty=False):
            pass
        if m.frm == self.lead_transferee and pr.match == self.log.last_index():
            self._info(f"sent TIMEOUT_NOW to {m.frm} after it caught up")
            self._send_timeout_now(m.frm)

    def _handle_heartbeat_response(self, m: Message, pr: Progress) -> None:
        pr.recent_active = True
        pr.probe_sent = False
        if pr.state is ProgressState.REPLICATE and pr.inflights.full():
            pr.inflights.free_first_one()
        if pr.match < self.log.last_index():
            self._send_append(m.frm)
        if not m.context:
            return
        acks = self.read_only.recv_ack(m.frm, m.context)
        if acks is None or vote_result(self.trk.voters, acks) is not VoteResult.WON:
            return
        for status in self.read_only.advance(m.context):
            self._respond_to_read_index(status.request, status.index)

    def _handle_transfer_leader(self, m: Message, pr: Progress) -> None:
        transferee = m.frm
        last = self.lead_transferee
        if last != NONE:
            if last == transferee:
                self._info(f"[term {self.term}] transfer leadership to {transferee} is in progress, ignored")
                return
            self.abort_leader_transfer()
        if transferee == self.id:
            self._info("is already leader; ignored transferring leadership to itself")
            return
        self._info(f"[term {self.term}] starts to transfer leadership to {transferee}")
        # The transfer must finish within an election timeout or it is abandoned.
        self.election_elapsed = 0
        self.lead_transferee = transferee
        if pr.match == self.log.last_index():
            self._send_timeout_now(transferee)
            self._info(f"sends TIMEOUT_NOW to {transferee} immediately as it already has up-to-date log")
        else:
            self._send_append(transferee)

    def abort_leader_transfer(self) -> None:
        self.lead_transferee = NONE

    def _step_candidate(self, m: Message) -> None:
        my_response = MT.PRE_VOTE_RESP if self.role is Role.PRE_CANDIDATE else MT.VOTE_RESP
        if m.type is MT.PROP:
            raise ProposalDropped(f"no leader at term {self.term}")
        if m.type is MT.APP:
            self.become_follower(m.term, m.frm)
            self._handle_append_entries(m)
        elif m.type is MT.HEARTBEAT:
            self.become_follower(m.term, m.frm)
            self._handle_heartbeat(m)
        elif m.type is MT.SNAP:
            self.become_follower(m.term, m.frm)
            self._handle_snapshot(m)
        elif m.type is my_response:
            result = self._poll(m.frm, m.type, not m.reject)
            granted, rejected, _ = self.trk.tally_votes()
            self._info(f"has received {granted} {m.type.name} votes and {rejected} vote rejections")
            if result is VoteResult.WON:
                if self.role is Role.PRE_CANDIDATE:
                    self.campaign(CampaignKind.ELECTION)
                else:
                    self.become_leader()
                    self.bcast_append()
            elif result is VoteResult.LOST:
                # Revert to follower at our own term (a pre-vote loss never moved it).
                self.become_follower(self.term, NONE)
        elif m.type is MT.TIMEOUT_NOW:
            self._info(f"[term {self.term} state {self.role.name}] ignored TIMEOUT_NOW from {m.frm}")

    def _step_follower(self, m: Message) -> None:
        if m.type is MT.PROP:
            if self.lead == NONE:
                raise ProposalDropped(f"no leader at term {self.term}; dropping proposal")
            self.send(_replace(m, to=self.lead))
        elif m.type is MT.APP:
            self.election_elapsed = 0
            self.lead = m.frm
            self._handle_append_entries(m)
        elif m.type is MT.HEARTBEAT:
            self.election_elapsed = 0
            self.lead = m.frm
            self._handle_heartbeat(m)
        elif m.type is MT.SNAP:
            self.election_elapsed = 0
            self.lead = m.frm
            self._handle_snapshot(m)
        elif m.type is MT.TRANSFER_LEADER:
            if self.lead == NONE:
                self._info(f"no leader at term {self.term}; dropping leader transfer msg")
                return
            self.send(_replace(m, to=self.lead))
        elif m.type is MT.TIMEOUT_NOW:
            self._info(f"[term {self.term}] received TIMEOUT_NOW from {m.frm} and starts an election")
            # Leader transfer skips pre-vote: the old leader asked for it, so it is not disruptive.
            self.hup(CampaignKind.TRANSFER)
        elif m.type is MT.READ_INDEX:
            if self.lead == NONE:
                raise ProposalDropped(f"no leader at term {self.term}; dropping read index")
            self.send(_replace(m, to=self.lead))
        elif m.type is MT.READ_INDEX_RESP:
            self.read_states.append(ReadState(m.index, m.context))

    # --- follower handlers --------------------------------------------------------------

    def _handle_append_entries(self, m: Message) -> None:
        if m.index < self.log.committed:
            self.send(Message(MT.APP_RESP, to=m.frm, index=self.log.committed))
            return
        last_new = self.log.maybe_append(m.index, m.log_term, m.commit, m.entries)
        if last_new is not None:
            self.send(Message(MT.APP_RESP, to=m.frm, index=last_new))
            return
        # Tell the leader where our log might match: the last index whose term is at most
        # the term the leader probed with, so whole terms of divergence are skipped at once.
        hint_index = min(m.index, self.log.last_index())
        hint_index, hint_term = self.log.find_conflict_by_term(hint_index, m.log_term)
        self.send(
            Message(MT.APP_RESP, to=m.frm, index=m.index, reject=True, reject_hint=hint_index, log_term=hint_term)
        )

    def _handle_heartbeat(self, m: Message) -> None:
        self.log.commit_to(m.commit)
        self.send(Message(MT.HEARTBEAT_RESP, to=m.frm, context=m.context))

    def _handle_snapshot(self, m: Message) -> None:
        assert m.snapshot is not None
        meta = m.snapshot.metadata
        if self.restore(m.snapshot):
            self._info(f"[commit: {self.log.committed}] restored snapshot [index: {meta.index}, term: {meta.term}]")
            self.send(Message(MT.APP_RESP, to=m.frm, index=self.log.last_index()))
        else:
            self._info(f"[commit: {self.log.committed}] ignored snapshot [index: {meta.index}, term: {meta.term}]")
            self.send(Message(MT.APP_RESP, to=m.frm, index=self.log.committed))

    def restore(self, snap: Snapshot) -> bool:
        """Install ``snap`` if it is news to us; False if our log already covers it."""
        meta = snap.metadata
        if meta.index <= self.log.committed:
            return False
        if self.role is not Role.FOLLOWER:
            # Only a leader of a newer term sends snapshots; never install one otherwise.
            self.become_follower(self.term + 1, NONE)
            return False
        if self.log.match_term(meta.index, meta.term):
            # We have the snapshot's last entry: just move the commit index forward.
            self.log.commit_to(meta.index)
            return False
        self.log.restore(snap)
        self._switch_to_config(meta.conf_state)
        return True

    # --- configuration ------------------------------------------------------------------

    def _switch_to_config(self, conf: ConfState) -> None:
        self.conf = conf
        self.trk.set_voters(conf.voters, self.log.last_index() + 1)
        if self.id in self.trk.progress:
            self.trk.progress[self.id].match = max(self.trk.progress[self.id].match, self.log.last_index())

    def apply_conf_change(self, cc: ConfChange) -> ConfState:
        """Make a committed configuration change take effect (called once it is applied)."""
        new_conf = confchange.apply(self.conf, cc)
        if new_conf == self.conf:
            return self.conf
        before = set(self.conf.voters)
        self.conf = new_conf
        for node_id in set(new_conf.voters) - before:
            pr = self.trk.add_voter(node_id, self.log.last_index() + 1)
            pr.last_heard_tick = self.ticks
        for node_id in before - set(new_conf.voters):
            self.trk.remove_voter(node_id)
        if cc.type is ConfChangeType.REMOVE_NODE:
            self._info(f"applied removal of {cc.node_id}; voters now {list(new_conf.voters)}")
        if self.role is not Role.LEADER:
            return new_conf
        if self.id not in self.trk.voters:
            self._step_down_after_removal()
            return new_conf
        if self.lead_transferee != NONE and self.lead_transferee not in self.trk.voters:
            self.abort_leader_transfer()
        # A smaller quorum may commit more right away.
        if self.maybe_commit():
            self._release_pending_read_index_messages()
            self.bcast_append()
        else:
            for node_id, _ in self.trk:
                if node_id != self.id:
                    self._maybe_send_append(node_id, send_if_empty=False)
        return new_conf

    def _step_down_after_removal(self) -> None:
        """We led the group that just removed us: hand over to the most caught-up voter."""
        best = max(self.trk, key=lambda item: (item[1].match, -item[0]), default=None)
        self.bcast_append()  # let the others learn the commit index of our removal
        if best is not None and best[1].match == self.log.last_index():
            self._send_timeout_now(best[0])
            self._info(f"removed from the configuration; sent TIMEOUT_NOW to {best[0]}")
        self._info("removed from the configuration; stepping down")
        self.become_follower(self.term, NONE)


_TERMED_EXPLICITLY = frozenset({MT.VOTE, MT.VOTE_RESP, MT.PRE_VOTE, MT.PRE_VOTE_RESP})


def _replace(m: Message, **changes: Any) -> Message:
    return dataclasses.replace(m, **changes)


def _with_sender(m: Message, frm: int, term: int) -> Message:
    # Hot path: a plain constructor call is several times cheaper than dataclasses.replace.
    return Message(
        m.type,
        m.to,
        frm,
        term,
        m.log_term,
        m.index,
        m.entries,
        m.commit,
        m.snapshot,
        m.reject,
        m.reject_hint,
        m.context,
    )
