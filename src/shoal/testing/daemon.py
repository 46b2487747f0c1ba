"""Real shoald processes for end-to-end tests: start one on a private socket and data root, talk to it
with the real docker CLI or docker-py, kill -9 it and start it again."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DOCKER_CLI = "/usr/local/bin/docker"


@dataclass
class ShoalDaemon:
    """One shoald. `workdir` holds its socket, data root and log."""

    workdir: Path
    executor: str = "process"
    extra_args: list[str] = field(default_factory=list)
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
        argv = [sys.executable, "-m", "shoal.node.daemon", "-H", self.docker_host, "--data-root",
                str(self.data_root), "--executor", self.executor, "--log-level", "debug", *self.extra_args]
        self.process = subprocess.Popen(argv, stdout=log, stderr=log, start_new_session=True)
        log.close()
        wait_until(self._answers, timeout, f"shoald did not answer on {self.socket_path}; see {self.log_path}")

    def _answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"shoald exited with {self.process.returncode}; see {self.log_path}:\n"
                               + self.log_path.read_text()[-3000:])
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(self.socket_path))
            probe.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return probe.recv(64).startswith(b"HTTP/1.1 200")
        except OSError:
            return False
        finally:
            probe.close()

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
        """Leave the swarm (so task processes go) and stop the daemon."""
        if self.process is not None and self.process.poll() is None:
            self.docker("swarm", "leave", "--force", check=False, timeout=60)
        self.stop()


def wait_until(condition: Callable[[], bool], timeout: float, message: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(message)
