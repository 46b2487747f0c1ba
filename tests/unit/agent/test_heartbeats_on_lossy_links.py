"""An agent's heartbeats on a lossy link: one held up (TCP backs off to seconds after a segment is lost
twice) must not hold back the next, or a live node goes Down for its link's bad luck (the cluster soak
with 10 % loss on every link saw it). A refusal still ends the session at once, and silence ends it
after the grace, as before."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from shoal.agent.agent import Agent
from shoal.api import errors
from shoal.api.dispatch import Assignments, Session, StatusUpdate
from shoal.api.objects import Obj
from shoal.testing.clock import FakeClock
from shoal.testing.fake_executor import FakeExecutor

PERIOD = 1.0


class StallingDispatcher:
    """The first heartbeat never gets an answer; later ones answer, or fail as ``later`` says."""

    def __init__(self, later: Callable[[], float] | None = None) -> None:
        self.calls = 0
        self._later = later or (lambda: PERIOD)
        self._stalled: asyncio.Future[float] | None = None

    async def register(self, node_id: str, description: Obj, addr: str) -> Session:
        return Session("s", PERIOD)

    async def heartbeat(self, node_id: str, session_id: str) -> float:
        self.calls += 1
        if self.calls == 1:
            self._stalled = asyncio.get_running_loop().create_future()
            return await self._stalled
        return self._later()

    async def assignments(self, node_id: str, session_id: str) -> AsyncIterator[Assignments]:
        if False:
            yield Assignments({})

    async def update_status(self, node_id: str, session_id: str, updates: list[StatusUpdate]) -> None:
        return None


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while not condition():
            await asyncio.sleep(0)


def agent_with(dispatcher: StallingDispatcher, clock: FakeClock) -> Agent:
    agent = Agent("node1", "127.0.0.1", FakeExecutor(), dispatcher, clock)
    agent._session = Session("s", PERIOD)
    return agent


async def tick(clock: FakeClock, beats: asyncio.Task[None]) -> None:
    """Half a period on: the loop wakes (and sends its next heartbeat), then sleeps again."""
    await until(lambda: clock.sleepers > 0 or beats.done())
    clock.advance(PERIOD / 2)


async def test_a_stalled_heartbeat_does_not_hold_back_the_next() -> None:
    clock = FakeClock()
    dispatcher = StallingDispatcher()
    beats = asyncio.create_task(agent_with(dispatcher, clock)._heartbeats())
    try:
        for _ in range(8):  # 4 s: longer than the 3 s grace, the first heartbeat still unanswered
            await tick(clock, beats)
        await until(lambda: dispatcher.calls >= 8 or beats.done())
        assert not beats.done()
        assert dispatcher.calls >= 8
    finally:
        beats.cancel()


async def test_a_refused_heartbeat_ends_the_session() -> None:
    clock = FakeClock()

    def refuse() -> float:
        raise errors.NotFound("node not registered", grpc=True)

    dispatcher = StallingDispatcher(later=refuse)
    beats = asyncio.create_task(agent_with(dispatcher, clock)._heartbeats())
    for _ in range(4):
        if beats.done():
            break
        await tick(clock, beats)
    await until(beats.done)
    with pytest.raises(errors.NotFound):
        beats.result()


async def test_no_answer_for_a_whole_grace_ends_the_session() -> None:
    clock = FakeClock()

    def unreachable() -> float:
        raise errors.Unavailable("cannot reach 10.0.0.1:2377: timed out")

    dispatcher = StallingDispatcher(later=unreachable)
    beats = asyncio.create_task(agent_with(dispatcher, clock)._heartbeats())
    for _ in range(10):
        if beats.done():
            break
        await tick(clock, beats)
    await until(beats.done)
    with pytest.raises(errors.Unavailable):
        beats.result()
