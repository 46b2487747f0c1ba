"""Quorum arithmetic, checked against a naive definition on many random cases."""

from __future__ import annotations

import random

from shoal.raft.quorum import VoteResult, committed_index, quorum_size, vote_result


def naive_committed(voters: list[int], match: dict[int, int]) -> int:
    """The largest index that at least a majority of voters have reached."""
    if not voters:
        return 0
    best = 0
    for candidate in {match.get(v, 0) for v in voters}:
        if sum(1 for v in voters if match.get(v, 0) >= candidate) >= len(voters) // 2 + 1:
            best = max(best, candidate)
    return best


def test_quorum_size() -> None:
    assert [quorum_size(n) for n in range(1, 8)] == [1, 2, 2, 3, 3, 4, 4]


def test_committed_index_matches_naive_definition() -> None:
    rng = random.Random(7)
    for _ in range(5000):
        voters = rng.sample(range(1, 10), rng.randint(1, 7))
        match = {v: rng.randint(0, 6) for v in voters if rng.random() < 0.9}
        assert committed_index(voters, match) == naive_committed(voters, match)


def test_committed_index_examples() -> None:
    assert committed_index([1, 2, 3], {1: 5, 2: 3, 3: 1}) == 3
    assert committed_index([1, 2, 3, 4], {1: 5, 2: 3, 3: 1, 4: 1}) == 1
    assert committed_index([1], {1: 9}) == 9
    assert committed_index([], {}) == 0


def test_vote_result() -> None:
    assert vote_result([1, 2, 3], {1: True}) is VoteResult.PENDING
    assert vote_result([1, 2, 3], {1: True, 2: True}) is VoteResult.WON
    assert vote_result([1, 2, 3], {1: True, 2: False}) is VoteResult.PENDING
    assert vote_result([1, 2, 3], {1: True, 2: False, 3: False}) is VoteResult.LOST
    assert vote_result([1, 2, 3, 4], {1: True, 2: True}) is VoteResult.PENDING
    assert vote_result([1, 2, 3, 4], {1: False, 2: False}) is VoteResult.LOST
    # Votes from non-voters do not count.
    assert vote_result([1, 2, 3], {1: True, 7: True, 8: True}) is VoteResult.PENDING
