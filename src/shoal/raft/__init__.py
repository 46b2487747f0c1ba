"""Raft consensus as a pure state machine (standard library only).

The core never touches a disk, a socket or a clock: a driver ticks it, steps messages into
it and carries out the effects it returns. Shaped like etcd's raft library.

Driver contract (see ``RawNode``)::

    node = RawNode(Config(id=..., storage=storage, applied=<index of the snapshot the
                          state machine was restored from>))
    node.bootstrap([1])          # only when founding a new group, on an empty storage

    loop:
        node.tick()              # every tick interval (election_tick=10, heartbeat_tick=1)
        node.step(msg)           # each message from a peer (RaftError on nonsense input)
        node.propose(data)       # raises ProposalDropped: no leader, transfer running, ...
        node.propose_conf_change(cc) / node.read_index(ctx) / node.transfer_leader(id)
        node.report_unreachable(id) / node.report_snapshot(id, ok)   # transport feedback
        while node.has_ready():
            rd = node.ready()
            1. persist: rd.snapshot (if any) first, then rd.entries (they replace any
               conflicting suffix), then rd.hard_state (if not None); fsync when
               rd.must_sync (new entries, snapshot, term or vote changed). A Ready that
               only moves the commit index need not be fsynced.
            2. send rd.messages, only after step 1 is durable (a vote or an append
               acknowledgement must never get ahead of the disk).
            3. install rd.snapshot into the state machine; apply rd.committed_entries in
               order (CONF_CHANGE entries carry a ConfChange; ``advance`` applies it to
               the membership); serve each ReadState once applied >= its index.
            4. node.advance(rd)  -- exactly once per ready(), before the next ready().

Modules: types (values, Storage protocol, wire converters), errors, storage
(MemoryStorage), log (unstable tail + storage), progress (per-follower flow control),
quorum, readonly (read index), confchange, config, core (the Raft state machine),
rawnode (Ready/advance).
"""

from shoal.raft.config import Config
from shoal.raft.errors import (
    Compacted,
    ConfChangeRefused,
    ProposalDropped,
    RaftError,
    SnapOutOfDate,
    SnapshotTemporarilyUnavailable,
    StepLocalMsg,
    StepPeerNotFound,
    Unavailable,
)
from shoal.raft.rawnode import RawNode, Status
from shoal.raft.storage import MemoryStorage

__all__ = [
    "Compacted",
    "ConfChangeRefused",
    "Config",
    "MemoryStorage",
    "ProposalDropped",
    "RaftError",
    "RawNode",
    "SnapOutOfDate",
    "SnapshotTemporarilyUnavailable",
    "Status",
    "StepLocalMsg",
    "StepPeerNotFound",
    "Unavailable",
]
