"""An agent whose session the managers refuse because its node was removed (`node rm` while it was away)
says so through ``Agent.removed`` (node/roles.py then stops a manager half); any other refusal does not
set it, and the agent keeps retrying either way."""

from __future__ import annotations

import asyncio

from agent_stubs import IdleDispatcher, until

from shoal.agent.agent import Agent
from shoal.api import errors
from shoal.api.dispatch import Session
from shoal.api.objects import Obj
from shoal.testing.clock import FakeClock
from shoal.testing.fake_executor import FakeExecutor


class RefusingDispatcher(IdleDispatcher):
    def __init__(self, message: str) -> None:
        self.message = message
        self.registrations = 0

    async def register(self, node_id: str, description: Obj, addr: str) -> Session:
        self.registrations += 1
        raise errors.Forbidden(self.message)


async def refused_twice(message: str) -> Agent:
    clock = FakeClock()
    dispatcher = RefusingDispatcher(message)
    agent = Agent("node1", "127.0.0.1", FakeExecutor(), dispatcher, clock)
    running = asyncio.create_task(agent.run())
    try:
        await until(lambda: clock.sleepers > 0)
        clock.advance(1.0)  # the retry delay: it registers again
        await until(lambda: dispatcher.registrations >= 2)
    finally:
        running.cancel()
    return agent


async def test_a_refusal_naming_this_node_as_removed_sets_removed() -> None:
    agent = await refused_twice("permission denied: node node1 was removed from the swarm")
    assert agent.removed.is_set()


async def test_other_refusals_leave_removed_unset() -> None:
    agent = await refused_twice("permission denied: node other was removed from the swarm")
    assert not agent.removed.is_set()
    agent = await refused_twice("permission denied: role 'swarm-worker' may not call manager routes")
    assert not agent.removed.is_set()
