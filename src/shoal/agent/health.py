"""Health checks run by the agent, as dockerd runs them: a probe command executed inside the task
(through the executor's exec API, so it works alike on every executor) every Interval; a probe that
exits 0 makes the task healthy, `Retries` failures in a row make it unhealthy, failures within the
StartPeriod of a task never healthy yet do not count, and a probe slower than Timeout fails with
Docker's "Health check exceeded timeout". The last five results are kept for `docker inspect`.

The config is the service's ContainerSpec.Healthcheck over the image's HEALTHCHECK (fields left zero
or empty come from the image; Test ["NONE"] switches checks off). The docker executor is skipped:
dockerd runs the checks itself (executor/docker/health.py reads its verdicts)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from shoal.api.defaults import NANOS
from shoal.base.clock import Clock, rfc3339
from shoal.executor.base import Executor

STARTING = "starting"
HEALTHY = "healthy"
UNHEALTHY = "unhealthy"
DEFAULT_INTERVAL = 30.0
DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 3
MAX_LOG_ENTRIES = 5  # dockerd keeps as many
MAX_OUTPUT = 4096  # bytes of a probe's output kept, as dockerd
# Executors whose engine runs the checks itself.
ENGINE_RUNS_CHECKS = frozenset({"docker"})
# Swarm's error for a task failed by its health check (dockerd's controller wraps it with the exit code).
UNHEALTHY_ERROR = "dockerexec: unhealthy container"

# A probe runs argv in the container and returns (exit code, output).
Probe = Callable[[list[str]], Awaitable[tuple[int, str]]]


@runtime_checkable
class ImageHealthcheck(Protocol):
    """A controller that knows its image's HEALTHCHECK (executors that run images), once prepared."""

    def image_healthcheck(self) -> Mapping[str, Any] | None: ...


@dataclass(frozen=True)
class HealthConfig:
    argv: tuple[str, ...]
    interval: float = DEFAULT_INTERVAL  # seconds
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    start_period: float = 0.0


def health_config(spec: Mapping[str, Any] | None, image: Mapping[str, Any] | None = None) -> HealthConfig | None:
    """The checks a task gets, or None when it has none."""
    spec, image = spec or {}, image or {}

    def pick(key: str) -> Any:
        return spec.get(key) or image.get(key)

    test = list(pick("Test") or [])
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD-SHELL":
        argv: tuple[str, ...] = ("/bin/sh", "-c", " ".join(test[1:]))
    elif test[0] == "CMD":
        argv = tuple(test[1:])
    else:
        argv = ("/bin/sh", "-c", " ".join(test))  # the old bare-string form
    if not argv:
        return None
    return HealthConfig(
        argv=argv,
        interval=int(pick("Interval") or 0) / NANOS or DEFAULT_INTERVAL,
        timeout=int(pick("Timeout") or 0) / NANOS or DEFAULT_TIMEOUT,
        retries=int(pick("Retries") or 0) or DEFAULT_RETRIES,
        start_period=int(pick("StartPeriod") or 0) / NANOS,
    )


def go_duration(seconds: float) -> str:
    """A few durations as Go prints them ("30s", "1m0s", "500ms"), for the timeout message."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    minutes, rest = divmod(seconds, 60)
    text = f"{rest:g}s"
    return f"{int(minutes)}m{text}" if minutes else text


@dataclass(frozen=True)
class ProbeResult:
    start: datetime
    end: datetime
    exit_code: int
    output: str

    def to_docker(self) -> dict[str, Any]:
        return {"Start": rfc3339(self.start), "End": rfc3339(self.end), "ExitCode": self.exit_code,
                "Output": self.output}


class HealthMonitor:
    """Probes one task until stopped; `status` is starting, healthy or unhealthy, and `changed` is set
    whenever it moves (the task manager clears it)."""

    def __init__(self, config: HealthConfig, probe: Probe, clock: Clock, started_at: datetime) -> None:
        self.config = config
        self._probe = probe
        self._clock = clock
        self._started_at = started_at
        self.status = STARTING
        self.failing_streak = 0
        self.log: deque[ProbeResult] = deque(maxlen=MAX_LOG_ENTRIES)
        self.changed = asyncio.Event()

    def to_docker(self) -> dict[str, Any]:
        """State.Health of `docker inspect`."""
        return {"Status": self.status, "FailingStreak": self.failing_streak,
                "Log": [result.to_docker() for result in self.log]}

    async def run(self) -> None:
        while True:
            await self._clock.sleep(self.config.interval)
            self.record(await self._probe_once())

    async def _probe_once(self) -> ProbeResult:
        start = self._clock.now()
        probe = asyncio.ensure_future(self._probe(list(self.config.argv)))
        deadline = asyncio.ensure_future(self._clock.sleep(self.config.timeout))
        try:
            await asyncio.wait({probe, deadline}, return_when=asyncio.FIRST_COMPLETED)
            if probe.done():
                try:
                    code, output = probe.result()
                except Exception as exc:  # the exec could not run (container gone, runtime error)
                    code, output = -1, str(exc)
            else:
                code, output = -1, f"Health check exceeded timeout ({go_duration(self.config.timeout)})"
        finally:
            for job in (probe, deadline):
                if not job.done():
                    job.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await job
        return ProbeResult(start, self._clock.now(), code, output[:MAX_OUTPUT])

    def record(self, result: ProbeResult) -> None:
        self.log.append(result)
        before = self.status
        if result.exit_code == 0:
            self.failing_streak = 0
            self.status = HEALTHY
        else:
            in_start_period = (result.start - self._started_at).total_seconds() < self.config.start_period
            if not (self.status == STARTING and in_start_period):
                self.failing_streak += 1
                if self.failing_streak >= self.config.retries:
                    self.status = UNHEALTHY
        if self.status != before:
            self.changed.set()


def exec_probe(executor: Executor, container_id: str) -> Probe:
    """A probe through the executor's exec API; the output is stdout and stderr as they came."""

    async def probe(argv: list[str]) -> tuple[int, str]:
        exec_id = await executor.exec_create(container_id, argv)
        session = await executor.exec_start(exec_id)
        output = bytearray()
        while (chunk := await session.read()) is not None:
            if len(output) < MAX_OUTPUT:
                output += chunk[1]
        return await session.wait(), output.decode(errors="replace")

    return probe


class HealthBook:
    """The monitors of this node's tasks by container id, so `docker ps` and `docker inspect` can
    show each container's health."""

    def __init__(self) -> None:
        self._monitors: dict[str, HealthMonitor] = {}

    def add(self, container_id: str, monitor: HealthMonitor) -> None:
        self._monitors[container_id] = monitor

    def forget(self, container_id: str) -> None:
        self._monitors.pop(container_id, None)

    def get(self, container_id: str) -> HealthMonitor | None:
        return self._monitors.get(container_id)


class HealthChecks:
    """What the agent gives each task manager: a monitor for a started container that has a check."""

    def __init__(self, executor: Executor, clock: Clock, book: HealthBook | None = None) -> None:
        self._executor = executor
        self._clock = clock
        self.book = book or HealthBook()

    def monitor_for(self, spec_check: Mapping[str, Any] | None, controller: object, container_id: str,
                    started_at: datetime | None) -> HealthMonitor | None:
        if self._executor.name in ENGINE_RUNS_CHECKS:
            return None
        image_check = controller.image_healthcheck() if isinstance(controller, ImageHealthcheck) else None
        config = health_config(spec_check, image_check)
        if config is None:
            return None
        monitor = HealthMonitor(config, exec_probe(self._executor, container_id), self._clock,
                                started_at or self._clock.now())
        self.book.add(container_id, monitor)
        return monitor
