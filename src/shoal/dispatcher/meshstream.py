"""What every node's routing mesh must serve, streamed from a manager's store over the cluster port.

A node holds no store: it learns the services' published ports and where their running tasks are
(address and node, on every node) from this stream, and decides itself what its own mesh does with
them (shoal.node.meshfeed). Any manager serves it from its own replicated store, so a node keeps its
mesh fed through whichever manager answers.

Messages: ``{"ports": [entry, ...]}`` with the whole current set whenever it changed (the set is small:
one entry per published port), and ``{"keepalive": True}`` when nothing changed for a while, so that a
reader can tell a quiet manager from one that stopped answering (paused, cut off)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from typing import Any

from shoal.api import states
from shoal.api.objects import SERVICES, TASKS, Obj, dig
from shoal.rpc.identity import Access
from shoal.rpc.server import Caller, RpcServer
from shoal.rpc.stream import MessageStream
from shoal.store.memory import MemoryStore, ReadView
from shoal.store.watch import Commit

MESH_PATH = "/dispatcher/v1/mesh"
KEEPALIVE_INTERVAL = 2.0
"""Seconds of silence after which the server says it is still there; readers give up after a few."""

MeshEntry = dict[str, Any]
"""{"port": published, "protocol": "tcp"|"udp", "mode": "ingress"|"host", "target": port inside the
task, "tasks": [[address, node id], ...] of the service's running tasks}"""


def published_entries(view: ReadView) -> list[MeshEntry]:
    """Every published port the mesh can route, with the running tasks behind it, in a stable order
    (equal states give equal lists, so an unchanged state is not sent again)."""
    entries: list[MeshEntry] = []
    for service in view.objects(SERVICES):
        ports = dig(service, "Endpoint", "Ports") or []
        if not ports:
            continue
        running = sorted(
            [str(dig(task, "Status", "ContainerStatus", "Addr")).split("/")[0], str(task.get("NodeID") or "")]
            for task in view.tasks_of_service(service["ID"])
            if _serving(task) and dig(task, "Status", "ContainerStatus", "Addr")
        )
        fixed = {int(p["PublishedPort"]) for p in ports if p.get("PublishedPort")}
        for port in ports:
            protocol = port.get("Protocol") or "tcp"
            if protocol not in ("tcp", "udp"):
                continue  # sctp is not routed by the mesh yet
            if port.get("PublishedPort"):
                entries.append({
                    "port": int(port["PublishedPort"]), "protocol": protocol,
                    "mode": port.get("PublishMode") or "ingress", "target": int(port["TargetPort"]),
                    "tasks": running,
                })
            elif port.get("PublishMode") == "host":
                entries += _chosen_host_ports(view.tasks_of_service(service["ID"]), int(port["TargetPort"]),
                                              protocol, fixed)
    return sorted(entries, key=lambda e: (e["port"], e["protocol"], e["mode"], e["target"], e["tasks"]))


def _chosen_host_ports(tasks: Iterable[Obj], target: int, protocol: str, fixed: set[int]) -> list[MeshEntry]:
    """A host-mode port published as 0: the node of each task chose a port for it (the task's
    Status.PortStatus says which); one entry per task, served by that task alone on its node."""
    found: list[MeshEntry] = []
    for task in tasks:
        address = dig(task, "Status", "ContainerStatus", "Addr")
        if not _serving(task) or not address:
            continue
        for bound in dig(task, "Status", "PortStatus", "Ports") or []:
            chosen = int(bound.get("PublishedPort") or 0)
            if (bound.get("PublishMode") == "host" and (bound.get("Protocol") or "tcp") == protocol
                    and int(bound.get("TargetPort") or 0) == target and chosen and chosen not in fixed):
                found.append({"port": chosen, "protocol": protocol, "mode": "host", "target": target,
                              "tasks": [[str(address).split("/")[0], str(task.get("NodeID") or "")]]})
    return found


def _serving(task: Obj) -> bool:
    return task.get("DesiredState") == states.RUNNING and dig(task, "Status", "State") == states.RUNNING


class MeshStreamService:
    def __init__(self, store: MemoryStore, keepalive: float = KEEPALIVE_INTERVAL) -> None:
        self._store = store
        self._keepalive = keepalive

    def register(self, server: RpcServer) -> None:
        server.stream(MESH_PATH, Access.NODE, self._serve)

    async def _serve(self, caller: Caller, stream: MessageStream) -> None:
        await serve_mesh(self._store, stream, self._keepalive)


async def serve_mesh(store: MemoryStore, stream: MessageStream, keepalive: float,
                     entries: Callable[[ReadView], list[MeshEntry]] = published_entries) -> None:
    """Send the current set, then the new set after each commit that changed it (a snapshot install
    is a Commit too), and a keepalive after ``keepalive`` seconds of nothing to say."""
    loop = asyncio.get_running_loop()
    with store.watch(lambda ev: ev.table in (SERVICES, TASKS)) as sub:
        sent: list[MeshEntry] | None = None
        last_sent = loop.time()
        while True:
            current = entries(store.view())
            if current != sent:
                await stream.send({"ports": current})
                sent, last_sent = current, loop.time()
            elif loop.time() - last_sent >= keepalive:
                await stream.send({"keepalive": True})
                last_sent = loop.time()
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow the cancellation that ends
            # this handler when the listener shuts down.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, last_sent + keepalive - loop.time())):
                    while not isinstance(await sub.get(), Commit):
                        pass
                    while sub.get_nowait() is not None:
                        pass
