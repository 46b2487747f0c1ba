"""A host-mode port published as 0: each task's node chose a port for it (reported in the task's
Status.PortStatus), and the mesh stream carries one entry per task, so only that task's node routes it,
to that task alone; a task not running yet, or with no port chosen, gives none."""

from __future__ import annotations

from shoal.api.objects import SERVICES, TASKS, Obj
from shoal.base.clock import SystemClock
from shoal.dispatcher.meshstream import published_entries
from shoal.network.mesh import Backend, PublishedPort
from shoal.node.meshfeed import mesh_for_node
from shoal.store.memory import MemoryStore
from shoal.testing.store_harness import InstantProposer


def task(task_id: str, node_id: str, addr: str, chosen: int, state: str = "running") -> Obj:
    ports = [{"Protocol": "tcp", "TargetPort": 80, "PublishedPort": chosen, "PublishMode": "host"}] if chosen else []
    return {"ID": task_id, "ServiceID": "web", "NodeID": node_id, "DesiredState": "running",
            "Status": {"State": state, "ContainerStatus": {"Addr": f"{addr}/24"},
                       "PortStatus": {"Ports": ports} if ports else {}}}


async def test_each_task_s_chosen_port_is_routed_on_its_own_node() -> None:
    store = MemoryStore(InstantProposer(), SystemClock())
    spec = {"ID": "web", "Spec": {"Name": "web"}, "Endpoint": {"Ports": [
        {"Protocol": "tcp", "TargetPort": 80, "PublishMode": "host"},
        {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 9090, "PublishMode": "host"}]}}
    await store.update(lambda tx: tx.create(SERVICES, spec))
    for one in (task("t1", "n1", "10.1.0.2", 33001), task("t2", "n2", "10.2.0.2", 33002),
                task("t3", "n1", "10.1.0.3", 33003, state="starting"), task("t4", "n1", "10.1.0.4", 0)):
        await store.update(lambda tx, one=one: tx.create(TASKS, one))
    entries = published_entries(store.view())
    chosen = [e for e in entries if e["port"] != 9090]
    assert chosen == [
        {"port": 33001, "protocol": "tcp", "mode": "host", "target": 80, "tasks": [["10.1.0.2", "n1"]]},
        {"port": 33002, "protocol": "tcp", "mode": "host", "target": 80, "tasks": [["10.2.0.2", "n2"]]},
    ]
    assert mesh_for_node(chosen, "n1", route_host_ports=True) == {
        PublishedPort(33001): [Backend("10.1.0.2", 80)], PublishedPort(33002): []}
