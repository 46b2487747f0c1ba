"""Keeps this node's routing mesh equal to what its managers say, through the cluster port: a manager
streams every published port with the addresses of the service's running tasks on every node
(shoal.dispatcher.meshstream), and this node turns that into its own mesh. Managers and workers take
the same path; neither reads a store. When no manager answers, the last mesh keeps serving.

Which backends a port gets here: host-mode ports only this node's own tasks (and only when tasks live
in network namespaces of their own, so they cannot bind the host's port themselves: the docker
executor's engine binds them instead). Ingress ports go to this node's own running tasks when it has
some, else to the tasks on other nodes. Swarm spreads over every task through its overlay network;
until shoal has a data path between hosts (task addresses are not routed from one host to another
yet, and node bridges may reuse one another's subnets), a remote task's address cannot be reached
from here, so local tasks come first rather than sending a share of connections nowhere."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from shoal.api import errors
from shoal.base.clock import Clock
from shoal.dispatcher.meshstream import KEEPALIVE_INTERVAL, MESH_PATH
from shoal.network.mesh import Backend, InvalidMeshState, Mesh, MeshError, MeshState, PublishedPort
from shoal.rpc.client import RpcClient
from shoal.rpc.stream import MessageStream

log = logging.getLogger(__name__)
CONNECT_TIMEOUT = 5.0
STALE_AFTER = 3 * KEEPALIVE_INTERVAL
"""A manager silent this long (no change, no keepalive) is given up for the next one."""
RETRY_DELAY = 1.0
CLOSE_TIMEOUT = 2.0


def mesh_for_node(entries: Any, node_id: str, route_host_ports: bool) -> MeshState:
    """This node's mesh from the entries a manager sent (see the module's note); an entry that is not
    well formed is left out, with a log line, rather than stopping the others."""
    state: dict[PublishedPort, list[Backend]] = {}
    for entry in entries if isinstance(entries, list) else []:
        try:
            published, target, mode, tasks = _parse(entry)
        except (InvalidMeshState, KeyError, TypeError, ValueError) as exc:
            log.warning("routing mesh: ignoring a malformed entry %r: %s", entry, exc)
            continue
        if mode == "host" and not route_host_ports:
            continue
        local = [address for address, node in tasks if node == node_id]
        remote = [address for address, node in tasks if node != node_id]
        chosen = local if mode == "host" or local else remote
        try:
            state.setdefault(published, []).extend(Backend(address, target) for address in chosen)
        except InvalidMeshState as exc:
            log.warning("routing mesh: ignoring port %s: %s", published, exc)
            state.pop(published, None)
    return state


def _parse(entry: Any) -> tuple[PublishedPort, int, str, list[tuple[str, str]]]:
    if not isinstance(entry, dict):
        raise TypeError("not a map")
    protocol = entry["protocol"]
    mode = entry["mode"]
    if protocol not in ("tcp", "udp") or mode not in ("ingress", "host"):
        raise ValueError(f"protocol {protocol!r}, mode {mode!r}")
    port, target = entry["port"], entry["target"]
    if not isinstance(port, int) or not isinstance(target, int):
        raise TypeError("ports must be integers")
    tasks = [(str(address), str(node)) for address, node in entry["tasks"]]
    # Host-mode ports are routed like ingress ones (to this node's tasks only): the mesh serves both.
    return PublishedPort(port, "udp" if protocol == "udp" else "tcp", "ingress"), target, mode, tasks


class MeshFeed:
    def __init__(self, client: Callable[[], RpcClient], managers: Callable[[], list[str]], mesh: Mesh,
                 node_id: str, route_host_ports: bool, clock: Clock) -> None:
        """``client()`` dials the cluster port with this node's current certificate; ``managers()``
        lists the managers to ask, the one holding this node's dispatcher session first."""
        self._client = client
        self._managers = managers
        self._mesh = mesh
        self._node_id = node_id
        self._route_host_ports = route_host_ports
        self._clock = clock
        self.source: str | None = None
        """The manager whose stream feeds the mesh now (None between streams)."""

    async def run(self) -> None:
        """Run until cancelled. A lost stream never clears the mesh: it keeps serving what it last
        had while the next manager is tried."""
        while True:
            for address in self._managers():
                try:
                    await self._follow(address)
                except (errors.ShoalError, TimeoutError) as exc:
                    # A stream that was up ends once (info); a manager that cannot be reached is
                    # tried again every second, so that is only worth a debug line.
                    log.log(logging.INFO if self.source is not None else logging.DEBUG,
                            "routing mesh: stream from %s ended (%s); the mesh keeps its last state",
                            address, exc or "no word from it")
                finally:
                    self.source = None
            await self._clock.sleep(RETRY_DELAY)

    async def _follow(self, address: str) -> None:
        # A paused manager accepts the TCP connection but never finishes the handshake: bounded here.
        async with asyncio.timeout(CONNECT_TIMEOUT):
            stream: MessageStream = await self._client().stream(address, MESH_PATH)
        try:
            self.source = address
            while True:
                async with asyncio.timeout(STALE_AFTER):
                    message = await stream.recv()
                if isinstance(message, dict) and "ports" in message:
                    await self._apply(mesh_for_node(message["ports"], self._node_id, self._route_host_ports))
        finally:
            # Bounded: a peer that stopped reading must not hold up leaving or a move to the next manager.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await stream.close()

    async def _apply(self, state: MeshState) -> None:
        try:
            await self._mesh.apply(state)
        except (InvalidMeshState, MeshError) as exc:
            # Applied again with the next message; the previous rules keep serving meanwhile.
            log.error("routing mesh: %s", exc)

