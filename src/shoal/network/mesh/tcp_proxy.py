"""Userspace TCP forwarding for one published port: accept on all addresses, connect to the backends in
round-robin turn (a refusing backend passes the connection to the next), then splice both directions
with transport flow control. Connections to a removed backend drain: they run until either side ends
them, or until the drain timeout."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Sequence

from shoal.network.mesh.balancer import RoundRobin
from shoal.network.mesh.state import Backend

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5.0


class _Half(asyncio.Protocol):
    """One socket of a forwarded connection; whatever it reads goes to the other half."""

    def __init__(self, link: _Link) -> None:
        self.link = link
        self.transport: asyncio.Transport | None = None
        self.peer: _Half | None = None
        self.got_eof = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.write(data)

    def eof_received(self) -> bool:
        self.got_eof = True
        peer = self.peer
        if peer is None or peer.transport is None or peer.got_eof:
            self.link.close()
            return False
        if peer.transport.can_write_eof():
            peer.transport.write_eof()  # pass the half-close on; the other direction may still flow
            return True
        self.link.close()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.link.close()

    # The peer's write buffer is full or drained: stop or resume reading from this side.
    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.resume_reading()


class _ClientHalf(_Half):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        assert self.transport is not None
        self.transport.pause_reading()  # nothing to forward to until a backend accepts
        self.link.forwarder._start_connect(self.link)


def _same(half: _Half) -> _Half:
    return half


class _Link:
    """A client connection and, once connected, its backend connection."""

    def __init__(self, forwarder: TcpForwarder) -> None:
        self.forwarder = forwarder
        self.client = _ClientHalf(self)
        self.upstream: _Half | None = None
        self.backend: Backend | None = None
        self.closed = False

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for half in (self.client, self.upstream):
            if half is not None and half.transport is not None:
                half.transport.close()  # flushes what is buffered first
        self.forwarder._forget(self)

    def abort(self) -> None:
        for half in (self.client, self.upstream):
            if half is not None and half.transport is not None:
                half.transport.abort()
        self.close()


class TcpForwarder:
    def __init__(
        self,
        port: int,
        backends: Sequence[Backend],
        *,
        host: str = "0.0.0.0",
        drain_timeout: float | None = 30.0,
    ) -> None:
        self.port = port
        self.host = host
        self.drain_timeout = drain_timeout
        self.balancer = RoundRobin(backends)
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()
        self._connecting: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._accept, self.host, self.port, reuse_address=True)

    def _accept(self) -> asyncio.Protocol:
        link = _Link(self)
        self._links.add(link)
        return link.client

    def _start_connect(self, link: _Link) -> None:
        task = asyncio.get_running_loop().create_task(self._connect(link))
        self._connecting.add(task)
        task.add_done_callback(self._connecting.discard)

    async def _connect(self, link: _Link) -> None:
        client = link.client.transport
        assert client is not None
        loop = asyncio.get_running_loop()
        for backend in self.balancer.attempt_order():
            upstream = _Half(link)
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT):
                    await loop.create_connection(functools.partial(_same, upstream), backend.ip, backend.port)
            except (OSError, TimeoutError) as exc:
                log.debug("port %d: backend %s failed (%s), trying the next", self.port, backend, exc)
                continue
            if link.closed:  # the client left while we were connecting
                assert upstream.transport is not None
                upstream.transport.close()
                return
            link.upstream, link.backend = upstream, backend
            upstream.peer, link.client.peer = link.client, upstream
            client.resume_reading()
            return
        link.abort()  # no backend would take it: the client sees a reset

    def _forget(self, link: _Link) -> None:
        self._links.discard(link)

    def set_backends(self, backends: Sequence[Backend]) -> None:
        self.balancer.set_backends(backends)
        removed = [link for link in self._links if link.backend not in (None, *backends)]
        if removed and self.drain_timeout is not None:
            loop = asyncio.get_running_loop()
            for link in removed:
                loop.call_later(self.drain_timeout, link.abort)

    def connections_to(self, backend: Backend) -> int:
        return sum(1 for link in self._links if link.backend == backend)

    async def stop(self, *, drain: bool) -> None:
        """Stop accepting. With drain, open connections carry on (up to the drain timeout);
        without, they are cut."""
        if self._server is not None:
            # Not wait_closed(): from Python 3.12 it also waits for the connections we let drain.
            self._server.close()
            self._server = None
        if not drain:
            for task in list(self._connecting):
                task.cancel()
            for link in list(self._links):
                link.abort()
        elif self.drain_timeout is not None:
            loop = asyncio.get_running_loop()
            for link in list(self._links):
                loop.call_later(self.drain_timeout, link.abort)
