"""The tests and the simulation catch each known raft bug (shoal.testing.raft_mutations).

A mutation that nothing catches means a hole in the tests. The default run replays, for
each mutation, the first default seed known to catch it; the soak searches the default
seeds afresh and prints what it found. If the simulation changes and a recorded seed no
longer fails, find the new ones with ``python -m shoal.testing.raftsim --mutations``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from shoal.testing.raft_mutation_check import first_failing_seeds, replay_command
from shoal.testing.raft_mutations import MUTATIONS
from shoal.testing.raftsim import SimulationFailure, run_seed

from . import test_confchange_snapshot, test_raft_paper, test_rawnode
from .test_simulation import DEFAULT_SEEDS

FIRST_CATCHING_SEED = {
    "vote-not-synced": 1,
    "commit-by-counting": 56,
    "concurrent-conf-changes": 42,
    "commit-past-new-entries": 165,
}
"""The first default seed whose simulation fails with the mutation active."""

UNIT_TEST_CATCHING: dict[str, Callable[[], None]] = {
    "vote-not-synced": test_rawnode.test_a_vote_alone_must_be_synced,
    "commit-by-counting": test_raft_paper.test_leader_never_commits_earlier_term_entry_by_counting,
    "concurrent-conf-changes": test_confchange_snapshot.test_only_one_conf_change_pending,
    "commit-past-new-entries": test_raft_paper.test_follower_commit_stops_at_the_last_entry_the_append_confirmed,
}


def test_every_mutation_has_a_seed_and_a_unit_test() -> None:
    assert set(FIRST_CATCHING_SEED) == set(MUTATIONS) == set(UNIT_TEST_CATCHING)
    assert all(seed < DEFAULT_SEEDS for seed in FIRST_CATCHING_SEED.values())


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_a_unit_test_catches_the_mutation(name: str) -> None:
    unit_test = UNIT_TEST_CATCHING[name]
    unit_test()  # passes on the real core
    with MUTATIONS[name](), pytest.raises((AssertionError, pytest.fail.Exception)):
        unit_test()


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_a_default_seed_catches_the_mutation(name: str) -> None:
    seed = FIRST_CATCHING_SEED[name]
    run_seed(seed)  # passes on the real core
    with MUTATIONS[name](), pytest.raises(SimulationFailure):
        run_seed(seed)


def test_mutations_are_undone_on_exit() -> None:
    from shoal.raft.core import Raft
    from shoal.raft.log import RaftLog
    from shoal.raft.rawnode import RawNode

    before = (RawNode.ready, Raft.maybe_commit, Raft._leader_propose, RaftLog.maybe_append)
    for make in MUTATIONS.values():
        with make():
            pass
    assert (RawNode.ready, Raft.maybe_commit, Raft._leader_propose, RaftLog.maybe_append) == before


@pytest.mark.soak
@pytest.mark.timeout(0)
@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_the_default_seeds_catch_the_mutation(name: str) -> None:
    report = first_failing_seeds(name, range(DEFAULT_SEEDS), limit=3)
    print(f"{name}: first failing seeds {report.failing} of {report.seeds_run} run ({report.seconds:.0f}s)")
    if report.failing:
        print(f"    {report.first_message}\n    replay: {replay_command(name, report.failing[0])}")
    assert report.failing, f"{name} passed all {DEFAULT_SEEDS} default seeds"
