"""Real shoald processes for end-to-end tests: start one on a private socket and data root, talk to it
with the real docker CLI or docker-py, kill -9 it and start it again.

The docker CLI is resolved here, once, for every test: SHOAL_DOCKER_CLI if set, else
/usr/local/bin/docker (28.x on this project's machines), else the docker on PATH (Debian's docker.io
gives /usr/bin/docker, 20.10). Tests that need a newer CLI than the one found skip through
`cli_requirement`; without any CLI the CLI tests skip."""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PREFERRED_DOCKER_CLI = "/usr/local/bin/docker"
DOCKER_CLI_OVERRIDE = "SHOAL_DOCKER_CLI"
NO_DOCKER_CLI = (f"no docker CLI found (not at {PREFERRED_DOCKER_CLI}, none on PATH): install docker.io "
                 f"or set {DOCKER_CLI_OVERRIDE}")


def find_docker_cli(environ: Mapping[str, str], preferred: str = PREFERRED_DOCKER_CLI) -> str | None:
    """The docker CLI the tests run, or None when there is none."""
    override = environ.get(DOCKER_CLI_OVERRIDE)
    if override:
        # An explicit choice that does not work is a setup mistake: say so instead of skipping quietly.
        if not os.access(override, os.X_OK) or os.path.isdir(override):
            raise ValueError(f"{DOCKER_CLI_OVERRIDE}={override} is not an executable file")
        return override
    if os.access(preferred, os.X_OK):
        return preferred
    return shutil.which("docker", path=environ.get("PATH", os.defpath))


def parse_cli_version(output: str) -> tuple[int, int]:
    """(major, minor) from `docker --version`, e.g. "Docker version 20.10.24+dfsg1, build 297e128"."""
    found = re.search(r"version (\d+)\.(\d+)", output)
    if found is None:
        raise ValueError(f"cannot read a version from docker --version: {output.strip()!r}")
    return int(found.group(1)), int(found.group(2))


@functools.cache
def docker_cli_version(cli: str) -> tuple[int, int]:
    result = subprocess.run([cli, "--version"], capture_output=True, text=True, timeout=30, check=True)
    return parse_cli_version(result.stdout)


def cli_requirement(minimum: tuple[int, int] | None = None, needs: str = "",
                    cli: str | None = None) -> dict[str, Any]:
    """Keyword arguments for pytest.mark.skipif: skip when there is no CLI or it is older than `minimum`
    (what it `needs` goes into the reason). This module stays free of pytest, hence the dict."""
    cli = DOCKER_CLI if cli is None else cli
    if not cli:
        return {"condition": True, "reason": NO_DOCKER_CLI}
    if minimum is not None:
        found = docker_cli_version(cli)
        if found < minimum:
            return {"condition": True, "reason": f"{needs} needs docker CLI {minimum[0]}.{minimum[1]} or newer; "
                                                 f"{cli} is {found[0]}.{found[1]}"}
    return {"condition": False, "reason": ""}


def cli_has(minimum: tuple[int, int], check: str) -> bool:
    """Whether the CLI in use is `minimum` or newer, for a check on output that older CLIs print
    differently. When it is older the check is recorded in SKIPPED_CHECKS with the reason, and the
    caller skips only that check (the rest of the test still runs)."""
    if DOCKER_CLI is not None and docker_cli_version(DOCKER_CLI) >= minimum:
        return True
    found = "none" if DOCKER_CLI is None else "{}.{}".format(*docker_cli_version(DOCKER_CLI))
    SKIPPED_CHECKS.append(f"{check}: needs docker CLI {minimum[0]}.{minimum[1]}+, found {found}")
    return False


# CLI versions whose output some checks rely on (found by running the e2e tests with Debian's 20.10).
CLI_DAEMON_ERRORS_VERBATIM = (23, 0)  # before: a 404 prints "Error: No such <object>: <id>"
CLI_CONVERGED_NAMES_SERVICE = (26, 0)  # before: "verify: Service converged", without the id or name

DOCKER_CLI: str | None = find_docker_cli(os.environ)
SKIPPED_CHECKS: list[str] = []


@dataclass
class ShoalDaemon:
    """One shoald. `workdir` holds its socket, data root and log."""

    workdir: Path
    executor: str = "process"
    extra_args: list[str] = field(default_factory=list)
    launcher: list[str] = field(default_factory=list)  # e.g. ["ip", "netns", "exec", NAME]: where it runs
    process: subprocess.Popen[bytes] | None = None

    @property
    def socket_path(self) -> Path:
        return self.workdir / "shoal.sock"

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def data_root(self) -> Path:
        return self.workdir / "data"

    @property
    def log_path(self) -> Path:
        return self.workdir / "shoald.log"

    def start(self, timeout: float = 20.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child process
        # Daemons of several tests share this machine: each serves its cluster port on a free loopback
        # port unless the test names one (cluster tests run each daemon on a host of its own).
        listen = [] if "--listen-addr" in self.extra_args else ["--listen-addr", "127.0.0.1:0"]
        argv = [*self.launcher, sys.executable, "-m", "shoal.node.daemon", "-H", self.docker_host, "--data-root",
                str(self.data_root), "--executor", self.executor, "--log-level", "debug", *listen, *self.extra_args]
        self.process = subprocess.Popen(argv, stdout=log, stderr=log, start_new_session=True)
        log.close()
        wait_until(self._answers, timeout, f"shoald did not answer on {self.socket_path}; see {self.log_path}")

    def _answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"shoald exited with {self.process.returncode}; see {self.log_path}:\n"
                               + self.log_path.read_text()[-3000:])
        return self.request("GET", "/_ping", timeout=5.0) == 200

    def kill9(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
            self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None

    def docker(self, *args: str, timeout: float = 120.0, check: bool = True,
               input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run the real docker CLI against this daemon."""
        if DOCKER_CLI is None:
            raise RuntimeError(NO_DOCKER_CLI)
        env = {**os.environ, "DOCKER_HOST": self.docker_host}
        env.pop("DOCKER_API_VERSION", None)
        result = subprocess.run([DOCKER_CLI, *args], env=env, capture_output=True, text=True, timeout=timeout,
                                input=input)
        if check and result.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} exited {result.returncode}:\n"
                                 f"stdout: {result.stdout}\nstderr: {result.stderr}")
        return result

    def docker_json(self, *args: str) -> Any:
        return json.loads(self.docker(*args).stdout)

    def leave_and_stop(self) -> None:
        """Leave the swarm (so task processes go) and stop the daemon. Through the API, not the CLI, so
        tests that never needed a CLI clean up without one."""
        if self.process is not None and self.process.poll() is None:
            self.request("POST", "/swarm/leave?force=1", timeout=60)
        self.stop()

    def request(self, method: str, path: str, timeout: float = 30.0) -> int:
        """One bodiless Engine API call on the socket; returns the HTTP status (0 if it did not answer)."""
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(timeout)
        try:
            probe.connect(str(self.socket_path))
            probe.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                          "Connection: close\r\n\r\n".encode())
            status_line = probe.recv(64).split(b"\r\n", 1)[0].split()
            return int(status_line[1]) if len(status_line) > 1 else 0
        except OSError:
            return 0
        finally:
            probe.close()


def wait_until(condition: Callable[[], bool], timeout: float, message: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(message)
