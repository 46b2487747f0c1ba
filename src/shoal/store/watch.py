"""The store's watch queue: typed events for every applied change, and a commit marker after each
transaction so a reader knows when it has seen a consistent batch."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from shoal.api.objects import Obj


@dataclass(frozen=True, slots=True)
class Event:
    action: str  # "create" | "update" | "delete"
    table: str
    obj: Obj
    old: Obj | None


@dataclass(frozen=True, slots=True)
class Commit:
    """Marks the end of one applied transaction; `index` is its Version.Index."""

    index: int


@dataclass(frozen=True, slots=True)
class Restored(Commit):
    """Ends the batch of a snapshot install (a follower catching up, a restarted member): the state
    jumped to `index` at once. The events before it are the difference between the old and the new
    state, so a reader that only follows events stays right; a reader that keeps its own memory can
    take this as the cue to rebuild it from a fresh view. Every subscriber gets it, whatever its
    predicate."""


WatchItem = Event | Commit
Predicate = Callable[[Event], bool]


class Subscription:
    """One reader's queue. Unbounded: the readers are our own loops, which drain it promptly; a slow
    reader costs memory, never a lost event."""

    def __init__(self, predicate: Predicate | None, on_close: Callable[[Subscription], None]) -> None:
        self._queue: asyncio.Queue[WatchItem] = asyncio.Queue()
        self._predicate = predicate
        self._on_close = on_close
        self._pending_commit = False

    def offer(self, item: WatchItem) -> None:
        if isinstance(item, Restored):
            self._queue.put_nowait(item)
            self._pending_commit = False
            return
        if isinstance(item, Commit):
            if self._pending_commit:
                self._queue.put_nowait(item)
                self._pending_commit = False
            return
        if self._predicate is None or self._predicate(item):
            self._queue.put_nowait(item)
            self._pending_commit = True

    async def get(self) -> WatchItem:
        return await self._queue.get()

    def get_nowait(self) -> WatchItem | None:
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None

    def close(self) -> None:
        self._on_close(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class WatchQueue:
    def __init__(self) -> None:
        self._subscribers: list[Subscription] = []

    def subscribe(self, predicate: Predicate | None = None) -> Subscription:
        sub = Subscription(predicate, self._unsubscribe)
        self._subscribers.append(sub)
        return sub

    def __len__(self) -> int:
        """How many subscriptions are open (tests wait for a reader to subscribe; leaks show)."""
        return len(self._subscribers)

    def _unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subscribers:
            self._subscribers.remove(sub)

    def publish(self, items: list[WatchItem]) -> None:
        for sub in list(self._subscribers):
            for item in items:
                sub.offer(item)
