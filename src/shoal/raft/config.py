"""Configuration of one raft node."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from typing import Protocol

from shoal.raft.types import Storage


class RaftLogger(Protocol):
    def info(self, msg: str) -> None: ...

    def warning(self, msg: str) -> None: ...


@dataclass
class Config:
    """Settings of one raft node.

    ``election_tick``: ticks without hearing from a leader before a follower campaigns;
    the actual timeout is drawn from [election_tick, 2*election_tick). Swarm uses 10.
    ``heartbeat_tick``: ticks between leader heartbeats; must be < election_tick. Swarm: 1.
    ``applied``: the last index already applied to the state machine (on restart), so it
    is not handed out again. 0 means "replay everything after the snapshot".
    ``max_size_per_msg``: bytes of entries per append (at least one entry is always sent).
    ``max_entries_per_msg``: entries per append (None: only the byte limit applies).
    ``max_inflight_msgs``: appends in flight to one follower in REPLICATE state.
    ``check_quorum``: the leader steps down when it has not heard from a quorum within an
    election timeout; followers then also ignore votes while they have a live leader.
    ``pre_vote``: run a pre-election first, so a partitioned node rejoining does not
    disrupt the cluster by bumping terms.
    ``rand``: randomness for election timeouts; pass a seeded Random for determinism.
    """

    id: int
    storage: Storage
    election_tick: int = 10
    heartbeat_tick: int = 1
    applied: int = 0
    max_size_per_msg: int | None = 1024 * 1024
    max_entries_per_msg: int | None = None
    max_inflight_msgs: int = 256
    max_committed_size_per_ready: int | None = None
    check_quorum: bool = True
    pre_vote: bool = True
    rand: random.Random = field(default_factory=random.Random)
    logger: RaftLogger = field(default_factory=lambda: logging.getLogger("shoal.raft"))

    def validate(self) -> None:
        if self.id <= 0:
            raise ValueError("node id must be > 0")
        if self.heartbeat_tick <= 0:
            raise ValueError("heartbeat tick must be greater than 0")
        if self.election_tick <= self.heartbeat_tick:
            raise ValueError("election tick must be greater than heartbeat tick")
        if self.max_entries_per_msg is not None and self.max_entries_per_msg <= 0:
            raise ValueError("max entries per message must be greater than 0")
        if self.max_inflight_msgs <= 0:
            raise ValueError("max inflight messages must be greater than 0")
