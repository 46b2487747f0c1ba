"""Keeps this node's routing mesh equal to what the store says: for every ingress-published port, the
addresses of the service's running tasks. Recomputed after each commit that touches services or
tasks; the mesh itself skips work when the state did not change."""

from __future__ import annotations

import logging

from shoal.api import states
from shoal.api.objects import SERVICES, TASKS, Obj, dig
from shoal.network.mesh import Backend, InvalidMeshState, Mesh, MeshError, MeshState, PublishedPort
from shoal.store.memory import MemoryStore, ReadView
from shoal.store.watch import Commit

log = logging.getLogger(__name__)


def desired_mesh(view: ReadView, node_id: str = "", route_host_ports: bool = False) -> MeshState:
    """Ingress ports go to the service's running tasks on every node. Host-mode ports belong to the
    tasks on this node only; they are routed here when `route_host_ports` is set, i.e. when tasks live
    in network namespaces of their own and so cannot bind the host's port themselves (the docker
    executor's engine binds them instead)."""
    state: dict[PublishedPort, list[Backend]] = {}
    for service in view.objects(SERVICES):
        ports = dig(service, "Endpoint", "Ports") or []
        if not ports:
            continue
        running = [t for t in view.tasks_of_service(service["ID"]) if _serving(t)]
        for port in ports:
            mode = port.get("PublishMode") or "ingress"
            protocol = port.get("Protocol") or "tcp"
            if not port.get("PublishedPort") or protocol not in ("tcp", "udp"):
                continue  # dynamic host ports and sctp are not routed by the mesh yet
            if mode == "host" and not route_host_ports:
                continue
            published = PublishedPort(int(port["PublishedPort"]), "udp" if protocol == "udp" else "tcp", "ingress")
            backends = state.setdefault(published, [])
            for task in running:
                address = dig(task, "Status", "ContainerStatus", "Addr")
                if address and (mode == "ingress" or task.get("NodeID") == node_id):
                    backends.append(Backend(str(address).split("/")[0], int(port["TargetPort"])))
    return state


def _serving(task: Obj) -> bool:
    return task.get("DesiredState") == states.RUNNING and dig(task, "Status", "State") == states.RUNNING


async def feed_mesh(store: MemoryStore, mesh: Mesh, node_id: str, route_host_ports: bool) -> None:
    """Run until cancelled: apply the desired mesh now and after every relevant commit."""
    with store.watch(lambda ev: ev.table in (SERVICES, TASKS)) as sub:
        while True:
            try:
                await mesh.apply(desired_mesh(store.view(), node_id, route_host_ports))
            except (InvalidMeshState, MeshError) as exc:
                # Retried at the next commit; the previous rules keep serving meanwhile.
                log.error("routing mesh: %s", exc)
            # Restored (a snapshot was installed) is a Commit too: the mesh follows the new state.
            while not isinstance(await sub.get(), Commit):
                pass
            while sub.get_nowait() is not None:
                pass
