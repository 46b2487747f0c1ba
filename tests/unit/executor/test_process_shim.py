"""The shims (C and Python) at their command line: what lands in the state dir."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from shoal.executor.process.logfile import read_lines
from shoal.executor.process.procfs import is_same_process
from shoal.executor.process.shimbuild import ensure_shim, python_shim
from shoal.executor.process.taskdir import TaskDir


@pytest.fixture(scope="module", params=["c", "python"])
def shim(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    if request.param == "python":
        return python_shim()
    return asyncio.run(ensure_shim(tmp_path_factory.mktemp("shim")))


def run(shim: list[str], state: Path, *argv: str, options: tuple[str, ...] = ()) -> str:
    state.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [*shim, "run", "-s", str(state), *options, "--", *argv], capture_output=True, text=True, timeout=30
    )
    return result.stdout.strip()


def wait_exit(state: Path) -> int:
    task = TaskDir(state)
    deadline = time.monotonic() + 30
    while (record := task.exit()) is None:
        assert time.monotonic() < deadline, "the shim never wrote its exit file"
        time.sleep(0.02)
    return record.code


def test_exit_code_and_streams(shim: list[str], tmp_path: Path) -> None:
    answer = run(shim, tmp_path, "sh", "-c", "echo out; echo err >&2; exit 3")
    assert answer.startswith("ok ")
    assert wait_exit(tmp_path) == 3
    assert [(line.stream, line.data) for line in read_lines(tmp_path / "log")] == [(1, b"out\n"), (2, b"err\n")]


def test_killed_by_signal_reads_128_plus_n(shim: list[str], tmp_path: Path) -> None:
    run(shim, tmp_path, "sh", "-c", "kill -USR1 $$")
    assert wait_exit(tmp_path) == 128 + signal.SIGUSR1


def test_missing_command_is_reported_with_127(shim: list[str], tmp_path: Path) -> None:
    answer = run(shim, tmp_path, "no-such-command-xyz")
    assert answer == 'error exec: "no-such-command-xyz": executable file not found in $PATH'
    assert wait_exit(tmp_path) == 127
    assert "executable file not found" in TaskDir(tmp_path).error()


def test_bad_workdir_is_reported(shim: list[str], tmp_path: Path) -> None:
    answer = run(shim, tmp_path, "true", options=("-w", "/no/such/dir"))
    assert answer.startswith("error ") and "/no/such/dir" in answer
    assert wait_exit(tmp_path) == 126


def test_long_lines_are_split_and_joined_back(shim: list[str], tmp_path: Path) -> None:
    run(shim, tmp_path, "sh", "-c", "head -c 40000 /dev/zero | tr '\\0' x; echo")
    wait_exit(tmp_path)
    raw = (tmp_path / "log").read_bytes().splitlines()
    assert any(b" stdout P " in line for line in raw)  # written as partial records
    lines = read_lines(tmp_path / "log")
    assert [line.data for line in lines] == [b"x" * 40000 + b"\n"]


def test_log_rotates_once_at_the_size_limit(shim: list[str], tmp_path: Path) -> None:
    run(shim, tmp_path, "sh", "-c", "for i in $(seq 1 200); do echo line-$i; done", options=("-m", "2000"))
    wait_exit(tmp_path)
    assert (tmp_path / "log.1").exists()
    assert (tmp_path / "log").stat().st_size <= 2000 + 100
    kept = [line.data for line in read_lines(tmp_path / "log")]
    assert kept[-1] == b"line-200\n"
    assert kept == [f"line-{i}\n".encode() for i in range(201 - len(kept), 201)]  # a contiguous tail


def test_supervisor_is_detached_and_records_the_workload(shim: list[str], tmp_path: Path) -> None:
    run(shim, tmp_path, "sleep", "30")
    task = TaskDir(tmp_path)
    supervisor, process = task.supervisor(), task.process()
    assert supervisor is not None and process is not None
    assert is_same_process(process.pid, process.start_time)
    assert os.getsid(supervisor.pid) != os.getsid(0)  # a session of its own, not ours
    with open(f"/proc/{supervisor.pid}/stat") as f:
        parent = int(f.read().rsplit(")", 1)[1].split()[1])
    assert parent != os.getpid()
    os.kill(process.pid, signal.SIGKILL)
    assert wait_exit(tmp_path) == 137


def test_a_failing_network_hook_fails_the_start_with_its_output(shim: list[str], tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("namespaces need root")
    answer = run(shim, tmp_path, "true", options=("-n", "-k", "echo no bridge here >&2; exit 1"))
    assert answer == "error network setup failed: no bridge here"
    assert wait_exit(tmp_path) != 0
