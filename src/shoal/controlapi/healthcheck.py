"""ContainerSpec.Healthcheck: decoded as Go decodes container.HealthConfig (a wrong type is refused
with encoding/json's text), then swarmkit's checks: durations (Interval, Timeout, StartPeriod) of at
least 1ms when given, and Retries not negative."""

from __future__ import annotations

from shoal.api import errors
from shoal.api.objects import Obj, dig
from shoal.controlapi.schema import DURATION, INT, STR, ListOf, Struct, conform

MINIMUM_NS = 1_000_000  # 1ms, swarmkit's minimum for a health-check duration
_HEALTH_CONFIG = Struct("HealthConfig", {"Test": ListOf(STR), "Interval": DURATION, "Timeout": DURATION,
                                         "StartPeriod": DURATION, "Retries": INT})


def check_healthcheck(spec: Obj) -> None:
    """Refuses a bad health check; a good one is stored as decoded (unknown fields dropped)."""
    container = dig(spec, "TaskTemplate", "ContainerSpec")
    if not isinstance(container, dict) or container.get("Healthcheck") is None:
        return
    check = conform(container["Healthcheck"], _HEALTH_CONFIG, "ServiceSpec.TaskTemplate.ContainerSpec.Healthcheck")
    # every HealthConfig field is omitempty in Go: nulls and zeros (docker-py sends them) are not shown
    container["Healthcheck"] = {key: value for key, value in check.items() if value}
    for field in ("Interval", "Timeout", "StartPeriod"):
        value = int(check.get(field) or 0)
        if value != 0 and value < MINIMUM_NS:
            raise errors.InvalidArgument(f"ContainerSpec: {field} in HealthConfig cannot be less than 1ms", grpc=True)
    if int(check.get("Retries") or 0) < 0:
        raise errors.InvalidArgument("ContainerSpec: Retries in HealthConfig cannot be negative", grpc=True)
