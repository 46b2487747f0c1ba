"""dockerd's container-create checks of a task's limits (executor.limits_check)."""

from __future__ import annotations

import os

import pytest

from shoal.executor.base import Resources
from shoal.executor.errors import InvalidTaskSpec
from shoal.executor.limits_check import MIN_MEMORY_BYTES, check_limits, limits_problem, usable_cpus


@pytest.mark.parametrize(("resources", "cpus", "problem"), [
    (Resources(), 2, None),
    (Resources(nano_cpus=2_000_000_000, memory_bytes=MIN_MEMORY_BYTES), 2, None),
    (Resources(nano_cpus=2_000_000_001), 2, "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"),
    (Resources(nano_cpus=4_000_000_000), 3, "Range of CPUs is from 0.01 to 3.00, as there are only 3 CPUs available"),
    (Resources(memory_bytes=5 * 1024 * 1024), 2, "Minimum memory limit allowed is 6MB"),
    # dockerd looks at memory before CPUs
    (Resources(nano_cpus=9_000_000_000, memory_bytes=1024), 2, "Minimum memory limit allowed is 6MB"),
])
def test_dockerd_texts(resources: Resources, cpus: int, problem: str | None) -> None:
    assert limits_problem(resources, cpus) == problem


def test_a_refusal_rejects_the_task_with_the_text_alone() -> None:
    with pytest.raises(InvalidTaskSpec) as caught:
        check_limits(Resources(nano_cpus=3_000_000_000), cpus=2)
    assert str(caught.value) == "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"
    check_limits(Resources(nano_cpus=1_000_000_000), cpus=2)


def test_cpus_are_the_ones_this_process_may_use() -> None:
    assert usable_cpus() == len(os.sched_getaffinity(0))
