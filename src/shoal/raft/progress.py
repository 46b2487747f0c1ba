"""What the leader knows about each follower's log, and the flow control built on it.

A follower is in one of three states:
- PROBE: we do not know where its log ends; send one append, then wait for an answer.
- REPLICATE: its log matches ours up to ``match``; stream appends optimistically, bounded
  by the inflight window.
- SNAPSHOT: it needs a snapshot; send nothing else until the snapshot is reported done.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Iterable, Iterator

from shoal.raft import quorum


class ProgressState(enum.Enum):
    PROBE = "probe"
    REPLICATE = "replicate"
    SNAPSHOT = "snapshot"


class Inflights:
    """The last indexes of append messages sent but not yet acknowledged, bounded in count."""

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError("inflight capacity must be positive")
        self.capacity = capacity
        self._indexes: deque[int] = deque()

    def add(self, last_index: int) -> None:
        if self.full():
            raise RuntimeError("cannot add to a full inflight window")
        self._indexes.append(last_index)

    def free_le(self, index: int) -> None:
        """Forget every message whose entries are all acknowledged by ``index``."""
        while self._indexes and self._indexes[0] <= index:
            self._indexes.popleft()

    def free_first_one(self) -> None:
        if self._indexes:
            self._indexes.popleft()

    def full(self) -> bool:
        return len(self._indexes) >= self.capacity

    def count(self) -> int:
        return len(self._indexes)

    def reset(self) -> None:
        self._indexes.clear()


class Progress:
    def __init__(self, next_index: int, max_inflight: int, match: int = 0) -> None:
        self.match = match
        self.next = next_index
        self.state = ProgressState.PROBE
        # In PROBE: an append was sent and we wait for its answer before the next one.
        self.probe_sent = False
        self.pending_snapshot = 0
        # Heard from since the last check-quorum round.
        self.recent_active = False
        # Tick of the last message received from this peer (-1: never), for deciding
        # whether removing a member would leave a reachable quorum.
        self.last_heard_tick = -1
        self.inflights = Inflights(max_inflight)

    def _reset_state(self, state: ProgressState) -> None:
        self.probe_sent = False
        self.pending_snapshot = 0
        self.state = state
        self.inflights.reset()

    def become_probe(self) -> None:
        # After a snapshot the follower has at least the snapshot; probe right after it.
        if self.state is ProgressState.SNAPSHOT:
            pending = self.pending_snapshot
            self._reset_state(ProgressState.PROBE)
            self.next = max(self.match + 1, pending + 1)
        else:
            self._reset_state(ProgressState.PROBE)
            self.next = self.match + 1

    def become_replicate(self) -> None:
        self._reset_state(ProgressState.REPLICATE)
        self.next = self.match + 1

    def become_snapshot(self, snapshot_index: int) -> None:
        self._reset_state(ProgressState.SNAPSHOT)
        self.pending_snapshot = snapshot_index

    def maybe_update(self, index: int) -> bool:
        """Record an acknowledgement of ``index``; False if it tells us nothing new."""
        updated = False
        if self.match < index:
            self.match = index
            updated = True
            self.probe_sent = False
        self.next = max(self.next, index + 1)
        return updated

    def optimistic_update(self, last_sent: int) -> None:
        self.next = last_sent + 1

    def maybe_decr_to(self, rejected: int, match_hint: int) -> bool:
        """React to a rejected append at ``rejected``; False if the rejection is stale."""
        if self.state is ProgressState.REPLICATE:
            if rejected <= self.match:
                return False
            self.next = self.match + 1
            return True
        if self.next - 1 != rejected:
            return False
        self.next = max(min(rejected, match_hint + 1), self.match + 1, 1)
        self.probe_sent = False
        return True

    def is_paused(self) -> bool:
        if self.state is ProgressState.PROBE:
            return self.probe_sent
        if self.state is ProgressState.REPLICATE:
            return self.inflights.full()
        return True

    def describe(self) -> str:
        text = f"{self.state.name} match={self.match} next={self.next}"
        if self.state is ProgressState.SNAPSHOT:
            text += f" pending_snap={self.pending_snapshot}"
        if self.probe_sent:
            text += " paused"
        if self.inflights.full():
            text += " inflight_full"
        return text


class ProgressTracker:
    """The voters, the leader's progress for each, and the votes of the current election."""

    def __init__(self, max_inflight: int) -> None:
        self.max_inflight = max_inflight
        self.voters: set[int] = set()
        self.progress: dict[int, Progress] = {}
        self.votes: dict[int, bool] = {}

    def ids(self) -> list[int]:
        return sorted(self.voters)

    def __iter__(self) -> Iterator[tuple[int, Progress]]:
        for node_id in sorted(self.progress):
            yield node_id, self.progress[node_id]

    def set_voters(self, voters: Iterable[int], next_index: int) -> None:
        self.voters = set(voters)
        for node_id in list(self.progress):
            if node_id not in self.voters:
                del self.progress[node_id]
        for node_id in self.voters:
            if node_id not in self.progress:
                self.progress[node_id] = Progress(next_index, self.max_inflight)

    def add_voter(self, node_id: int, next_index: int) -> Progress:
        self.voters.add(node_id)
        pr = Progress(next_index, self.max_inflight)
        # A new member counts as active, or check-quorum could depose us before it answers.
        pr.recent_active = True
        self.progress[node_id] = pr
        return pr

    def remove_voter(self, node_id: int) -> None:
        self.voters.discard(node_id)
        self.progress.pop(node_id, None)

    def is_singleton(self) -> bool:
        return len(self.voters) == 1

    def committed(self) -> int:
        return quorum.committed_index(self.voters, {i: p.match for i, p in self.progress.items()})

    def quorum_active(self) -> bool:
        active = {i: p.recent_active for i, p in self.progress.items() if i in self.voters}
        return quorum.vote_result(self.voters, active) is quorum.VoteResult.WON

    def reset_votes(self) -> None:
        self.votes = {}

    def record_vote(self, node_id: int, granted: bool) -> None:
        self.votes.setdefault(node_id, granted)

    def tally_votes(self) -> tuple[int, int, quorum.VoteResult]:
        granted = sum(1 for v in self.voters if self.votes.get(v) is True)
        rejected = sum(1 for v in self.voters if self.votes.get(v) is False)
        return granted, rejected, quorum.vote_result(self.voters, self.votes)
