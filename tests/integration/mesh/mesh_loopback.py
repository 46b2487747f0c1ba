"""Backends on loopback for mesh tests that need no namespaces: in-process name servers."""

from __future__ import annotations

import asyncio
import socket

import name_server

from shoal.network.mesh.state import Backend


def free_port() -> int:
    """A port free for both TCP and UDP on all addresses (bound and released)."""
    while True:
        with socket.socket() as tcp:
            tcp.bind(("0.0.0.0", 0))
            port = int(tcp.getsockname()[1])
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                    udp.bind(("0.0.0.0", port))
            except OSError:
                continue
            return port


class Backends:
    """Name servers on 127.0.0.1, each on a free port; calling it picks backends by name."""

    def __init__(self) -> None:
        self.by_name: dict[str, Backend] = {}
        self.stoppers: list[tuple[asyncio.Server, asyncio.DatagramTransport]] = []

    async def add(self, name: str) -> Backend:
        backend = Backend("127.0.0.1", free_port())
        self.stoppers.append(await name_server.start(name, backend.port, "127.0.0.1"))
        self.by_name[name] = backend
        return backend

    def __call__(self, *names: str) -> list[Backend]:
        return [self.by_name[n] for n in names or self.by_name]

    def stop(self) -> None:
        for server, datagrams in self.stoppers:
            server.close()
            datagrams.close()
