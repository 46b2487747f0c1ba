"""One job per key at a time: a caller asking for a key already in progress waits for that job
instead of starting its own (one download per blob, one unpack per layer, across concurrent pulls)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Once(Generic[T]):
    def __init__(self) -> None:
        self._running: dict[str, asyncio.Future[T]] = {}
        self._waiting: dict[str, int] = {}

    def running(self, key: str) -> bool:
        return key in self._running

    def waiters(self, key: str) -> int:
        """Callers waiting on the key's job (pulls sharing a download)."""
        return self._waiting.get(key, 0)

    async def run(self, key: str, job: Callable[[], Awaitable[T]]) -> T:
        while (existing := self._running.get(key)) is not None:
            self._waiting[key] = self._waiting.get(key, 0) + 1
            try:
                return await asyncio.shield(existing)
            except asyncio.CancelledError:
                if not existing.cancelled():
                    raise  # this caller was cancelled
                # The caller that ran the job was cancelled, not this one: run it again.
            finally:
                self._waiting[key] -= 1
                if not self._waiting[key]:
                    del self._waiting[key]
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._running[key] = future
        try:
            result = await job()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # marked retrieved: waiters re-raise it, nobody else must log it
            raise
        finally:
            del self._running[key]
        future.set_result(result)
        return result
