"""The userspace proxy: real sockets on loopback, backends are in-process name servers."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
from mesh_client import ask_many
from mesh_loopback import Backends, free_port

from shoal.network.mesh.protocol import MeshError
from shoal.network.mesh.state import Backend, PublishedPort
from shoal.network.mesh.tcp_proxy import TcpForwarder
from shoal.network.mesh.userspace import UserspaceMesh


@pytest.fixture
async def backends() -> AsyncIterator[Backends]:
    pool = Backends()
    for name in ("a", "b", "c"):
        await pool.add(name)
    yield pool
    pool.stop()


@pytest.fixture
async def mesh() -> AsyncIterator[UserspaceMesh]:
    mesh = UserspaceMesh(drain_timeout=5.0)
    await mesh.start()
    yield mesh
    await mesh.close()


def host_address() -> str:
    """One of this host's non-loopback addresses, when it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.123", 9))
            return str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.1"


@pytest.mark.parametrize("protocol", ["tcp", "udp"])
async def test_new_connections_on_any_address_go_to_each_backend_in_turn(
    backends: Backends, mesh: UserspaceMesh, protocol: str
) -> None:
    port = free_port()
    await mesh.apply({PublishedPort(port, protocol): backends()})  # type: ignore[arg-type]
    # 127.0.0.2 is not the address a reply to 127.0.0.1 is routed from: UDP answers must leave from
    # the address the client asked, or its connected socket drops them.
    for address in ("127.0.0.1", "127.0.0.2", host_address()):
        assert sorted(await ask_many(protocol, address, port, 6)) == ["a", "a", "b", "b", "c", "c"]


@pytest.mark.parametrize("protocol", ["tcp", "udp"])
async def test_removed_backends_stop_answering_and_an_empty_state_closes_the_port(
    backends: Backends, mesh: UserspaceMesh, protocol: str
) -> None:
    port = free_port()
    published = PublishedPort(port, protocol)  # type: ignore[arg-type]
    await mesh.apply({published: backends()})
    assert set(await ask_many(protocol, "127.0.0.1", port, 3)) == {"a", "b", "c"}

    await mesh.apply({published: backends("b")})
    assert set(await ask_many(protocol, "127.0.0.1", port, 4)) == {"b"}

    await mesh.apply({})
    answers = await ask_many(protocol, "127.0.0.1", port, 2, timeout=0.5)
    assert all(a.startswith("!") for a in answers), answers


@pytest.mark.parametrize("protocol", ["tcp", "udp"])
async def test_a_refusing_backend_passes_the_connection_to_the_next(
    backends: Backends, mesh: UserspaceMesh, protocol: str
) -> None:
    port = free_port()
    dead = Backend("127.0.0.1", free_port())
    await mesh.apply({PublishedPort(port, protocol): [dead, *backends("a", "b")]})  # type: ignore[arg-type]
    answers = await ask_many(protocol, "127.0.0.1", port, 6)
    assert not [a for a in answers if a.startswith("!")]
    assert set(answers) == {"a", "b"}


async def test_open_connections_to_a_removed_backend_drain(backends: Backends, mesh: UserspaceMesh) -> None:
    port = free_port()
    published = PublishedPort(port)
    await mesh.apply({published: backends("a")})
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.0\r\n")  # half a request: the backend waits for the rest
    await writer.drain()
    await asyncio.sleep(0.05)  # let the proxy reach backend a

    await mesh.apply({published: backends("b")})
    assert await ask_many("tcp", "127.0.0.1", port, 2) == ["b", "b"]
    forwarder = mesh._forwarders[published]
    assert isinstance(forwarder, TcpForwarder) and forwarder.connections_to(backends("a")[0]) == 1
    writer.write(b"\r\n")
    answer = await asyncio.wait_for(reader.read(), 2)
    writer.close()
    assert answer.endswith(b"\r\n\r\na")


async def test_a_busy_port_is_reported_and_the_other_ports_still_serve(backends: Backends, mesh: UserspaceMesh) -> None:
    busy, free = free_port(), free_port()
    with socket.socket() as squatter:
        squatter.bind(("0.0.0.0", busy))
        squatter.listen()
        with pytest.raises(MeshError, match=str(busy)):
            await mesh.apply({PublishedPort(busy): backends("a"), PublishedPort(free): backends("b")})
    assert await ask_many("tcp", "127.0.0.1", free, 1) == ["b"]
    assert PublishedPort(busy) not in mesh.applied
    await mesh.apply({PublishedPort(busy): backends("a"), PublishedPort(free): backends("b")})
    assert await ask_many("tcp", "127.0.0.1", busy, 1) == ["a"]


async def test_host_mode_ports_are_recorded_but_not_bound(backends: Backends, mesh: UserspaceMesh) -> None:
    port = free_port()
    await mesh.apply({PublishedPort(port, mode="host"): backends("a")})
    assert mesh.applied == {PublishedPort(port, mode="host"): tuple(backends("a"))}
    with socket.socket() as workload:
        workload.bind(("0.0.0.0", port))  # free for the task to bind itself


async def test_tcp_streams_pass_intact_both_ways_with_half_close(mesh: UserspaceMesh) -> None:
    # The backend echoes until the client's EOF, then says how much it got and closes.
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        total = 0
        while chunk := await reader.read(65536):
            total += len(chunk)
            writer.write(chunk)
            await writer.drain()
        writer.write(b"|%d" % total)
        await writer.drain()
        writer.close()

    backend_port, port = free_port(), free_port()
    server = await asyncio.start_server(echo, "127.0.0.1", backend_port)
    try:
        await mesh.apply({PublishedPort(port): [Backend("127.0.0.1", backend_port)]})
        payload = bytes(range(256)) * 16384  # 4 MiB
        reader, writer = await asyncio.open_connection("127.0.0.1", port)

        async def send() -> None:
            writer.write(payload)
            await writer.drain()
            writer.write_eof()

        sender = asyncio.create_task(send())
        received = await asyncio.wait_for(reader.read(), 10)
        await sender
        writer.close()
        assert received == payload + b"|%d" % len(payload)
    finally:
        server.close()


async def test_udp_flows_beyond_the_limit_are_dropped_not_opened(backends: Backends) -> None:
    from shoal.network.mesh.udp_proxy import UdpForwarder

    port = free_port()
    forwarder = UdpForwarder(port, backends("a"), host="127.0.0.1", max_flows=2)
    await forwarder.start()
    try:
        answers = [await ask_many("udp", "127.0.0.1", port, 1, timeout=0.3) for _ in range(3)]
        assert answers[:2] == [["a"], ["a"]]
        assert answers[2][0].startswith("!")
        assert forwarder.flows_to(backends("a")[0]) == 2
    finally:
        await forwarder.stop()
