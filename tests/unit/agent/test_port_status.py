"""Host-mode published ports are reported in the task's Status.PortStatus once its container exists,
as Swarm's agent reports them (`docker service ps` shows them in PORTS); ingress ports are not."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from shoal.agent.runtime import task_runtime
from shoal.agent.taskmanager import TaskManager
from shoal.api import states
from shoal.api.objects import Obj
from shoal.testing.clock import FakeClock
from shoal.testing.fake_executor import FakeExecutor


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while not condition():
            await asyncio.sleep(0)


async def test_host_ports_reported_once_the_container_exists() -> None:
    ports = [{"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 9555, "PublishMode": "host"},
             {"Protocol": "udp", "TargetPort": 53, "PublishedPort": 30001, "PublishMode": "ingress"}]
    task: Obj = {"ID": "t1", "ServiceID": "svc", "ServiceAnnotations": {"Name": "web"}, "Slot": 1, "NodeID": "n",
                 "Spec": {"ContainerSpec": {"Image": "busybox", "Args": ["sleep", "9"]}},
                 "Endpoint": {"Spec": {"Ports": ports}, "Ports": ports},
                 "Status": {"State": states.ASSIGNED}, "DesiredState": states.RUNNING}
    executor = FakeExecutor()
    reports: list[Obj] = []
    manager = TaskManager(task, executor.controller(task_runtime(task, "n", "host")), lambda _, s: reports.append(s),
                          FakeClock())
    manager.start()
    await until(lambda: bool(reports) and reports[-1]["State"] == states.RUNNING)
    by_state = {r["State"]: r["PortStatus"] for r in reports}
    assert by_state[states.ACCEPTED] == {}
    assert by_state[states.RUNNING] == {"Ports": [ports[0]]}
    await manager.stop()
