"""Does the simulation catch the known raft bugs? Run each mutation over a range of seeds.

python -m shoal.testing.raftsim --mutations              # seeds 0..299, as the default run
python -m shoal.testing.raftsim --mutations --seeds 2000
python -m shoal.testing.raftsim --seed 165 --mutation commit-past-new-entries   # replay one
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from shoal.testing.raft_mutations import MUTATIONS
from shoal.testing.raftsim import SimulationFailure, run_seed


@dataclass
class MutationReport:
    name: str
    seeds_run: int = 0
    failing: list[int] = field(default_factory=list)
    first_message: str = ""
    seconds: float = 0.0


def first_failing_seeds(name: str, seeds: Iterable[int], limit: int = 1) -> MutationReport:
    """Run ``seeds`` with mutation ``name`` active until ``limit`` of them fail."""
    report = MutationReport(name)
    started = time.monotonic()
    with MUTATIONS[name]():
        for seed in seeds:
            report.seeds_run += 1
            try:
                run_seed(seed)
            except SimulationFailure as exc:
                report.failing.append(seed)
                if not report.first_message:
                    report.first_message = str(exc).splitlines()[0]
                if len(report.failing) >= limit:
                    break
    report.seconds = time.monotonic() - started
    return report


def replay_command(name: str, seed: int) -> str:
    return f"python -m shoal.testing.raftsim --seed {seed} --mutation {name}"


def run_mutation_check(first: int, count: int, limit: int) -> int:
    """Print, for every mutation, the first failing seeds; 1 if any mutation went unnoticed."""
    missed = []
    for name in MUTATIONS:
        report = first_failing_seeds(name, range(first, first + count), limit)
        if report.failing:
            print(f"{name}: caught by seeds {report.failing} ({report.seeds_run} seeds run, {report.seconds:.0f}s)")
            print(f"    {report.first_message}")
            print(f"    replay: {replay_command(name, report.failing[0])}")
        else:
            missed.append(name)
            print(f"{name}: NOT caught in seeds {first}..{first + count - 1} ({report.seconds:.0f}s)")
    return 1 if missed else 0
