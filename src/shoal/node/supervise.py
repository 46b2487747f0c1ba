"""Running a manager's long-lived loops: each restarted with backoff if it fails, and the leader-only
ones started when this manager becomes leader and cancelled when it stops leading."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from shoal.base.clock import Clock

log = logging.getLogger(__name__)
RESTART_BACKOFF_MIN = 0.5
RESTART_BACKOFF_MAX = 30.0
LoopFactory = Callable[[], Coroutine[Any, Any, None]]
Loops = list[tuple[str, LoopFactory]]


async def supervised(name: str, factory: LoopFactory, clock: Clock) -> None:
    """Run a loop until cancelled, restarting it (with backoff) if it fails or returns: a bug in one
    component must not leave the node looking healthy while that component is dead."""
    backoff = RESTART_BACKOFF_MIN
    while True:
        started = clock.monotonic()
        try:
            await factory()
            log.error("%s returned; restarting it", name)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed; restarting it in %.1f s", name, backoff)
        if clock.monotonic() - started > RESTART_BACKOFF_MAX:
            backoff = RESTART_BACKOFF_MIN
        await clock.sleep(backoff)
        backoff = min(backoff * 2, RESTART_BACKOFF_MAX)


async def run_while_leading(leadership: AsyncIterator[bool], loops: Callable[[], Loops], clock: Clock) -> None:
    """Follow ``leadership`` (True on becoming leader, False on losing it): while leading, run the loops
    ``loops()`` names, each supervised, all in one task group; cancel them all as leadership goes. Each
    term gets fresh loops (``loops()`` is called again), so a new leader starts with no memory of an
    old term and rebuilds its state from the store."""
    running: asyncio.Task[None] | None = None

    async def lead() -> None:
        async with asyncio.TaskGroup() as group:
            for name, factory in loops():
                group.create_task(supervised(name, factory, clock), name=name)

    try:
        async for is_leader in leadership:
            if is_leader and running is None:
                log.info("leading: starting the leader's loops")
                running = asyncio.create_task(lead(), name="leader-loops")
            elif not is_leader and running is not None:
                log.info("no longer leading: stopping the leader's loops")
                await _cancel(running)
                running = None
    finally:
        if running is not None:
            await _cancel(running)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
