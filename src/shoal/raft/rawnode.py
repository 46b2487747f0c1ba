"""RawNode: the driver-facing API of the raft core (not thread-safe, no I/O).

A driver loop looks like::

    node.tick()                       # every tick interval
    node.step(msg)                    # for each message from a peer
    node.propose(data)                # for each client write (raises ProposalDropped)
    if node.has_ready():
        rd = node.ready()
        storage.save(rd.hard_state, rd.entries, rd.snapshot, sync=rd.must_sync)  # durable first
        transport.send(rd.messages)                                             # then send
        state_machine.apply(rd.committed_entries); serve(rd.read_states)
        node.advance(rd)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from shoal.raft.config import Config
from shoal.raft.core import Raft
from shoal.raft.errors import RaftError, StepLocalMsg, StepPeerNotFound
from shoal.raft.types import (
    ConfChange,
    ConfChangeType,
    ConfState,
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    Ready,
    Role,
    SoftState,
    is_local_message,
    is_response_message,
)


@dataclass(frozen=True)
class Status:
    id: int
    hard_state: HardState
    soft_state: SoftState
    applied: int
    last_index: int
    conf_state: ConfState
    lead_transferee: int
    # A leader whose commit index covers an entry of its own term: its log is fully
    # committed, so it may announce itself and serve reads (swarmkit waits for this).
    committed_in_current_term: bool = False
    progress: Mapping[int, str] = field(default_factory=dict)


class RawNode:
    def __init__(self, config: Config) -> None:
        self.raft = Raft(config)
        self._prev_soft = self.raft.soft_state()
        self._prev_hard = self.raft.hard_state()
        self._outstanding: Ready | None = None

    # --- setup --------------------------------------------------------------------------

    def bootstrap(self, peers: Sequence[int], contexts: Mapping[int, bytes] | None = None) -> None:
        """Start a brand-new group of ``peers`` (on every founding member, same arguments).

        The founding configuration is written as committed conf-change entries 1..n of
        term 1, so members that join later learn it by replaying the log like any change.
        """
        raft = self.raft
        if raft.log.last_index() != 0 or not raft.hard_state().is_empty():
            raise RuntimeError("can only bootstrap an empty node")
        if not peers:
            raise ValueError("need at least one peer to bootstrap")
        contexts = contexts or {}
        raft.become_follower(1, 0)
        entries = [
            Entry(
                term=1,
                index=i + 1,
                type=EntryType.CONF_CHANGE,
                data=ConfChange(ConfChangeType.ADD_NODE, peer, contexts.get(peer, b"")).encode(),
            )
            for i, peer in enumerate(peers)
        ]
        raft.log.append(entries)
        raft.log.committed = len(entries)
        for peer in peers:
            raft.apply_conf_change(ConfChange(ConfChangeType.ADD_NODE, peer, contexts.get(peer, b"")))

    # --- inputs -------------------------------------------------------------------------

    def tick(self) -> None:
        self.raft.tick()

    def campaign(self) -> None:
        """Start an election now (pre-vote first if enabled)."""
        self.raft.step(Message(MessageType.HUP, frm=self.raft.id))

    def propose(self, data: bytes) -> None:
        """Propose a normal entry; raises ProposalDropped when it cannot be accepted now.

        Acceptance is not commitment: watch the committed entries for it.
        """
        self.raft.step(Message(MessageType.PROP, frm=self.raft.id, entries=(Entry(0, 0, EntryType.NORMAL, data),)))

    def propose_batch(self, datas: Sequence[bytes]) -> None:
        """Propose several normal entries at once (one append per follower); all of them
        are accepted or, with ProposalDropped, none."""
        if not datas:
            return
        entries = tuple(Entry(0, 0, EntryType.NORMAL, data) for data in datas)
        self.raft.step(Message(MessageType.PROP, frm=self.raft.id, entries=entries))

    def propose_conf_change(self, cc: ConfChange) -> None:
        """Propose a single-member change; raises ProposalDropped (no leader, one already
        pending) or ConfChangeRefused (removed id, already a member, quorum would be lost).
        The checks run on the leader; a follower forwards and cannot report a refusal."""
        entry = Entry(0, 0, EntryType.CONF_CHANGE, cc.encode())
        self.raft.step(Message(MessageType.PROP, frm=self.raft.id, entries=(entry,)))

    def step(self, m: Message) -> None:
        """Feed a message received from a peer."""
        if is_local_message(m.type):
            raise StepLocalMsg(f"cannot step local message {m.type.name} from the network")
        if m.frm in self.raft.conf.removed and m.type is not MessageType.TIMEOUT_NOW:
            # Removed members are ignored for good, except for the hand-over a leader sends
            # as it steps down after removing itself (an election is always safe).
            return
        if is_response_message(m.type) and m.frm not in self.raft.trk.progress:
            raise StepPeerNotFound(f"{m.type.name} from unknown peer {m.frm}")
        try:
            self.raft.step(m)
        except RaftError:
            # A proposal or read forwarded by a peer that we cannot take: the peer's client
            # times out and retries, as with any lost message.
            if m.type not in (MessageType.PROP, MessageType.READ_INDEX):
                raise

    def read_index(self, ctx: bytes) -> None:
        """Ask for a linearizable read; a ReadState with this ``ctx`` appears in a later
        Ready once it is safe to read at its index. Raises ProposalDropped without leader."""
        self.raft.step(Message(MessageType.READ_INDEX, frm=self.raft.id, context=ctx))

    def transfer_leader(self, transferee: int) -> None:
        self.raft.step(Message(MessageType.TRANSFER_LEADER, frm=transferee))

    def report_unreachable(self, node_id: int) -> None:
        """The transport failed to deliver to ``node_id``."""
        self.raft.step(Message(MessageType.UNREACHABLE, frm=node_id))

    def report_snapshot(self, node_id: int, ok: bool) -> None:
        """The transport finished (or failed) sending a snapshot to ``node_id``."""
        self.raft.step(Message(MessageType.SNAP_STATUS, frm=node_id, reject=not ok))

    # --- outputs ------------------------------------------------------------------------

    def has_ready(self) -> bool:
        raft = self.raft
        if raft.soft_state() != self._prev_soft:
            return True
        hard = raft.hard_state()
        if not hard.is_empty() and hard != self._prev_hard:
            return True
        return bool(
            raft.log.unstable.snapshot is not None
            or raft.log.unstable.entries
            or raft.msgs
            or raft.read_states
            or raft.log.has_next_committed_entries()
        )

    def ready(self) -> Ready:
        """The next batch of effects; call ``advance`` with it before asking for another."""
        if self._outstanding is not None:
            raise RuntimeError("ready() called again before advance()")
        raft = self.raft
        soft = raft.soft_state()
        hard = raft.hard_state()
        entries = tuple(raft.log.unstable_entries())
        snapshot = raft.log.unstable.snapshot
        hard_changed = not hard.is_empty() and hard != self._prev_hard
        rd = Ready(
            soft_state=soft if soft != self._prev_soft else None,
            hard_state=hard if hard_changed else None,
            read_states=tuple(raft.read_states),
            entries=entries,
            snapshot=snapshot,
            committed_entries=tuple(raft.log.next_committed_entries()),
            messages=tuple(raft.msgs),
            # Term and vote must survive a crash before we act on them; so must new entries.
            # The commit index alone may be lost (it is re-learned from the leader).
            must_sync=bool(entries)
            or snapshot is not None
            or hard.term != self._prev_hard.term
            or hard.vote != self._prev_hard.vote,
        )
        raft.msgs = []
        raft.read_states = []
        if rd.soft_state is not None:
            self._prev_soft = rd.soft_state
        self._outstanding = rd
        return rd

    def advance(self, rd: Ready) -> None:
        """Acknowledge that ``rd`` was persisted, sent and applied."""
        if rd is not self._outstanding:
            raise RuntimeError("advance() with a Ready that is not the outstanding one")
        self._outstanding = None
        raft = self.raft
        if rd.hard_state is not None:
            self._prev_hard = rd.hard_state
        applied = 0
        if rd.snapshot is not None:
            raft.log.stable_snap_to(rd.snapshot.metadata.index)
            applied = rd.snapshot.metadata.index
        if rd.entries:
            last = rd.entries[-1]
            raft.log.stable_to(last.index, last.term)
        if rd.committed_entries:
            applied = max(applied, rd.committed_entries[-1].index)
        if applied > raft.log.applied:
            raft.log.applied_to(applied)
        for entry in rd.committed_entries:
            if entry.type is EntryType.CONF_CHANGE:
                raft.apply_conf_change(ConfChange.decode(entry.data))

    # --- inspection ---------------------------------------------------------------------

    @property
    def id(self) -> int:
        return self.raft.id

    def conf_state(self) -> ConfState:
        """The configuration as of the applied index (what a snapshot taken now must carry)."""
        return self.raft.conf

    def is_leader(self) -> bool:
        return self.raft.role is Role.LEADER

    def status(self) -> Status:
        raft = self.raft
        progress = {node_id: pr.describe() for node_id, pr in raft.trk} if raft.role is Role.LEADER else {}
        return Status(
            id=raft.id,
            hard_state=raft.hard_state(),
            soft_state=raft.soft_state(),
            applied=raft.log.applied,
            last_index=raft.log.last_index(),
            conf_state=raft.conf,
            lead_transferee=raft.lead_transferee,
            committed_in_current_term=raft.committed_entry_in_current_term(),
            progress=progress,
        )
