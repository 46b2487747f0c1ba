"""dockerd's container-create checks of a task's limits (executor.limits_check)."""

from __future__ import annotations

import os

import pytest

from shoal.executor.base import Resources, TaskRuntime
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


@pytest.mark.parametrize(("memory", "reservation", "problem"), [
    (0, 5 * 1024 * 1024, "Minimum memory reservation allowed is 6MB"),
    (10 * 1024 * 1024, 20 * 1024 * 1024, "Minimum memory limit can not be less than memory reservation limit, "
                                         "see usage"),
    (20 * 1024 * 1024, 20 * 1024 * 1024, None),
    (0, 20 * 1024 * 1024, None),
])
def test_the_memory_reservation(memory: int, reservation: int, problem: str | None) -> None:
    assert limits_problem(Resources(memory_bytes=memory), 2, reservation) == problem


def runtime(nano_cpus: int = 0, reservation: int = 0) -> TaskRuntime:
    task = {"Spec": {"Resources": {"Reservations": {"MemoryBytes": reservation}}}} if reservation else {}
    return TaskRuntime(task_id="t1", service_id="s1", service_name="web", node_id="n1", slot=1, image="busybox",
                       resources=Resources(nano_cpus=nano_cpus), raw_task=task)


def test_a_refusal_rejects_the_task_with_the_text_alone() -> None:
    with pytest.raises(InvalidTaskSpec) as caught:
        check_limits(runtime(nano_cpus=3_000_000_000), cpus=2)
    assert str(caught.value) == "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"
    with pytest.raises(InvalidTaskSpec, match=r"^Minimum memory reservation allowed is 6MB$"):
        check_limits(runtime(reservation=1024 * 1024), cpus=2)
    check_limits(runtime(nano_cpus=1_000_000_000, reservation=64 * 1024 * 1024), cpus=2)


def test_cpus_are_the_ones_this_process_may_use() -> None:
    assert usable_cpus() == len(os.sched_getaffinity(0))
