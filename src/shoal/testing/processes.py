"""A group of member processes on loopback for tests and benchmarks: start, kill -9, restart, stop.
Subclasses say how to run one member (`command`)."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path


class ProcessGroup:
    log_prefix = "node"
    stop_timeout = 5.0

    def __init__(self, root: Path, ids: list[int]) -> None:
        self.root = root
        self.ids = ids
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    def command(self, node_id: int) -> list[str]:
        raise NotImplementedError

    def start(self, node_id: int) -> None:
        log_file = open(self.root / f"{self.log_prefix}{node_id}.log", "ab")  # noqa: SIM115 - owned by the child
        self.procs[node_id] = subprocess.Popen(
            self.command(node_id), stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        log_file.close()

    def start_all(self) -> None:
        for node_id in self.ids:
            self.start(node_id)

    def kill(self, node_id: int) -> None:
        """kill -9: nothing of the process survives except what it fsynced."""
        proc = self.procs.pop(node_id, None)
        if proc is not None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()

    def running(self) -> list[int]:
        return [i for i, p in self.procs.items() if p.poll() is None]

    def stop_all(self) -> None:
        for proc in self.procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()
