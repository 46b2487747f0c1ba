"""shoald's startup errors: one line on stderr (`shoald: failed to start daemon: …`, as dockerd's
`failed to start daemon: …`) and exit status 1; the Python traceback only at --log-level debug."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import docker
import pytest

from shoal.manager.wal.framing import HEADER_SIZE
from shoal.testing.daemon import ShoalDaemon


def run_shoald(tmp_path: Path, data_root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """shoald in the foreground; every case here ends on its own, before it would serve anything."""
    socket = tmp_path / "shoal.sock"
    return subprocess.run(
        [sys.executable, "-m", "shoal.node.daemon", "-H", f"unix://{socket}", "--data-root", str(data_root), *args],
        capture_output=True, text=True, timeout=60)


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("shoald:")]


def legacy_data_root(tmp_path: Path) -> Path:
    """A data root from a shoal before the Raft store: node.start() refuses it."""
    data_root = tmp_path / "data"
    (data_root / "swarm").mkdir(parents=True)
    state = {"node_id": "n", "cluster_id": "c", "role": "manager", "advertise_addr": "127.0.0.1",
             "listen_addr": "0.0.0.0:2377"}
    (data_root / "swarm" / "state.json").write_text(json.dumps(state))
    return data_root


def test_a_failing_node_start_is_one_line_and_exit_1(tmp_path: Path) -> None:
    result = run_shoald(tmp_path, legacy_data_root(tmp_path))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert error_lines(result) == [
        f"shoald: failed to start daemon: {tmp_path / 'data' / 'swarm'} holds a swarm from a shoal without Raft "
        "(before 0.1's Raft store); it cannot be brought back: remove that directory (its tasks keep running "
        "until then) and `swarm init` again"]
    assert result.stderr.rstrip().endswith(error_lines(result)[0])  # the last word is the reason
    assert not (tmp_path / "shoal.sock").exists()


def test_the_traceback_is_shown_at_debug_level(tmp_path: Path) -> None:
    result = run_shoald(tmp_path, legacy_data_root(tmp_path), "--log-level", "debug")
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "RuntimeError" in result.stderr
    assert len(error_lines(result)) == 1


def test_a_data_root_that_is_a_file(tmp_path: Path) -> None:
    data_root = tmp_path / "data"
    data_root.write_text("not a directory")
    result = run_shoald(tmp_path, data_root)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert error_lines(result) == [f"shoald: failed to start daemon: [Errno 17] File exists: '{data_root}'"]


def test_a_damaged_raft_log_is_refused_with_the_way_out(tmp_path: Path) -> None:
    shoald = ShoalDaemon(tmp_path / "d")
    shoald.start()
    try:
        client = docker.DockerClient(base_url=shoald.docker_host, version="auto", timeout=30)
        client.swarm.init(advertise_addr="127.0.0.1")
        client.close()
    finally:
        shoald.stop()
    segments = sorted((shoald.data_root / "swarm").rglob("*.wal"))
    assert segments, "no WAL segment after swarm init"
    data = bytearray(segments[0].read_bytes())
    data[HEADER_SIZE + 1] ^= 0x01  # one bit inside the first record's payload: its checksum no longer holds
    segments[0].write_bytes(bytes(data))

    result = run_shoald(tmp_path, shoald.data_root)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    [line] = error_lines(result)
    assert line.startswith("shoald: failed to start daemon: ")
    assert str(segments[0]) in line and "offset 0" in line  # where the damage is
    assert "--repair-raft-log" in line  # and the way out


@pytest.mark.parametrize("argv", [["--tls=maybe"], ["-H", "fd://"]])
def test_bad_flags_are_usage_errors_before_anything_starts(tmp_path: Path, argv: list[str]) -> None:
    result = subprocess.run([sys.executable, "-m", "shoal.node.daemon", "--data-root", str(tmp_path / "data"), *argv],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith("usage: shoald")
    assert not (tmp_path / "data").exists()
