"""Health checks at the agent: the config (the service's over the image's, Docker's defaults), the
probe verdicts (retries, start period, timeout), and a task that stays STARTING until healthy, then
RUNNING, then FAILS with Swarm's error once unhealthy; a job's task (desired COMPLETE) runs to its end."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

from shoal.agent.health import (
    HEALTHY,
    STARTING,
    UNHEALTHY,
    HealthChecks,
    HealthConfig,
    HealthMonitor,
    ProbeResult,
    health_config,
)
from shoal.agent.runtime import task_runtime
from shoal.agent.taskmanager import TaskManager
from shoal.api import states
from shoal.api.objects import Obj
from shoal.testing.clock import FakeClock
from shoal.testing.fake_executor import FakeExecutor

NODE = "node1"
S = 1_000_000_000  # a second in Docker's nanoseconds


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while not condition():
            await asyncio.sleep(0)


def test_config_defaults_and_forms() -> None:
    assert health_config(None) is None
    assert health_config({"Test": ["NONE"]}, {"Test": ["CMD", "check"]}) is None
    shell = health_config({"Test": ["CMD-SHELL", "curl -f localhost || exit 1"]})
    assert shell == HealthConfig(("/bin/sh", "-c", "curl -f localhost || exit 1"), 30.0, 30.0, 3, 0.0)
    # fields left zero come from the image's HEALTHCHECK; the service's win where given
    merged = health_config({"Interval": 2 * S, "Retries": 1},
                           {"Test": ["CMD", "check", "-q"], "Interval": 9 * S, "Timeout": 4 * S})
    assert merged == HealthConfig(("check", "-q"), 2.0, 4.0, 1, 0.0)


def _result(clock: FakeClock, code: int) -> ProbeResult:
    return ProbeResult(clock.now(), clock.now(), code, "")


def test_retries_and_start_period() -> None:
    clock = FakeClock()
    started = clock.now()
    monitor = HealthMonitor(HealthConfig(("x",), 1, 1, 2, start_period=10), _no_probe, clock, started)
    monitor.record(_result(clock, 1))
    monitor.record(_result(clock, 1))
    assert (monitor.status, monitor.failing_streak) == (STARTING, 0)  # within the start period
    clock.advance(10)
    monitor.record(_result(clock, 1))
    assert (monitor.status, monitor.failing_streak) == (STARTING, 1)
    monitor.record(_result(clock, 0))
    assert (monitor.status, monitor.failing_streak) == (HEALTHY, 0)
    monitor.record(_result(clock, 1))
    assert monitor.status == HEALTHY
    monitor.record(_result(clock, 1))
    assert (monitor.status, monitor.failing_streak) == (UNHEALTHY, 2)
    assert len(monitor.to_docker()["Log"]) == 5  # the last five results only


async def _no_probe(argv: list[str]) -> tuple[int, str]:
    return 0, ""


async def test_a_probe_past_its_timeout_fails_with_dockers_message() -> None:
    clock = FakeClock()
    hung = asyncio.Event()

    async def never(argv: list[str]) -> tuple[int, str]:
        await hung.wait()
        return 0, ""

    monitor = HealthMonitor(HealthConfig(("x",), 1, 2, 1), never, clock, clock.now())
    job = asyncio.create_task(monitor.run())
    await until(lambda: clock.sleepers == 1)
    clock.advance(1)  # the interval
    await until(lambda: clock.sleepers == 1)
    clock.advance(2)  # the timeout
    await until(lambda: monitor.status == UNHEALTHY)
    job.cancel()
    assert monitor.log[-1].exit_code == -1
    assert monitor.log[-1].output == "Health check exceeded timeout (2s)"


def task(health: Obj | None = None, desired: str = states.RUNNING) -> Obj:
    container: Obj = {"Image": "busybox", "Args": ["sleep", "60"]}
    if health is not None:
        container["Healthcheck"] = health
    return {"ID": "t1", "ServiceID": "svc", "ServiceAnnotations": {"Name": "web"}, "Slot": 1, "NodeID": NODE,
            "Spec": {"ContainerSpec": container}, "Status": {"State": states.ASSIGNED}, "DesiredState": desired}


async def test_task_is_starting_until_healthy_then_fails_once_unhealthy() -> None:
    clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
    executor = FakeExecutor(clock=clock)
    reports: list[Obj] = []
    health = HealthChecks(executor, clock)
    the_task = task({"Test": ["CMD", "check"], "Interval": S, "Retries": 2})
    controller = executor.controller(task_runtime(the_task, NODE, "host"))
    manager = TaskManager(the_task, controller, lambda _, s: reports.append(s), clock, health=health)
    executor.exec_results[("check",)] = (b"not yet", 1)
    manager.start()
    await until(lambda: clock.sleepers == 1)
    assert reports[-1]["State"] == states.STARTING
    container_id = executor.containers_by_task["t1"].status.container_id
    clock.advance(1)
    await until(lambda: clock.sleepers == 1 and len(health.book.get(container_id).log) == 1)  # type: ignore[union-attr]
    assert reports[-1]["State"] == states.STARTING  # one failure: not unhealthy, not running
    executor.exec_results[("check",)] = (b"ok", 0)
    clock.advance(1)
    await until(lambda: reports[-1]["State"] == states.RUNNING)
    monitor = health.book.get(container_id)
    assert monitor is not None and monitor.to_docker()["Status"] == HEALTHY
    assert monitor.to_docker()["Log"][-1]["Output"] == "ok"
    executor.exec_results[("check",)] = (b"broken", 1)
    await until(lambda: clock.sleepers == 1 and len(monitor.log) == 2)
    clock.advance(1)
    await until(lambda: clock.sleepers == 1 and len(monitor.log) == 3)
    clock.advance(1)
    await until(lambda: reports[-1]["State"] == states.FAILED)
    assert reports[-1]["Err"] == "task: non-zero exit (143): dockerexec: unhealthy container"
    assert "shutdown" in executor.steps("t1")
    await manager.stop()


async def test_a_task_without_health_check_runs_at_once_and_a_jobs_task_completes() -> None:
    clock = FakeClock()
    executor = FakeExecutor(clock=clock)
    reports: list[Obj] = []
    the_task = task(desired=states.COMPLETE)
    controller = executor.controller(task_runtime(the_task, NODE, "host"))
    manager = TaskManager(the_task, controller, lambda _, s: reports.append(s), clock,
                          health=HealthChecks(executor, clock))
    manager.start()
    await until(lambda: bool(reports) and reports[-1]["State"] == states.RUNNING)
    executor.exit_task("t1", 0)
    await until(lambda: reports[-1]["State"] == states.COMPLETE)
    assert "shutdown" not in executor.steps("t1")


async def test_a_readopted_task_keeps_running_and_is_still_checked() -> None:
    """After a daemon restart the task's checks go on: no new RUNNING report, and unhealthy still fails."""
    clock = FakeClock()
    executor = FakeExecutor(clock=clock)
    the_task = task({"Test": ["CMD", "check"], "Interval": S, "Retries": 1})
    reports: list[Obj] = []
    first = TaskManager(the_task, executor.controller(task_runtime(the_task, NODE, "host")),
                        lambda _, s: reports.append(s), clock, health=HealthChecks(executor, clock))
    first.start()
    await until(lambda: clock.sleepers == 1)
    clock.advance(1)
    await until(lambda: reports[-1]["State"] == states.RUNNING)
    await first.stop()  # shoald goes away; the workload stays
    later = executor.restarted()
    (adopted,) = await later.adopt()
    running = {**the_task, "Status": {"State": states.RUNNING}}
    reports.clear()
    again = TaskManager(running, later.controller(adopted.runtime), lambda _, s: reports.append(s), clock,
                        adopted=adopted.status, health=HealthChecks(later, clock))
    again.start()
    await until(lambda: clock.sleepers == 1)
    assert reports == []
    later.exec_results[("check",)] = (b"down", 1)
    clock.advance(1)
    await until(lambda: bool(reports) and reports[-1]["State"] == states.FAILED)
    assert reports[-1]["Err"].endswith("dockerexec: unhealthy container")


async def test_an_engine_checked_task_fails_with_the_engines_cause() -> None:
    """The docker executor's wait() reports dockerd's verdict as the status' error; the task error
    then reads as Swarm's, exit code first."""
    import dataclasses

    from shoal.executor.base import ContainerStatus

    clock = FakeClock()
    executor = FakeExecutor(clock=clock)
    the_task = task()
    inner = executor.controller(task_runtime(the_task, NODE, "host"))

    class EngineChecked:
        def __getattr__(self, name: str) -> object:
            return getattr(inner, name)

        async def wait(self) -> ContainerStatus:
            return dataclasses.replace(await inner.wait(), error="dockerexec: unhealthy container")

    reports: list[Obj] = []
    manager = TaskManager(the_task, EngineChecked(), lambda _, s: reports.append(s), clock,  # type: ignore[arg-type]
                          health=HealthChecks(executor, clock))
    manager.start()
    await until(lambda: bool(reports) and reports[-1]["State"] == states.RUNNING)
    executor.exit_task("t1", 137)
    await until(lambda: reports[-1]["State"] == states.FAILED)
    assert reports[-1]["Err"] == "task: non-zero exit (137): dockerexec: unhealthy container"
