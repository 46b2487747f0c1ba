"""Free host ports for a task's host-mode ports published as 0, as dockerd's port allocator gives them:
the kernel's ephemeral range, skipping ports other tasks of this node were given (the mesh routes those
with NAT rules, which hold no socket the kernel would see)."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable

from shoal.executor.base import PortBinding, PortSpec

ATTEMPTS = 64


def kernel_pick(protocol: str) -> int:
    """A port the kernel has free now for `protocol` (bound to port 0 and let go)."""
    kind = socket.SOCK_DGRAM if protocol == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("0.0.0.0", 0))
        return int(probe.getsockname()[1])


def choose_host_ports(wanted: Iterable[PortSpec], taken: set[tuple[str, int]],
                      pick: Callable[[str], int] = kernel_pick) -> tuple[PortBinding, ...]:
    """One free port per wanted port (of its protocol), none of them in `taken` ((protocol, port) pairs)
    nor given twice. OSError when no such port turns up."""
    chosen: list[PortBinding] = []
    used = set(taken)
    for port in wanted:
        number = next((n for n in (pick(port.protocol) for _ in range(ATTEMPTS)) if (port.protocol, n) not in used),
                      None)
        if number is None:
            raise OSError(f"no free {port.protocol} host port found")
        used.add((port.protocol, number))
        chosen.append(PortBinding(port.target, port.protocol, number))
    return tuple(chosen)
