"""A restarted agent's stale tasks (Swarm: a returning node's stale tasks are shut down): a task found
running from the earlier daemon goes when the managers' assignments no longer list it (its service was
removed and its tasks deleted meanwhile), and is shut down when they list it with desired state REMOVE;
one still wanted is re-adopted untouched."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from shoal.agent.agent import Agent
from shoal.agent.runtime import task_runtime
from shoal.api import states
from shoal.api.dispatch import Assignments, Session, StatusUpdate
from shoal.api.objects import Obj
from shoal.executor.base import ContainerState
from shoal.testing.clock import FakeClock
from shoal.testing.fake_executor import FakeExecutor

NODE = "node1"


def task(task_id: str, desired: str = states.RUNNING) -> Obj:
    return {"ID": task_id, "ServiceID": "svc", "ServiceAnnotations": {"Name": "web"}, "Slot": 1, "NodeID": NODE,
            "Spec": {"ContainerSpec": {"Image": "busybox", "Args": ["sleep", "1"]}},
            "Status": {"State": states.RUNNING}, "DesiredState": desired}


class OneAssignment:
    """Takes the session and sends one full set of assignments, then nothing more."""

    def __init__(self, tasks: dict[str, Obj]) -> None:
        self.tasks = tasks
        self.reports: dict[str, str] = {}

    async def register(self, node_id: str, description: Obj, addr: str) -> Session:
        return Session("s", 5.0)

    async def heartbeat(self, node_id: str, session_id: str) -> float:
        return 5.0

    async def assignments(self, node_id: str, session_id: str) -> AsyncIterator[Assignments]:
        yield Assignments(self.tasks)
        await asyncio.Event().wait()

    async def update_status(self, node_id: str, session_id: str, updates: list[StatusUpdate]) -> None:
        self.reports.update({update.task_id: str(update.status.get("State")) for update in updates})


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while not condition():
            await asyncio.sleep(0)


async def earlier_run(*task_ids: str) -> FakeExecutor:
    """An executor holding running tasks that an earlier daemon started, as a restarted one finds it."""
    executor = FakeExecutor()
    for task_id in task_ids:
        controller = executor.controller(task_runtime(task(task_id), NODE, "host"))
        await controller.prepare()
        await controller.start()
    return executor.restarted()


def running(executor: FakeExecutor, task_id: str) -> bool:
    container = executor.containers_by_task.get(task_id)
    return container is not None and container.status.state is ContainerState.RUNNING


async def test_stale_tasks_go_and_a_wanted_one_is_readopted() -> None:
    executor = await earlier_run("deleted", "removed", "wanted")
    clock = FakeClock()
    dispatcher = OneAssignment({"removed": task("removed", states.REMOVE), "wanted": task("wanted")})
    agent = Agent(NODE, "127.0.0.1", executor, dispatcher, clock)
    runner = asyncio.create_task(agent.run())
    try:
        await until(lambda: "remove" in executor.steps("deleted"))
        await until(lambda: not running(executor, "removed"))
        async with asyncio.timeout(5):
            while dispatcher.reports.get("removed") != states.SHUTDOWN:  # reports leave in batches
                clock.advance(0.05)
                await asyncio.sleep(0)
        assert "deleted" not in executor.containers_by_task
        assert running(executor, "wanted")
        assert "start" not in executor.steps("wanted")
    finally:
        runner.cancel()
