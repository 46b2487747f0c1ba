"""Majority quorum arithmetic, kept apart so it can be checked against a naive version."""

from __future__ import annotations

import enum
from collections.abc import Collection, Mapping


class VoteResult(enum.Enum):
    PENDING = "pending"
    WON = "won"
    LOST = "lost"


def quorum_size(voter_count: int) -> int:
    return voter_count // 2 + 1


def committed_index(voters: Collection[int], match: Mapping[int, int]) -> int:
    """The highest index acknowledged by a majority of ``voters`` (0 for an empty config).

    Sorting the acknowledged indexes in decreasing order, the quorum-th one is durable
    on at least a quorum of voters.
    """
    if not voters:
        return 0
    acked = sorted((match.get(v, 0) for v in voters), reverse=True)
    return acked[quorum_size(len(voters)) - 1]


def vote_result(voters: Collection[int], votes: Mapping[int, bool]) -> VoteResult:
    """WON once a majority granted, LOST once a majority can no longer be reached."""
    if not voters:
        # An empty configuration wins trivially (etcd does the same); it only happens in tests.
        return VoteResult.WON
    granted = sum(1 for v in voters if votes.get(v) is True)
    missing = sum(1 for v in voters if v not in votes)
    need = quorum_size(len(voters))
    if granted >= need:
        return VoteResult.WON
    if granted + missing >= need:
        return VoteResult.PENDING
    return VoteResult.LOST
