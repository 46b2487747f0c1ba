"""A task's Status.PortStatus names the host port the runtime bound when it chose one (a host-mode port
published as 0, which an engine gives a free port), once per port though it is bound on 0.0.0.0 and
:: both; without such a report it is the spec's published port."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable

from shoal.agent.runtime import task_runtime
from shoal.agent.taskmanager import TaskManager
from shoal.api import states
from shoal.api.objects import Obj
from shoal.executor.base import ContainerStatus, PortBinding
from shoal.executor.port_shapes import bindings_from_network_ports
from shoal.testing.clock import FakeClock
from shoal.testing.fake_executor import FakeController, FakeExecutor

CHOSEN = (PortBinding(80, "tcp", 32768), PortBinding(80, "tcp", 32768, "::"))


class EngineLikeController(FakeController):
    """Reports the host ports an engine chose, as the docker executor's controller does."""

    async def inspect(self) -> ContainerStatus:
        return dataclasses.replace(await super().inspect(), host_ports=CHOSEN)


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while not condition():
            await asyncio.sleep(0.01)


def host_task(published: int) -> Obj:
    ports = [{"Protocol": "tcp", "TargetPort": 80, "PublishedPort": published, "PublishMode": "host"}]
    return {"ID": "t1", "ServiceID": "svc", "ServiceAnnotations": {"Name": "web"}, "Slot": 1, "NodeID": "n",
            "Spec": {"ContainerSpec": {"Image": "busybox", "Args": ["sleep", "9"]}},
            "Endpoint": {"Spec": {"Ports": ports}, "Ports": ports},
            "Status": {"State": states.ASSIGNED}, "DesiredState": states.RUNNING}


async def running_port_status(task: Obj, engine_like: bool) -> Obj:
    executor = FakeExecutor()
    runtime = task_runtime(task, "n", "host")
    controller = EngineLikeController(executor, runtime) if engine_like else executor.controller(runtime)
    reports: list[Obj] = []
    manager = TaskManager(task, controller, lambda _, s: reports.append(s), FakeClock())
    manager.start()
    await until(lambda: bool(reports) and reports[-1]["State"] == states.RUNNING)
    await manager.stop()
    port_status: Obj = reports[-1]["PortStatus"]
    return port_status


async def test_the_port_an_engine_chose_is_reported_once() -> None:
    assert await running_port_status(host_task(0), engine_like=True) == {"Ports": [
        {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 32768, "PublishMode": "host"}]}


async def test_without_a_report_from_the_runtime_the_spec_s_port_is_reported() -> None:
    assert await running_port_status(host_task(8080), engine_like=False) == {"Ports": [
        {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "host"}]}
    assert await running_port_status(host_task(0), engine_like=False) == {}


def test_an_engine_s_network_ports_read_back_as_bindings() -> None:
    shown = {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "32768"}, {"HostIp": "::", "HostPort": "32768"}],
             "8443/tcp": None, "53/udp": [{"HostIp": "", "HostPort": ""}], "bogus": "x"}
    assert bindings_from_network_ports(shown) == CHOSEN
    assert bindings_from_network_ports(None) == ()
