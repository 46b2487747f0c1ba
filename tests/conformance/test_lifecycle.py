"""Lifecycle, exit codes, stop signal and grace period: the same on every executor."""

from __future__ import annotations

import asyncio

import pytest

from shoal.executor.base import ContainerState, Controller
from shoal.executor.errors import CommandRequired, ContainerNotFound, ExecutorError

from .conftest import Harness, within

LOOP_FOREVER = "while :; do sleep 0.1; done"


async def test_prepare_start_wait_remove(harness: Harness) -> None:
    controller = harness.controller(harness.runtime("echo done"))
    await controller.prepare()
    created = await controller.inspect()
    assert created.state is ContainerState.CREATED
    assert len(created.container_id) == 64
    int(created.container_id, 16)

    await controller.start()
    final = await within(controller.wait())
    assert final.state is ContainerState.EXITED
    assert final.exit_code == 0
    assert final.container_id == created.container_id
    assert final.started_at is not None and final.finished_at is not None
    assert final.finished_at >= final.started_at

    await controller.remove()
    with pytest.raises(ContainerNotFound):
        await controller.inspect()
    await controller.remove()  # removing twice is harmless


async def test_prepare_and_start_are_idempotent(harness: Harness) -> None:
    controller = harness.controller(harness.runtime(LOOP_FOREVER))
    await controller.prepare()
    first = await controller.inspect()
    await controller.prepare()
    await controller.start()
    running = await controller.inspect()
    await controller.start()
    again = await controller.inspect()
    assert first.container_id == running.container_id == again.container_id
    assert running.state is ContainerState.RUNNING
    assert running.pid is not None and running.pid == again.pid


@pytest.mark.parametrize("code", [0, 3, 42])
async def test_exit_code_is_reported(harness: Harness, code: int) -> None:
    _, status = await harness.finished(f"exit {code}")
    assert status.exit_code == code


async def test_terminate_kills_with_137(harness: Harness) -> None:
    controller = await harness.started(LOOP_FOREVER)
    assert (await controller.inspect()).state is ContainerState.RUNNING
    await within(controller.terminate())
    status = await within(controller.wait())
    assert status.state is ContainerState.EXITED
    assert status.exit_code == 137


async def test_shutdown_delivers_stop_signal_to_a_workload_that_handles_it(harness: Harness) -> None:
    controller = await harness.started(f"trap 'echo bye; exit 0' TERM; echo ready; {LOOP_FOREVER}")
    await within(_ready(controller))
    await within(controller.shutdown(grace=20))
    status = await controller.inspect()
    assert status.exit_code == 0  # the trap ran: not killed after the grace period
    lines = [line.data async for line in controller.logs()]
    assert b"bye\n" in lines


async def test_custom_stop_signal(harness: Harness) -> None:
    script = f"trap 'exit 0' USR1; trap '' TERM; echo ready; {LOOP_FOREVER}"
    controller = await harness.started(script, stop_signal="SIGUSR1")
    await within(_ready(controller))
    await within(controller.shutdown(grace=20))
    assert (await controller.inspect()).exit_code == 0


async def test_shutdown_kills_after_grace_when_stop_signal_is_ignored(harness: Harness) -> None:
    controller = await harness.started(f"trap '' TERM; echo ready; {LOOP_FOREVER}")
    await within(_ready(controller))
    await within(controller.shutdown(grace=0.5))
    status = await controller.inspect()
    assert status.state is ContainerState.EXITED
    assert status.exit_code == 137


async def test_shutdown_of_an_exited_task_is_a_no_op(harness: Harness) -> None:
    controller, _ = await harness.finished("exit 4")
    await controller.shutdown(grace=1)
    await controller.terminate()
    assert (await controller.inspect()).exit_code == 4


async def test_task_without_command_is_rejected_clearly(harness: Harness) -> None:
    if not harness.kind.name.startswith("process"):
        pytest.skip("an image executor falls back to the image's own command")
    controller = harness.controller(harness.runtime("", command=(), args=()))
    with pytest.raises(CommandRequired, match="task has no command"):
        await controller.prepare()


async def test_missing_executable_fails_the_start(harness: Harness) -> None:
    controller = harness.controller(harness.runtime("", command=("no-such-command-xyz",), args=()))
    try:
        await controller.prepare()
        await controller.start()
    except ExecutorError as exc:
        assert "no-such-command-xyz" in str(exc)
        return
    status = await within(controller.wait())  # some runtimes only report it as exit 127
    assert status.exit_code in (126, 127)


async def _ready(controller: Controller) -> None:
    """Until the workload printed `ready` (its traps are set)."""
    while b"ready\n" not in [line.data async for line in controller.logs()]:
        await asyncio.sleep(0.05)


async def test_shutdown_without_grace_uses_the_task_grace_period(harness: Harness) -> None:
    controller = await harness.started(f"trap '' TERM; echo ready; {LOOP_FOREVER}", stop_grace_period=0.5)
    await within(_ready(controller))
    await within(controller.shutdown())
    assert (await controller.inspect()).exit_code == 137
