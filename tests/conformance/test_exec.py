"""exec: a command beside the running workload, its output and exit code."""

from __future__ import annotations

import pytest

from shoal.executor.base import CAP_EXEC, CAP_HOSTNAME, STDERR, STDOUT, ExecSession
from shoal.executor.errors import ContainerNotRunning, ExecNotFound

from .conftest import Harness, within

LOOP = "while :; do sleep 0.1; done"


async def drain(session: ExecSession) -> dict[int, bytes]:
    out = {STDOUT: b"", STDERR: b""}
    while (chunk := await session.read()) is not None:
        out[chunk[0]] += chunk[1]
    return out


async def test_exec_output_and_exit_code(harness: Harness) -> None:
    harness.require(CAP_EXEC)
    controller = await harness.started(LOOP, env=("FOO=task-env",))
    status = await controller.inspect()
    exec_id = await harness.executor.exec_create(
        status.container_id, ["sh", "-c", 'echo "out $FOO $BAR"; echo err >&2; exit 7'], env=["BAR=exec-env"]
    )
    session = await harness.executor.exec_start(exec_id)
    output = await within(drain(session))
    assert output[STDOUT] == b"out task-env exec-env\n"
    assert output[STDERR] == b"err\n"
    assert await within(session.wait()) == 7
    info = await harness.executor.exec_inspect(exec_id)
    assert info.exit_code == 7 and not info.running
    assert info.container_id == status.container_id


async def test_exec_runs_in_the_task_namespaces(harness: Harness) -> None:
    harness.require(CAP_EXEC)
    harness.require(CAP_HOSTNAME)
    controller = await harness.started(LOOP, hostname="exec-host", workdir="/tmp")
    status = await controller.inspect()
    exec_id = await harness.executor.exec_create(status.container_id, ["sh", "-c", "hostname; pwd"])
    output = await within(drain(await harness.executor.exec_start(exec_id)))
    assert output[STDOUT] == b"exec-host\n/tmp\n"


async def test_exec_with_stdin(harness: Harness) -> None:
    harness.require(CAP_EXEC)
    controller = await harness.started(LOOP)
    status = await controller.inspect()
    exec_id = await harness.executor.exec_create(status.container_id, ["cat"], stdin=True)
    session = await harness.executor.exec_start(exec_id)
    await session.write(b"hello through stdin\n")
    await session.close_stdin()
    assert (await within(drain(session)))[STDOUT] == b"hello through stdin\n"
    assert await within(session.wait()) == 0


async def test_exec_needs_a_running_task(harness: Harness) -> None:
    harness.require(CAP_EXEC)
    _, status = await harness.finished("exit 0")
    with pytest.raises(ContainerNotRunning):
        await harness.executor.exec_create(status.container_id, ["true"])
    with pytest.raises(ExecNotFound):
        await harness.executor.exec_inspect("0" * 64)


async def test_exec_of_a_missing_command_exits_126(harness: Harness) -> None:
    """As dockerd: an exec whose process cannot start reports exit code 126."""
    harness.require(CAP_EXEC)
    controller = await harness.started(LOOP)
    status = await controller.inspect()
    exec_id = await harness.executor.exec_create(status.container_id, ["no-such-command-xyz"])
    session = await harness.executor.exec_start(exec_id)
    await within(drain(session))
    assert await within(session.wait()) == 126


async def test_exec_joins_the_task_pid_namespace(harness: Harness) -> None:
    harness.require(CAP_HOSTNAME)
    controller = await harness.started(LOOP)
    status = await controller.inspect()
    # the task's /proc shows only its pid namespace: /proc/self exists only for a process inside it
    script = "[ -e /proc/self/stat ] && echo inside || echo outside"
    exec_id = await harness.executor.exec_create(status.container_id, ["sh", "-c", script])
    session = await harness.executor.exec_start(exec_id)
    output = await within(drain(session))
    assert output[STDOUT] == b"inside\n"
