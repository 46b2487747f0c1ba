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


def desired_mesh(view: ReadView) -> MeshState:
    state: dict[PublishedPort, list[Backend]] = {}
    for service in view.objects(SERVICES):
        ports = dig(service, "Endpoint", "Ports") or []
        if not ports:
            continue
        running = [t for t in view.tasks_of_service(service["ID"]) if _serving(t)]
        for port in ports:
            if (port.get("PublishMode") or "ingress") != "ingress" or not port.get("PublishedPort"):
                continue
            protocol = port.get("Protocol") or "tcp"
            if protocol == "udp":
                published = PublishedPort(int(port["PublishedPort"]), "udp", "ingress")
            elif protocol == "tcp":
                published = PublishedPort(int(port["PublishedPort"]), "tcp", "ingress")
            else:
                continue  # sctp: not routed by the mesh yet
            backends = state.setdefault(published, [])
            for task in running:
                address = dig(task, "Status", "ContainerStatus", "Addr")
                if address:
                    backends.append(Backend(str(address).split("/")[0], int(port["TargetPort"])))
    return state


def _serving(task: Obj) -> bool:
    return task.get("DesiredState") == states.RUNNING and dig(task, "Status", "State") == states.RUNNING


async def feed_mesh(store: MemoryStore, mesh: Mesh) -> None:
    """Run until cancelled: apply the desired mesh now and after every relevant commit."""
    with store.watch(lambda ev: ev.table in (SERVICES, TASKS)) as sub:
        while True:
            try:
                await mesh.apply(desired_mesh(store.view()))
            except (InvalidMeshState, MeshError) as exc:
                # Retried at the next commit; the previous rules keep serving meanwhile.
                log.error("routing mesh: %s", exc)
            while not isinstance(await sub.get(), Commit):
                pass
            while sub.get_nowait() is not None:
                pass
