"""What the agent unit tests share: a dispatcher that takes a session and sends nothing, and a bounded
wait on a condition while the agent's tasks run."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from shoal.api.dispatch import Assignments, Session, StatusUpdate
from shoal.api.objects import Obj


class IdleDispatcher:
    """Takes every session, answers heartbeats, never assigns anything and drops status reports."""

    async def register(self, node_id: str, description: Obj, addr: str) -> Session:
        return Session("s", 5.0)

    async def heartbeat(self, node_id: str, session_id: str) -> float:
        return 5.0

    async def assignments(self, node_id: str, session_id: str) -> AsyncIterator[Assignments]:
        if False:
            yield Assignments({})

    async def update_status(self, node_id: str, session_id: str, updates: list[StatusUpdate]) -> None:
        return None


async def until(condition: Callable[[], bool]) -> None:
    """Let the agent's tasks run until condition holds (within a deadline)."""
    async with asyncio.timeout(5):
        while not condition():
            await asyncio.sleep(0)
