"""The FakeExecutor behaves like the protocol says, so agent tests built on it mean something."""

from __future__ import annotations

import asyncio

import pytest

from shoal.executor.base import ContainerState, Executor, TaskRuntime
from shoal.executor.errors import CommandRequired, ContainerNotFound, InvalidTaskSpec
from shoal.testing.clock import FakeClock
from shoal.testing.fake_executor import FakeExecutor


def runtime(task_id: str = "t1", **kw: object) -> TaskRuntime:
    values: dict[str, object] = {"command": ("serve",)}
    values.update(kw)
    return TaskRuntime(task_id, "s1", "web", "n1", 1, "img", **values)  # type: ignore[arg-type]


async def test_lifecycle_and_scripted_exit() -> None:
    executor: Executor = FakeExecutor()
    assert isinstance(executor, FakeExecutor)
    controller = executor.controller(runtime())
    await controller.prepare()
    assert (await controller.inspect()).state is ContainerState.CREATED
    await controller.start()
    waiter = asyncio.create_task(controller.wait())
    await asyncio.sleep(0)
    assert not waiter.done()
    executor.exit_task("t1", 3)
    status = await asyncio.wait_for(waiter, 1)
    assert status.exit_code == 3
    await controller.remove()
    with pytest.raises(ContainerNotFound):
        await controller.inspect()
    assert executor.steps("t1") == ["prepare", "start", "wait", "remove"]


async def test_failures_can_be_injected_per_task() -> None:
    executor = FakeExecutor()
    executor.fail("prepare", InvalidTaskSpec("bad user"), task_id="t1")
    with pytest.raises(InvalidTaskSpec):
        await executor.controller(runtime("t1")).prepare()
    await executor.controller(runtime("t2")).prepare()
    with pytest.raises(CommandRequired):
        await executor.controller(runtime("t3", command=())).prepare()


async def test_grace_period_passes_only_on_the_fake_clock() -> None:
    clock = FakeClock()
    executor = FakeExecutor(clock=clock)
    controller = executor.controller(runtime(stop_grace_period=10.0))
    await controller.prepare()
    await controller.start()
    executor.ignore_stop("t1")
    stopping = asyncio.create_task(controller.shutdown())
    await asyncio.sleep(0)
    assert not stopping.done()
    clock.advance(10)
    await asyncio.wait_for(stopping, 1)
    assert (await controller.inspect()).exit_code == 137


async def test_restarted_executor_adopts_containers() -> None:
    executor = FakeExecutor()
    controller = executor.controller(runtime())
    await controller.prepare()
    await controller.start()
    pid = (await controller.inspect()).pid
    executor.emit_log("t1", b"hello")
    adopted = await executor.restarted().adopt()
    assert [(a.runtime.task_id, a.status.pid) for a in adopted] == [("t1", pid)]
    assert [line.data async for line in controller.logs()] == [b"hello\n"]
