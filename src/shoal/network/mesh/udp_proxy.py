"""Userspace UDP forwarding for one published port. Each client address is a flow: its first datagram
picks a backend in round-robin turn, and a connected socket to that backend carries the flow's
datagrams both ways until it idles out. A backend that answers with ICMP port-unreachable hands the
flow (and its last datagram) to the next one. When a backend is removed, the client's next datagram
starts a new flow on a remaining backend, while the old flow lingers a moment so that answers already
on their way still arrive."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from shoal.network.mesh.balancer import RoundRobin
from shoal.network.mesh.state import Backend
from shoal.network.mesh.udp_socket import ReplyingUdpSocket

log = logging.getLogger(__name__)

Address = tuple[str, int]
PENDING_LIMIT = 64  # datagrams held per flow while its backend socket opens
MAX_FLOWS = 4096  # one socket each: a flood of client addresses must not exhaust file descriptors
REMOVAL_GRACE = 2.0  # seconds a flow to a removed backend still delivers answers


class _Flow(asyncio.DatagramProtocol):
    """One client's datagrams to and from its backend."""

    def __init__(self, forwarder: UdpForwarder, client: Address, local: str | None, order: list[Backend]) -> None:
        self.forwarder = forwarder
        self.client = client
        self.local = local  # the address the client sent to: answers leave from it
        self.order = order  # order[0] is the current backend; the rest are fallbacks
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: list[bytes] = []
        self.last_datagram = b""
        self.last_active = asyncio.get_running_loop().time()
        self.closed = False

    @property
    def backend(self) -> Backend:
        return self.order[0]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self.closed:
            transport.close()
            return
        for datagram in self.pending:
            self.send(datagram)
        self.pending.clear()

    def send(self, datagram: bytes) -> None:
        self.last_active = asyncio.get_running_loop().time()
        self.last_datagram = datagram
        if self.transport is None:
            if len(self.pending) < PENDING_LIMIT:
                self.pending.append(datagram)
            return
        self.transport.sendto(datagram)

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.last_active = asyncio.get_running_loop().time()
        self.forwarder._reply(data, self.client, self.local)

    def error_received(self, exc: Exception) -> None:
        if not isinstance(exc, ConnectionRefusedError):
            return
        self.close()
        current = self.forwarder.balancer.backends
        rest = [backend for backend in self.order[1:] if backend in current]
        if rest and self.forwarder._flows.get(self.client) is None:
            log.debug("udp %d: %s refused, trying the next backend", self.forwarder.port, self.backend)
            self.forwarder._open_flow(self.client, self.local, rest, [self.last_datagram])

    def connection_lost(self, exc: Exception | None) -> None:
        self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.transport is not None:
            self.transport.close()
        self.forwarder._forget(self)


class UdpForwarder:
    def __init__(
        self,
        port: int,
        backends: Sequence[Backend],
        *,
        host: str = "0.0.0.0",
        idle_timeout: float = 30.0,
        max_flows: int = MAX_FLOWS,
    ) -> None:
        self.port = port
        self.host = host
        self.idle_timeout = idle_timeout
        self.max_flows = max_flows
        self.balancer = RoundRobin(backends)
        self._listener: ReplyingUdpSocket | None = None
        self._flows: dict[Address, _Flow] = {}
        self._lingering: set[_Flow] = set()  # flows to removed backends, still delivering answers
        self._sweeper: asyncio.TimerHandle | None = None
        self._opening: set[asyncio.Task[object]] = set()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        listener = ReplyingUdpSocket(self.host, self.port, self._from_client)
        listener.open()
        self._listener = listener
        self._sweeper = loop.call_later(self.idle_timeout / 2, self._sweep)

    def _from_client(self, data: bytes, client: Address, local: str | None) -> None:
        flow = self._flows.get(client)
        if flow is None:
            if len(self._flows) >= self.max_flows:
                return  # dropped, as a full conntrack table would
            order = self.balancer.attempt_order()
            if not order:
                return
            self._open_flow(client, local, order, [data])
        else:
            flow.send(data)

    def _open_flow(self, client: Address, local: str | None, order: list[Backend], datagrams: list[bytes]) -> None:
        flow = _Flow(self, client, local, order)
        self._flows[client] = flow
        for datagram in datagrams:
            flow.send(datagram)  # held until the backend socket is open
        loop = asyncio.get_running_loop()
        backend = flow.backend
        task: asyncio.Task[object] = loop.create_task(
            loop.create_datagram_endpoint(lambda: flow, remote_addr=(backend.ip, backend.port))
        )
        self._opening.add(task)
        task.add_done_callback(lambda done: self._opened(flow, done))

    def _opened(self, flow: _Flow, task: asyncio.Task[object]) -> None:
        self._opening.discard(task)
        if task.cancelled() or task.exception() is not None:
            log.debug("udp %d: cannot reach %s: %s", self.port, flow.backend, task)
            flow.close()
        elif flow.closed and flow.transport is not None:
            flow.transport.close()

    def _reply(self, data: bytes, client: Address, local: str | None) -> None:
        if self._listener is not None:
            self._listener.send(data, client, local)

    def _forget(self, flow: _Flow) -> None:
        self._lingering.discard(flow)
        if self._flows.get(flow.client) is flow:
            del self._flows[flow.client]

    def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() - self.idle_timeout
        for flow in [f for f in self._flows.values() if f.last_active < deadline]:
            flow.close()
        self._sweeper = loop.call_later(self.idle_timeout / 2, self._sweep)

    def set_backends(self, backends: Sequence[Backend]) -> None:
        self.balancer.set_backends(backends)
        loop = asyncio.get_running_loop()
        for flow in [f for f in self._flows.values() if f.backend not in backends]:
            self._forget(flow)
            self._lingering.add(flow)
            loop.call_later(REMOVAL_GRACE, flow.close)

    def flows_to(self, backend: Backend) -> int:
        return sum(1 for flow in self._flows.values() if flow.backend == backend)

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        for task in list(self._opening):
            task.cancel()
        for flow in [*self._flows.values(), *self._lingering]:
            flow.close()
