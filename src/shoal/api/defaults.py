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


# ClusterSpec.Dispatcher.HeartbeatPeriod: agents heartbeat this often; a node silent for
# HEARTBEAT_GRACE_MULTIPLIER periods is marked down.
HEARTBEAT_PERIOD = 5 * NANOS
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
