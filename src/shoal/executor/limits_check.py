"""dockerd's checks of a container's limits, made where dockerd makes them for a Swarm task: when the
executor prepares it (creating the container), so the service is created and its tasks are rejected
with dockerd's words, e.g. `Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available`.
swarmkit's own floor (`invalid memory value ...: Must be at least 4MiB`) is checked earlier, at create."""

from __future__ import annotations

import os

from shoal.api.objects import dig
from shoal.executor.base import Resources, TaskRuntime
from shoal.executor.errors import InvalidTaskSpec

# dockerd 20.10's linuxMinMemory: below it the kernel's own use of the cgroup leaves the task nothing
MIN_MEMORY_BYTES = 6 * 1024 * 1024
NANOS_PER_CPU = 1_000_000_000


def usable_cpus() -> int:
    """What dockerd's sysinfo.NumCPU counts: the CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def limits_problem(resources: Resources, cpus: int, memory_reservation: int = 0) -> str | None:
    """dockerd's refusal for these limits (and the memory reservation Swarm gives the container as its
    soft limit) on a node with `cpus` CPUs, in dockerd's order, or None."""
    memory = resources.memory_bytes
    if memory and memory < MIN_MEMORY_BYTES:
        return "Minimum memory limit allowed is 6MB"
    if 0 < memory_reservation < MIN_MEMORY_BYTES:
        return "Minimum memory reservation allowed is 6MB"
    if memory > 0 and memory_reservation > 0 and memory < memory_reservation:
        return "Minimum memory limit can not be less than memory reservation limit, see usage"
    if resources.nano_cpus < 0 or resources.nano_cpus > cpus * NANOS_PER_CPU:
        return f"Range of CPUs is from 0.01 to {cpus}.00, as there are only {cpus} CPUs available"
    return None


def check_limits(runtime: TaskRuntime, cpus: int | None = None) -> None:
    """Raise InvalidTaskSpec (the task is rejected with the message as its error) when dockerd would
    refuse to create the task's container."""
    reservation = int(dig(runtime.raw_task, "Spec", "Resources", "Reservations", "MemoryBytes", default=0) or 0)
    problem = limits_problem(runtime.resources, usable_cpus() if cpus is None else cpus, reservation)
    if problem is not None:
        raise InvalidTaskSpec(problem)
