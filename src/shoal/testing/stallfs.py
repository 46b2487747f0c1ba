"""A file system whose fsyncs hang until the test releases them: a hung disk, as a FileOps wrapper.

While stalled, every ``fsync``/``fsync_dir`` blocks its (worker) thread; writes still go through,
as they do into a page cache. ``blocked`` counts the calls waiting right now, so a test can wait
until the disk is really stuck before it moves the clock.
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Callable
from typing import TypeVar

from shoal.manager.wal.fileops import FileOps
from shoal.testing.fileops_proxy import FileOpsProxy

T = TypeVar("T")


class StallingFS(FileOpsProxy):
    def __init__(self, inner: FileOps, *, give_up_after: float = 30.0) -> None:
        super().__init__(inner)
        self._released = threading.Event()
        self._released.set()
        self._lock = threading.Lock()
        self._blocked = 0
        self.stalled_calls = 0
        # A test that forgets to release must fail, not hang the run for ever.
        self._give_up_after = give_up_after

    @property
    def blocked(self) -> int:
        with self._lock:
            return self._blocked

    def stall(self) -> None:
        """From now on, fsyncs hang until ``release``."""
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    def _call(self, name: str, mutating: bool, fn: Callable[[], T]) -> T:
        if name in ("fsync", "fsync_dir") and not self._released.is_set():
            with self._lock:
                self._blocked += 1
                self.stalled_calls += 1
            try:
                if not self._released.wait(self._give_up_after):
                    raise OSError(errno.EIO, "stalled fsync was never released by the test")
            finally:
                with self._lock:
                    self._blocked -= 1
        return fn()
