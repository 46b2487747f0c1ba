"""Health checks, as Swarm's container executor treats them: start() returns only once a container
with a health check reports healthy, and an unhealthy container fails its task (it is stopped).

The engine's event stream says when the health status changes; subscribing before reading the current
status means no change can slip between the two."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from shoal.executor.docker.engine import EngineClient, Params, iter_chunks
from shoal.executor.docker.stdcopy import LineSplitter
from shoal.executor.errors import ExecutorError

HEALTHY = "healthy"
UNHEALTHY = "unhealthy"
STOPPED = "stopped"


class UnhealthyContainer(ExecutorError):
    """Swarm's ErrContainerUnhealthy; given the stopped container's exit code, worded as Swarm's
    task error then reads ("task: non-zero exit (137): dockerexec: unhealthy container")."""

    CAUSE = "dockerexec: unhealthy container"

    def __init__(self, exit_code: int | None = None) -> None:
        prefix = f"task: non-zero exit ({exit_code}): " if exit_code else ""
        super().__init__(prefix + self.CAUSE)


def has_health_check(inspect: Mapping[str, Any]) -> bool:
    """The image's HEALTHCHECK counts as much as the service's; `NONE` switches it off."""
    check = (inspect.get("Config") or {}).get("Healthcheck") or {}
    test = check.get("Test") or []
    return bool(test) and test[0] != "NONE"


def current_health(inspect: Mapping[str, Any]) -> str | None:
    """healthy / unhealthy / stopped, or None while the verdict is pending."""
    state = inspect.get("State") or {}
    if state.get("Status") != "running":
        return STOPPED
    status = (state.get("Health") or {}).get("Status")
    return status if status in (HEALTHY, UNHEALTHY) else None


def verdict_from_event(event: Mapping[str, Any]) -> str | None:
    action = str(event.get("Action") or event.get("status") or "")
    if action.startswith("health_status"):
        status = action.partition(":")[2].strip()
        return status if status in (HEALTHY, UNHEALTHY) else None
    if action in ("die", "destroy"):
        return STOPPED
    return None


def decode_events(splitter: LineSplitter, chunk: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in splitter.feed(chunk) if line.strip()]


async def next_verdict(engine: EngineClient, container_id: str, *, want: frozenset[str]) -> str:
    """Waits until the container's health is one of `want`, or it stopped (STOPPED), and returns it."""
    params: Params = {
        "since": f"{time.time():.9f}",
        "filters": {"type": ["container"], "container": [container_id]},
    }
    # The engine answers the subscription at once; only then is the current state read.
    async with engine.stream("GET", "/events", params=params) as response:
        now = current_health(await engine.call("GET", f"/containers/{container_id}/json"))
        if now is not None and (now in want or now == STOPPED):
            return now
        splitter = LineSplitter()
        async for chunk in iter_chunks(response):
            for event in decode_events(splitter, chunk):
                verdict = verdict_from_event(event)
                if verdict is not None and (verdict in want or verdict == STOPPED):
                    return verdict
    return STOPPED  # the engine closed the stream: it is going away
