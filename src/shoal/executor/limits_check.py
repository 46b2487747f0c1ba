"""dockerd's checks of a container's limits, made where dockerd makes them for a Swarm task: when the
executor prepares it (creating the container), so the service is created and its tasks are rejected
with dockerd's words, e.g. `Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available`.
swarmkit's own floor (`invalid memory value ...: Must be at least 4MiB`) is checked earlier, at create."""

from __future__ import annotations

import os

from shoal.executor.base import Resources
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


def limits_problem(resources: Resources, cpus: int) -> str | None:
    """dockerd's refusal for these limits on a node with `cpus` CPUs, in its order, or None."""
    if resources.memory_bytes and resources.memory_bytes < MIN_MEMORY_BYTES:
        return "Minimum memory limit allowed is 6MB"
    if resources.nano_cpus < 0 or resources.nano_cpus > cpus * NANOS_PER_CPU:
        return f"Range of CPUs is from 0.01 to {cpus}.00, as there are only {cpus} CPUs available"
    return None


def check_limits(resources: Resources, cpus: int | None = None) -> None:
    """Raise InvalidTaskSpec (the task is rejected with the message as its error) when dockerd would
    refuse to create the task's container."""
    problem = limits_problem(resources, usable_cpus() if cpus is None else cpus)
    if problem is not None:
        raise InvalidTaskSpec(problem)
