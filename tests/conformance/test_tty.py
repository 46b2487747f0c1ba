"""Terminals: a task or exec created with tty gets one (output arrives as stdout, as Docker's)."""

from __future__ import annotations

from shoal.executor.base import CAP_EXEC, STDOUT, ExecSession

from .conftest import Harness, within


async def test_task_with_tty_writes_to_a_terminal(harness: Harness) -> None:
    script = "if [ -t 1 ]; then echo on-tty; else echo no-tty; fi; echo err >&2"
    controller, status = await harness.finished(script, tty=True)
    assert status.exit_code == 0
    lines = [line async for line in controller.logs()]
    assert {line.stream for line in lines} == {STDOUT}
    assert [line.data.rstrip(b"\r\n") for line in lines] == [b"on-tty", b"err"]


async def test_exec_with_tty(harness: Harness) -> None:
    harness.require(CAP_EXEC)
    controller = await harness.started("while :; do sleep 0.1; done")
    status = await controller.inspect()
    exec_id = await harness.executor.exec_create(
        status.container_id, ["sh", "-c", "[ -t 0 ] && [ -t 1 ] && echo on-tty; exit 4"], tty=True
    )
    session = await harness.executor.exec_start(exec_id)
    output = await within(_all_output(session))
    assert b"on-tty" in output
    assert await within(session.wait()) == 4


async def _all_output(session: ExecSession) -> bytes:
    out = b""
    while (chunk := await session.read()) is not None:
        out += chunk[1]
    return out
