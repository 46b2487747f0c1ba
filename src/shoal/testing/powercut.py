"""Power loss for one member's disk: a FileOps wrapper over a MemoryFS that can lose power now, or
at a chosen upcoming call (in the middle of a Ready's write, between the write and its fsync, ...).

When the power goes, the MemoryFS keeps only what was fsynced (``crash("power")``; or a torn part of
the rest too, ``crash("torn")``) and this wrapper
is dead for good: every later call fails with EIO, so a worker thread still busy with the old
process's I/O cannot touch the disk the restarted member uses. A restart wraps the same MemoryFS
in a new ``PowerCutFS``. A lock makes each call and the cut atomic with respect to each other.
"""

from __future__ import annotations

import errno
import random
import threading
from collections.abc import Callable
from typing import TypeVar

from shoal.testing.fileops_proxy import FileOpsProxy
from shoal.testing.memfs import CrashKind, MemoryFS

T = TypeVar("T")


class PowerLost(OSError):
    def __init__(self) -> None:
        super().__init__(errno.EIO, "power lost")


class PowerCutFS(FileOpsProxy):
    def __init__(self, disk: MemoryFS, *, kind: CrashKind = "power", rng: random.Random | None = None) -> None:
        """``kind``: "power" keeps exactly what was fsynced; "torn" also keeps a random part of
        what was written after (a prefix, or sectors with others zeroed), as write-back can."""
        super().__init__(disk)
        self.disk = disk
        self._kind: CrashKind = kind
        self._rng = rng
        self._lock = threading.Lock()
        self._dead = False
        self._cut_before: int | None = None  # mutating calls still allowed before the cut

    @property
    def dead(self) -> bool:
        with self._lock:
            return self._dead

    def cut_now(self) -> None:
        """Lose power: what was not fsynced is gone."""
        with self._lock:
            self._cut()

    def cut_after(self, calls: int) -> None:
        """Lose power just before the mutating call after the next ``calls`` ones."""
        with self._lock:
            self._cut_before = calls

    def _cut(self) -> None:
        if not self._dead:
            self._dead = True
            self.disk.crash(self._kind, self._rng)

    def _call(self, name: str, mutating: bool, fn: Callable[[], T]) -> T:
        with self._lock:
            if not self._dead and mutating and self._cut_before is not None:
                if self._cut_before == 0:
                    self._cut()
                else:
                    self._cut_before -= 1
            if self._dead:
                raise PowerLost()
            return fn()
