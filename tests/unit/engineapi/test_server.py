"""Listening and shutting down: unix socket mode, stale sockets, TCP (plain and TLS, with and without
client certificates), streams ended on close, and the backend's stream closed when a client leaves."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import stat
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from shoal.api import errors
from shoal.engineapi.backend import EventQuery, Json
from shoal.engineapi.server import SOCKET_MODE, serve, tls_server_context
from shoal.testing.fake_backend import FakeBackend
from shoal.testing.pki import CertFiles, TestCA


class WatchedEvents(FakeBackend):
    """Counts open event subscriptions, so a test can wait for the server to let go of one."""

    def __init__(self) -> None:
        super().__init__()
        self.subscribers = 0
        self.subscribers_changed = asyncio.Condition()

    async def _set_subscribers(self, delta: int) -> None:
        async with self.subscribers_changed:
            self.subscribers += delta
            self.subscribers_changed.notify_all()

    async def events(self, query: EventQuery) -> AsyncIterator[Json]:
        await self._set_subscribers(1)
        try:
            async for event in super().events(query):
                yield event
        finally:
            await self._set_subscribers(-1)

    async def wait_for_subscribers(self, count: int) -> None:
        async with self.subscribers_changed:
            await self.subscribers_changed.wait_for(lambda: self.subscribers == count)


@pytest.fixture
def socket_dir() -> str:
    return tempfile.mkdtemp(prefix="shoal-srv-")


async def _ping(session: aiohttp.ClientSession, url: str) -> bytes:
    async with session.get(url) as response:
        return await response.read()


async def test_unix_socket_is_group_accessible_and_removed_on_close(socket_dir: str) -> None:
    path = os.path.join(socket_dir, "d.sock")
    runner = await serve(FakeBackend(), [f"unix://{path}"])
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == SOCKET_MODE
        async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=path)) as session:
            assert await _ping(session, "http://docker/_ping") == b"OK"
    finally:
        await runner.close()
    assert not os.path.exists(path)


async def test_stale_socket_is_replaced_but_a_regular_file_is_not(socket_dir: str) -> None:
    path = os.path.join(socket_dir, "d.sock")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)
    stale.close()  # the file stays, nobody listens: a daemon that died
    runner = await serve(FakeBackend(), [f"unix://{path}"])
    await runner.close()
    with open(path, "w") as regular:
        regular.write("not a socket")
    with pytest.raises(FileExistsError):
        await serve(FakeBackend(), [f"unix://{path}"])


async def test_a_live_socket_is_not_taken_over(socket_dir: str) -> None:
    path = os.path.join(socket_dir, "d.sock")
    first = await serve(FakeBackend(), [f"unix://{path}"])
    try:
        with pytest.raises(OSError, match="another daemon"):
            await serve(FakeBackend(), [f"unix://{path}"])
    finally:
        await first.close()


async def test_tcp_and_unix_together(socket_dir: str) -> None:
    path = os.path.join(socket_dir, "d.sock")
    runner = await serve(FakeBackend(), [f"unix://{path}", "tcp://127.0.0.1:0"])
    try:
        host, port = runner.tcp_addresses[0]
        async with aiohttp.ClientSession() as session:
            assert await _ping(session, f"http://{host}:{port}/v1.41/_ping") == b"OK"
    finally:
        await runner.close()


async def test_bad_hosts_are_refused() -> None:
    with pytest.raises(ValueError):
        await serve(FakeBackend(), [])
    with pytest.raises(ValueError):
        await serve(FakeBackend(), ["fd://"])


async def test_close_ends_an_open_event_stream(socket_dir: str) -> None:
    path = os.path.join(socket_dir, "d.sock")
    backend = WatchedEvents()
    runner = await serve(backend, [f"unix://{path}"])
    async with (
        aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=path)) as session,
        session.get("http://docker/v1.41/events") as response,
    ):
        assert response.status == 200
        await backend.wait_for_subscribers(1)
        await runner.close()
        await backend.wait_for_subscribers(0)
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.content.read()


async def test_client_leaving_closes_the_backend_stream(socket_dir: str) -> None:
    path = os.path.join(socket_dir, "d.sock")
    backend = WatchedEvents()
    runner = await serve(backend, [f"unix://{path}"])
    try:
        async with (
            aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=path)) as session,
            session.get("http://docker/v1.41/events") as response,
        ):
            assert response.status == 200
            await backend.wait_for_subscribers(1)
        await backend.wait_for_subscribers(0)
    finally:
        await runner.close()


async def test_swarm_header_on_ping_only_when_asked(socket_dir: str) -> None:
    path = os.path.join(socket_dir, "d.sock")
    backend = FakeBackend()
    runner = await serve(backend, [f"unix://{path}"], advertise_swarm_status=True)
    try:
        async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=path)) as session:
            async with session.head("http://docker/_ping") as response:
                assert response.headers["Swarm"] == "inactive"
            await backend.swarm_init({})
            async with session.get("http://docker/v1.41/_ping") as response:
                assert response.headers["Swarm"] == "active/manager"
            async with session.get("http://docker/v1.41/version") as response:
                assert "Swarm" not in response.headers
    finally:
        await runner.close()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CertFiles]:
    """A server and a client certificate from one CA, and a client certificate from another."""
    root = tmp_path_factory.mktemp("pki")
    ours, theirs = TestCA("ours"), TestCA("theirs")
    return {
        "server": ours.issue("server").write(root / "server"),
        "client": ours.issue("client").write(root / "client"),
        "stranger": theirs.issue("client").write(root / "stranger"),
    }


def _client_ssl(pki: dict[str, CertFiles], identity: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki["server"].ca))
    if identity is not None:
        context.load_cert_chain(str(pki[identity].cert), str(pki[identity].key))
    return context


async def _tls_ping(port: int, context: ssl.SSLContext) -> bytes:
    async with aiohttp.ClientSession() as session, session.get(f"https://127.0.0.1:{port}/_ping", ssl=context) as r:
        return await r.read()


async def test_tls_with_client_verification(pki: dict[str, CertFiles]) -> None:
    server = pki["server"]
    context = tls_server_context(str(server.cert), str(server.key), str(server.ca))
    runner = await serve(FakeBackend(), ["tcp://127.0.0.1:0"], tcp_ssl_context=context)
    try:
        port = runner.tcp_addresses[0][1]
        assert await _tls_ping(port, _client_ssl(pki, "client")) == b"OK"
        for identity in (None, "stranger"):  # no certificate, and one from another CA
            with pytest.raises(aiohttp.ClientError):
                await _tls_ping(port, _client_ssl(pki, identity))
        async with aiohttp.ClientSession() as session:  # plain HTTP to the TLS port gets no answer
            with pytest.raises(aiohttp.ClientError):
                await _ping(session, f"http://127.0.0.1:{port}/_ping")
    finally:
        await runner.close()


async def test_tls_without_client_verification(pki: dict[str, CertFiles]) -> None:
    server = pki["server"]
    runner = await serve(FakeBackend(), ["tcp://127.0.0.1:0"],
                         tcp_ssl_context=tls_server_context(str(server.cert), str(server.key), None))
    try:
        assert await _tls_ping(runner.tcp_addresses[0][1], _client_ssl(pki, None)) == b"OK"
    finally:
        await runner.close()


def test_unreadable_tls_files_are_clear_errors(pki: dict[str, CertFiles], tmp_path: Path) -> None:
    server = pki["server"]
    with pytest.raises(errors.InvalidArgument, match=r"could not load X509 key pair.*No such file"):
        tls_server_context(str(tmp_path / "none.crt"), str(server.key), None)
    with pytest.raises(errors.InvalidArgument, match="could not load X509 key pair"):
        tls_server_context(str(server.cert), str(pki["client"].key), None)  # a key that is not the cert's
    with pytest.raises(errors.InvalidArgument, match=r"could not read CA certificate.*No such file"):
        tls_server_context(str(server.cert), str(server.key), str(tmp_path / "none.pem"))
