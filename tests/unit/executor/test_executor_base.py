from __future__ import annotations

import os
import signal

import pytest

from shoal.executor.base import (
    PortSpec,
    Resources,
    TaskRuntime,
    container_name,
    exit_code_from_wait_status,
    parse_signal,
    task_name,
)


def test_names_follow_swarm_rules() -> None:
    assert task_name("web", 3, "node1") == "web.3"
    assert task_name("agent", 0, "node1") == "agent.node1"
    assert container_name("web", 3, "node1", "tid") == "web.3.tid"
    assert container_name("agent", 0, "node1", "tid") == "agent.node1.tid"


def test_argv_is_command_then_args() -> None:
    rt = TaskRuntime("t", "s", "web", "n", 1, "img", command=("python3", "-m"), args=("http.server",))
    assert rt.argv == ["python3", "-m", "http.server"]
    assert TaskRuntime("t", "s", "web", "n", 1, "img", args=("only",)).argv == ["only"]


def test_runtime_json_round_trip() -> None:
    rt = TaskRuntime(
        "t", "s", "web", "n", 2, "img", command=("a",), args=("b",), env=("X=1",), workdir="/w",
        user="u", hostname="h", stop_signal="SIGINT", stop_grace_period=3.5, labels={"k": "v"},
        resources=Resources(1, 2, 3), tty=True, ports=(PortSpec(80, "tcp"), PortSpec(53, "udp")),
    )  # fmt: skip
    assert TaskRuntime.from_json(rt.to_json()) == rt


@pytest.mark.parametrize(
    ("text", "expected"),
    [("SIGTERM", signal.SIGTERM), ("TERM", signal.SIGTERM), ("kill", signal.SIGKILL), ("10", signal.SIGUSR1)],
)
def test_parse_signal_accepts_docker_spellings(text: str, expected: signal.Signals) -> None:
    assert parse_signal(text) == expected


def test_parse_signal_rejects_unknown() -> None:
    with pytest.raises(ValueError, match="Invalid signal: SIGNOPE"):
        parse_signal("SIGNOPE")


def test_exit_codes_read_as_a_shell_reports_them() -> None:
    assert exit_code_from_wait_status(3 << 8) == 3
    assert exit_code_from_wait_status(signal.SIGKILL) == 137
    assert exit_code_from_wait_status(signal.SIGTERM) == 143
    pid = os.fork()
    if pid == 0:
        os._exit(7)
    _, status = os.waitpid(pid, 0)
    assert exit_code_from_wait_status(status) == 7
