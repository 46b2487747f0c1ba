"""The agent's task handling over a FakeExecutor: one bad task is rejected alone, a container lost while
shoald was away fails its task instead of being silently replaced, and leaving removes every task even
when one of them cannot be stopped."""

from __future__ import annotations

from agent_stubs import IdleDispatcher, until

from shoal.agent.agent import Agent
from shoal.agent.runtime import task_runtime
from shoal.agent.taskmanager import TaskManager
from shoal.api import states
from shoal.api.dispatch import Assignments
from shoal.api.objects import Obj
from shoal.executor.errors import ContainerNotFound
from shoal.testing.clock import FakeClock
from shoal.testing.fake_executor import FakeExecutor

NODE = "node1"


def task(task_id: str, *, signal: str = "", state: str = states.ASSIGNED) -> Obj:
    container: Obj = {"Image": "busybox", "Args": ["sleep", "1"]}
    if signal:
        container["StopSignal"] = signal
    return {"ID": task_id, "ServiceID": "svc", "ServiceAnnotations": {"Name": "web"}, "Slot": 1, "NodeID": NODE,
            "Spec": {"ContainerSpec": container}, "Status": {"State": state}, "DesiredState": states.RUNNING}


async def test_a_task_with_a_bad_stop_signal_is_rejected_alone() -> None:
    reports: dict[str, Obj] = {}
    agent = Agent(NODE, "127.0.0.1", FakeExecutor(), IdleDispatcher(), FakeClock())
    agent._report = lambda task_id, status: reports.__setitem__(task_id, status)  # type: ignore[method-assign]
    await agent._reconcile(Assignments({"bad": task("bad", signal="SIGFOO"), "good": task("good")}))
    await until(lambda: "bad" in reports and reports.get("good", {}).get("State") == states.RUNNING)
    assert reports["bad"]["State"] == states.REJECTED
    assert "SIGFOO" in reports["bad"]["Err"]
    assert reports["good"]["State"] == states.RUNNING
    await agent.stop()


async def test_a_started_task_without_its_container_fails_instead_of_restarting() -> None:
    executor = FakeExecutor()
    reports: list[Obj] = []
    controller = executor.controller(task_runtime(task("t1"), NODE, "host"))
    manager = TaskManager(task("t1", state=states.RUNNING), controller, lambda _, s: reports.append(s), FakeClock())
    manager.start()
    await until(lambda: bool(reports))
    assert [r["State"] for r in reports] == [states.FAILED]
    assert "container lost" in reports[0]["Err"]
    assert "start" not in executor.steps("t1")


async def test_leaving_removes_every_task_even_if_one_cannot_be_stopped() -> None:
    executor = FakeExecutor()
    agent = Agent(NODE, "127.0.0.1", executor, IdleDispatcher(), FakeClock())
    agent._report = lambda task_id, status: None  # type: ignore[method-assign]
    await agent._reconcile(Assignments({"a": task("a"), "b": task("b")}))
    await until(lambda: all("start" in executor.steps(t) for t in ("a", "b")))
    executor.fail("shutdown", ContainerNotFound("a"), task_id="a")
    await agent.remove_all()
    assert agent.managers == {}
    assert "remove" in executor.steps("b")
