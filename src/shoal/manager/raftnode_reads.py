"""Linearizable reads (read-index) waiting in a RaftNode: each request is first confirmed by a leader
(a ReadState with its context comes back in a Ready), then released once the local applied index
reaches the confirmed index."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Iterable

from shoal.raft.types import ReadState


class ReadIndexTracker:
    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._prefix = os.urandom(8)  # contexts stay unique across restarts of this member
        self._pending: dict[bytes, asyncio.Future[int]] = {}
        self._confirmed: list[tuple[int, asyncio.Future[int]]] = []

    def register(self) -> tuple[bytes, asyncio.Future[int]]:
        """A fresh request context and the future that resolves to the read's index."""
        ctx = self._prefix + next(self._ids).to_bytes(8, "big")
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pending[ctx] = future
        return ctx, future

    def forget(self, ctx: bytes) -> None:
        self._pending.pop(ctx, None)

    def confirm(self, read_states: Iterable[ReadState], applied: int) -> None:
        """A leader confirmed these reads at their indexes."""
        for state in read_states:
            future = self._pending.pop(state.request_ctx, None)
            if future is not None and not future.done():
                self._confirmed.append((state.index, future))
        self.release(applied)

    def release(self, applied: int) -> None:
        """Answer every confirmed read whose index is applied."""
        if not self._confirmed:
            return
        waiting = []
        for index, future in self._confirmed:
            if future.done():
                continue
            if index <= applied:
                future.set_result(index)
            else:
                waiting.append((index, future))
        self._confirmed = waiting

    def fail(self, error: BaseException, *, confirmed_too: bool = True) -> None:
        """Fail the reads not yet confirmed (a new leader will never answer them), and the
        confirmed ones too unless ``confirmed_too`` is false (they stay valid)."""
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)
        self._pending.clear()
        if not confirmed_too:
            return
        for _, future in self._confirmed:
            if not future.done():
                future.set_exception(error)
        self._confirmed = []
