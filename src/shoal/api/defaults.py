"""Swarm's defaults and the units of Docker's numbers, in one place: the control API fills and shows
them, the orchestrators and the agent act on them. Durations in specs are nanoseconds (Go's
time.Duration); NanoCPUs count billionths of a CPU.

The mappings are read-only: merge them into a new dict (`{**RESTART_DEFAULTS, **policy}`)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

NANOS = 1_000_000_000  # nanoseconds in a second; NanoCPUs in one CPU


def seconds(nanos: int | float) -> float:
    """A Docker duration (nanoseconds) in seconds."""
    return nanos / NANOS


# ClusterSpec.Dispatcher.HeartbeatPeriod: agents heartbeat every half period; a node silent for
# HEARTBEAT_GRACE_MULTIPLIER periods is marked down, and its tasks are replaced at once (no restart
# delay). Swarm's default is 5 s; shoal's is 1 s, chosen by measurement (BENCHMARKS.md, "Cluster"): a
# cut-off worker's tasks run elsewhere ~3 s after the cut, and no soak (idle, 10 % loss on every link, a
# node paused 1 s in 10) saw a spurious Down. After a leader change the dispatcher waits at least 15 s
# (its LEADER_CHANGE_GRACE) for unheard nodes whatever the period. `docker info` shows it as Swarm does.
HEARTBEAT_PERIOD = 1 * NANOS
HEARTBEAT_GRACE_MULTIPLIER = 3

# ClusterSpec.CAConfig.NodeCertExpiry: 90 days.
NODE_CERT_EXPIRY = 2160 * 3600 * NANOS

# ContainerSpec.StopGracePeriod when unset: SIGKILL this long after the stop signal.
STOP_GRACE_PERIOD = 10 * NANOS

# TaskTemplate.RestartPolicy (swarmkit's restart supervisor; `docker service create` shows these).
RESTART_DEFAULTS: Mapping[str, Any] = MappingProxyType({
    "Condition": "any", "Delay": 5 * NANOS, "MaxAttempts": 0,
})

# UpdateConfig and RollbackConfig (both have the same defaults in swarmkit's defaults package).
UPDATE_DEFAULTS: Mapping[str, Any] = MappingProxyType({
    "Parallelism": 1, "FailureAction": "pause", "Monitor": 5 * NANOS, "MaxFailureRatio": 0,
    "Order": "stop-first",
})
