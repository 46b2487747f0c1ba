"""Env, working directory, user and hostname reach the workload."""

from __future__ import annotations

from shoal.executor.base import CAP_HOSTNAME, CAP_USER, STDOUT, Controller

from .conftest import Harness


async def stdout_lines(controller: Controller) -> list[str]:
    return [line.data.decode().rstrip("\n") async for line in controller.logs() if line.stream == STDOUT]


async def test_env_and_workdir(harness: Harness) -> None:
    controller, status = await harness.finished(
        'echo "foo=$FOO"; echo "spaced=$SPACED"; pwd', env=("FOO=bar", "SPACED=a b"), workdir="/tmp"
    )
    assert status.exit_code == 0
    assert await stdout_lines(controller) == ["foo=bar", "spaced=a b", "/tmp"]


async def test_command_then_args(harness: Harness) -> None:
    controller, _ = await harness.finished("", command=("echo", "one"), args=("two", "three"))
    assert await stdout_lines(controller) == ["one two three"]


async def test_user(harness: Harness) -> None:
    harness.require(CAP_USER)
    controller, status = await harness.finished("id -u; id -g", user="65534:65534")
    assert status.exit_code == 0
    assert await stdout_lines(controller) == ["65534", "65534"]


async def test_default_hostname_is_the_short_container_id(harness: Harness) -> None:
    harness.require(CAP_HOSTNAME)
    controller, status = await harness.finished('hostname; echo "$HOSTNAME"')
    short = status.container_id[:12]
    assert await stdout_lines(controller) == [short, short]


async def test_hostname_can_be_set(harness: Harness) -> None:
    harness.require(CAP_HOSTNAME)
    controller, _ = await harness.finished("hostname", hostname="web-3")
    assert await stdout_lines(controller) == ["web-3"]
