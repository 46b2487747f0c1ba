"""Seeded fault-injection simulations of the raft core (see shoal.testing.raftsim).

The default run covers 300 long, contended seeds; ``pytest -m soak`` runs many more
(SHOAL_SOAK_SEEDS, default 25,000: about as long as 100,000 of the old, short seeds).
A failure names its seed and the replay command.
"""

from __future__ import annotations

import os

import pytest

from shoal.raft.types import ConfState, Entry, HardState
from shoal.testing.raftsim import FaultyStorage, Simulation, SimulationFailure, run_seed

DEFAULT_SEEDS = 300
CHUNK = 25


@pytest.mark.parametrize("first", range(0, DEFAULT_SEEDS, CHUNK), ids=lambda f: f"seeds{f}-{f + CHUNK - 1}")
def test_simulation_seeds(first: int) -> None:
    for seed in range(first, first + CHUNK):
        run_seed(seed)  # raises SimulationFailure with "seed=N ... replay: ..." on any violation


def test_replay_is_deterministic() -> None:
    a = Simulation(12345)
    b = Simulation(12345)
    ra, rb = a.run(), b.run()
    assert ra == rb
    assert a.history == b.history
    assert a.committed == b.committed


def test_failure_message_names_seed_and_replay_command() -> None:
    sim = Simulation(7)
    failure = sim.fail("something broke")
    assert isinstance(failure, SimulationFailure)
    assert "seed=7" in str(failure)
    assert "python -m shoal.testing.raftsim --seed 7" in str(failure)


def test_faulty_storage_loses_unsynced_writes_on_crash() -> None:
    storage = FaultyStorage()
    storage.append([Entry(1, 1), Entry(1, 2)])
    storage.set_hard_state(HardState(1, 1, 1))
    storage.sync()
    storage.append([Entry(1, 3)])
    storage.set_hard_state(HardState(2, 0, 2))
    assert storage.last_index() == 3
    storage.crash()
    assert storage.last_index() == 2
    assert storage.initial_state() == (HardState(1, 1, 1), ConfState())


def test_simulation_detects_a_double_vote() -> None:
    """The checker is not vacuous: a forged second vote in one term is reported."""
    from shoal.raft.types import Message, MessageType, Ready

    sim = Simulation(3)
    node = sim.nodes[2]
    vote_a = Message(MessageType.VOTE_RESP, to=1, frm=2, term=50)
    vote_b = Message(MessageType.VOTE_RESP, to=3, frm=2, term=50)
    sim._check_ready(node, Ready(messages=(vote_a,)))
    with pytest.raises(SimulationFailure, match="voted for 1 and 3 in term 50"):
        sim._check_ready(node, Ready(messages=(vote_b,)))


@pytest.mark.soak
@pytest.mark.timeout(0)
def test_simulation_soak() -> None:
    seeds = int(os.environ.get("SHOAL_SOAK_SEEDS", "25000"))
    failures = []
    for seed in range(DEFAULT_SEEDS, DEFAULT_SEEDS + seeds):
        try:
            run_seed(seed)
        except SimulationFailure as exc:
            failures.append(str(exc))
    assert failures == []
