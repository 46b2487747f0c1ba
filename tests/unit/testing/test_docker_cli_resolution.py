"""Which docker CLI the tests run (shoal.testing.daemon): the override, /usr/local/bin/docker, else the one
on PATH (Debian 12's docker.io: /usr/bin/docker, 20.10), and how checks that need a newer one skip."""

from __future__ import annotations

import socket
import stat
import subprocess
import threading
from pathlib import Path

import pytest

from shoal.testing import daemon
from shoal.testing.daemon import (
    DOCKER_CLI_OVERRIDE,
    ShoalDaemon,
    cli_has,
    cli_requirement,
    find_docker_cli,
    parse_cli_version,
)

DEBIAN_12 = "Docker version 20.10.24+dfsg1, build 297e128"
UPSTREAM_28 = "Docker version 28.2.2, build e6534b4"


def fake_cli(directory: Path, prints: str) -> Path:
    """An executable named docker whose --version prints `prints`."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "docker"
    path.write_text(f"#!/bin/sh\necho '{prints}'\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_prefers_the_preferred_path_over_path(tmp_path: Path) -> None:
    preferred = fake_cli(tmp_path / "local", UPSTREAM_28)
    on_path = fake_cli(tmp_path / "bin", DEBIAN_12)
    assert find_docker_cli({"PATH": str(on_path.parent)}, preferred=str(preferred)) == str(preferred)


def test_falls_back_to_the_docker_on_path(tmp_path: Path) -> None:
    on_path = fake_cli(tmp_path / "bin", DEBIAN_12)
    missing = tmp_path / "nowhere" / "docker"
    assert find_docker_cli({"PATH": f"{tmp_path / 'empty'}:{on_path.parent}"}, preferred=str(missing)) == str(on_path)


def test_none_when_there_is_no_cli(tmp_path: Path) -> None:
    assert find_docker_cli({"PATH": str(tmp_path)}, preferred=str(tmp_path / "docker")) is None


def test_the_override_wins(tmp_path: Path) -> None:
    preferred = fake_cli(tmp_path / "local", UPSTREAM_28)
    chosen = fake_cli(tmp_path / "old", DEBIAN_12)
    environ = {"PATH": "", DOCKER_CLI_OVERRIDE: str(chosen)}
    assert find_docker_cli(environ, preferred=str(preferred)) == str(chosen)


def test_an_override_that_is_not_executable_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=f"{DOCKER_CLI_OVERRIDE}=.*not an executable file"):
        find_docker_cli({DOCKER_CLI_OVERRIDE: str(tmp_path / "nope")})
    with pytest.raises(ValueError, match="not an executable file"):
        find_docker_cli({DOCKER_CLI_OVERRIDE: str(tmp_path)})


def test_parses_debian_and_upstream_versions() -> None:
    assert parse_cli_version(DEBIAN_12) == (20, 10)
    assert parse_cli_version(UPSTREAM_28) == (28, 2)
    with pytest.raises(ValueError, match="cannot read a version"):
        parse_cli_version("podman 4.3.1")


def test_requirement_skips_only_when_the_cli_is_older(tmp_path: Path) -> None:
    old = str(fake_cli(tmp_path, DEBIAN_12))
    assert cli_requirement(cli=old) == {"condition": False, "reason": ""}
    assert cli_requirement((20, 10), "x", cli=old)["condition"] is False
    too_old = cli_requirement((23, 0), "the daemon's error text", cli=old)
    assert too_old["condition"] is True
    assert too_old["reason"] == f"the daemon's error text needs docker CLI 23.0 or newer; {old} is 20.10"


def test_no_cli_skips_every_cli_test(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(daemon, "DOCKER_CLI", None)
    requirement = cli_requirement()
    assert requirement["condition"] is True and "no docker CLI found" in requirement["reason"]
    with pytest.raises(RuntimeError, match="no docker CLI found"):
        ShoalDaemon(Path("/nonexistent")).docker("info")


def test_cli_has_records_the_checks_it_skips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(daemon, "DOCKER_CLI", str(fake_cli(tmp_path, DEBIAN_12)))
    monkeypatch.setattr(daemon, "SKIPPED_CHECKS", [])
    assert cli_has((20, 10), "old enough") is True
    assert cli_has((26, 0), "verify line names the service") is False
    assert daemon.SKIPPED_CHECKS == ["verify line names the service: needs docker CLI 26.0+, found 20.10"]


def test_leave_and_stop_needs_no_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests that drive shoald with docker-py clean up through the API, so they run without a CLI."""
    monkeypatch.setattr(daemon, "DOCKER_CLI", None)
    shoald = ShoalDaemon(tmp_path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(shoald.socket_path))
    listener.listen(1)
    seen: list[bytes] = []

    def answer_once() -> None:
        connection, _ = listener.accept()
        with connection:
            seen.append(connection.recv(4096))
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

    server = threading.Thread(target=answer_once)
    server.start()
    # A live stand-in for the shoald process, so leave_and_stop believes there is a daemon to ask.
    shoald.process = subprocess.Popen(["sleep", "60"])
    try:
        shoald.leave_and_stop()
    finally:
        server.join(10)
        listener.close()
    assert seen and seen[0].startswith(b"POST /swarm/leave?force=1 HTTP/1.1\r\n")
    assert shoald.process is None
