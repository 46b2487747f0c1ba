"""Errors raised by the raft core and its storage port.

Each error is a sentinel type the caller can catch; broken invariants inside the core are
AssertionError/RuntimeError instead (they mean a bug, not a condition to handle).
"""

from __future__ import annotations


class RaftError(Exception):
    """Base class of every error the raft package raises on purpose."""


class Compacted(RaftError):
    """The requested index is older than the storage's first index: it was compacted away."""


class Unavailable(RaftError):
    """The requested index is newer than anything the storage holds."""


class SnapshotTemporarilyUnavailable(RaftError):
    """The storage cannot produce a snapshot right now; the leader retries later."""


class SnapOutOfDate(RaftError):
    """A snapshot older than the one the storage already has was offered."""


class ProposalDropped(RaftError):
    """The proposal was not appended: no leader is known, a leader transfer is running,
    the node was removed, or a configuration change is already pending."""


class StepLocalMsg(RaftError):
    """A local-only message type (HUP, BEAT, ...) arrived from the network."""


class StepPeerNotFound(RaftError):
    """A response arrived from a node that is not (or no longer) in the configuration."""


class ConfChangeRefused(RaftError):
    """A configuration change was refused before it was proposed (re-adding a removed id,
    removing a member whose loss would leave the rest unable to reach quorum, ...)."""
