"""What a RaftNode is built from and hands out: its configuration, the state machine and transport it
drives, and the leadership changes it announces."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from shoal.raft.types import Message

DEFAULT_TICK_INTERVAL = 0.1
"""Seconds per Raft tick; see the module doc of shoal.manager.raftnode for why."""


class StateMachine(Protocol):
    def apply(self, index: int, data: bytes) -> None:
        """Apply one committed normal entry (called in index order, once per entry)."""
        ...

    def snapshot(self) -> bytes:
        """The whole state as of the last applied entry."""
        ...

    def restore(self, data: bytes) -> None:
        """Replace the whole state with a snapshot's (``b""`` means empty)."""
        ...


class RaftMessageSink(Protocol):
    """What a transport hands to the Raft driver. Every call must return at once."""

    def receive(self, message: Message) -> None: ...

    def report_unreachable(self, node_id: int) -> None: ...

    def report_snapshot(self, node_id: int, ok: bool) -> None: ...


class PeerTransport(Protocol):
    """What the driver needs from a transport (RaftTransport, or an in-memory one in tests)."""

    def set_sink(self, sink: RaftMessageSink) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def add_peer(self, node_id: int, address: str) -> None: ...

    async def remove_peer(self, node_id: int) -> None: ...

    def send(self, messages: Iterable[Message]) -> None: ...


@dataclass(frozen=True)
class RaftNodeConfig:
    node_id: int
    address: str
    """Where peers reach this member ("host:port"); carried in its conf change."""
    tick_interval: float = DEFAULT_TICK_INTERVAL
    election_tick: int = 10
    heartbeat_tick: int = 1
    snapshot_interval: int = 10_000
    log_entries_for_slow_followers: int = 500
    max_size_per_msg: int = 1 << 20
    max_inflight_msgs: int = 256
    leader_sends_before_persist: bool = True
    """The leader sends a Ready's appends while it writes them itself (see the module doc)."""
    fsync_in_thread: bool = True
    """Run a Ready's write+fsync (and snapshot writes) in a worker thread, so the event loop keeps
    serving while the disk works, and a leader can give up leadership while its disk hangs; False
    blocks the loop for the fsync but saves the hop back through a busy loop (and makes a
    simulation replay the same way every time)."""


@dataclass(frozen=True)
class LeadershipChange:
    is_leader: bool
    leader_id: int
    term: int
