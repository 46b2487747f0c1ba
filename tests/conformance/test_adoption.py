"""Tasks outlive the daemon: a new executor on the same state finds them, running or exited."""

from __future__ import annotations

from shoal.executor.base import CAP_ADOPT, ContainerState

from .conftest import Harness, eventually, within

LOOP = "echo started; while :; do sleep 0.1; done"


async def test_new_executor_adopts_running_and_exited_tasks(harness: Harness) -> None:
    harness.require(CAP_ADOPT)
    running = await harness.started(LOOP)
    exits = await harness.started("exit 5")
    before = await running.inspect()

    async def exited() -> bool:
        return (await exits.inspect()).state is ContainerState.EXITED

    await eventually(exited)
    await harness.executor.close()

    successor = harness.reopen()
    adopted = {task.runtime.task_id: task for task in await successor.adopt()}
    assert running.runtime.task_id in adopted and exits.runtime.task_id in adopted

    alive = adopted[running.runtime.task_id]
    assert alive.status.state is ContainerState.RUNNING
    assert alive.status.pid == before.pid  # re-attached, not restarted
    assert alive.status.container_id == before.container_id
    assert alive.runtime.container_name == running.runtime.container_name

    gone = adopted[exits.runtime.task_id]
    assert gone.status.state is ContainerState.EXITED
    assert gone.status.exit_code == 5

    # the successor drives the adopted task: logs from before the restart, then a stop
    again = harness.controller(alive.runtime, successor)
    assert b"started\n" in [line.data async for line in again.logs()]
    await within(again.shutdown(grace=0.5))
    assert (await again.inspect()).state is ContainerState.EXITED


async def test_wait_started_before_a_restart_completes_after_it(harness: Harness) -> None:
    harness.require(CAP_ADOPT)
    controller = await harness.started("sleep 0.5; exit 9")
    successor = harness.reopen()
    adopted = harness.controller(controller.runtime, successor)
    status = await within(adopted.wait())
    assert status.exit_code == 9
