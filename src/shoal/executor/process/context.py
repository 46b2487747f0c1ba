"""What every process controller of one executor shares: where state lives, whether tasks get
namespaces, the cgroup and network set-up, and the shim binary (built once, on first use)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path

from shoal.base.clock import Clock
from shoal.executor.process.cgroups import Cgroups
from shoal.executor.process.shimbuild import ensure_shim
from shoal.executor.process.taskdir import TaskDir
from shoal.network.tasknet import AddressBook, TaskNetConfig, ensure_bridge

log = logging.getLogger(__name__)


@dataclass
class ProcessContext:
    state_dir: Path
    isolate: bool
    network: TaskNetConfig | None
    cgroups: Cgroups
    clock: Clock
    daemon_path: str | None
    shim_cache: Path
    dns_servers: tuple[str, ...] = ()  # for tasks' resolv.conf; empty: the host's
    _shim: list[str] | None = None
    _network_ready: bool = False
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _task_locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    @property
    def tasks_dir(self) -> Path:
        return self.state_dir / "tasks"

    def task_lock(self, task_id: str) -> asyncio.Lock:
        """Serializes prepare/start/remove of one task (a retried call must not launch it twice)."""
        return self._task_locks.setdefault(task_id, asyncio.Lock())

    def forget_task(self, task_id: str) -> None:
        lock = self._task_locks.get(task_id)
        if lock is not None and not lock.locked():
            del self._task_locks[task_id]

    def task_dir(self, task_id: str) -> TaskDir:
        return TaskDir(self.tasks_dir / task_id)

    def task_dirs(self) -> list[TaskDir]:
        if not self.tasks_dir.is_dir():
            return []
        return [TaskDir(p) for p in sorted(self.tasks_dir.iterdir()) if (p / "spec.json").exists()]

    @property
    def addresses(self) -> AddressBook | None:
        return AddressBook(self.network) if self.network is not None else None

    async def shim(self) -> list[str]:
        async with self._lock:
            if self._shim is None:
                self._shim = await ensure_shim(self.shim_cache)
            return self._shim

    def forget_network(self) -> None:
        self._network_ready = False

    async def ensure_network(self) -> None:
        if self.network is None:
            return
        async with self._lock:
            # checked each time: someone may have deleted the bridge under a running daemon
            if not (self._network_ready and self.network.bridge_exists()):
                await ensure_bridge(self.network)
                self._network_ready = True
