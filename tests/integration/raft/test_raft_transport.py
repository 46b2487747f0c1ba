"""The Raft transport on loopback with real TLS: who may connect, and what arrives."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from shoal.manager.transport import DEFAULT_PATH, RaftTransport, serve_cluster_port
from shoal.manager.transport_peer import PeerSettings
from shoal.raft.types import (
    ConfState,
    Entry,
    Message,
    MessageType,
    Snapshot,
    SnapshotMetadata,
)
from shoal.rpc.identity import PeerIdentity
from shoal.rpc.tls import client_context, server_context
from shoal.testing.pki import MANAGER_ROLE, WORKER_ROLE, CertFiles, TestCA


@dataclass
class RecordingSink:
    received: asyncio.Queue[Message] = field(default_factory=asyncio.Queue)
    unreachable: list[int] = field(default_factory=list)
    snapshot_reports: asyncio.Queue[tuple[int, bool]] = field(default_factory=asyncio.Queue)

    def receive(self, message: Message) -> None:
        self.received.put_nowait(message)

    def report_unreachable(self, node_id: int) -> None:
        self.unreachable.append(node_id)

    def report_snapshot(self, node_id: int, ok: bool) -> None:
        self.snapshot_reports.put_nowait((node_id, ok))


@dataclass
class Member:
    node_id: int
    transport: RaftTransport
    sink: RecordingSink
    runner: web.AppRunner
    port: int

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


SenderCheck = Callable[[PeerIdentity | None, int], bool]


@pytest.fixture(scope="module")
def ca() -> TestCA:
    return TestCA("cluster-a")


def _files(ca: TestCA, tmp_path: Path, name: str, role: str = MANAGER_ROLE, cluster: str | None = None) -> CertFiles:
    return ca.issue(name, role, cluster_id=cluster).write(tmp_path / name)


@pytest.fixture
async def members(ca: TestCA, tmp_path: Path) -> AsyncIterator[Callable[[int], object]]:
    started: list[Member] = []

    async def start(node_id: int, chunk: int = 1 << 20, sender_check: SenderCheck | None = None) -> Member:
        files = _files(ca, tmp_path, f"node{node_id}")
        sink = RecordingSink()
        transport = RaftTransport(
            node_id,
            sink,
            client_ssl=client_context(files.cert, files.key, files.ca),
            cluster_id="cluster-a",
            settings=PeerSettings(cluster_id="cluster-a", snapshot_chunk_bytes=chunk),
            sender_check=sender_check,
        )
        app = web.Application()
        transport.attach(app)
        await transport.start()
        runner, port = await serve_cluster_port(app, "127.0.0.1", 0, server_context(files.cert, files.key, files.ca))
        member = Member(node_id, transport, sink, runner, port)
        started.append(member)
        return member

    yield start
    for member in started:
        await member.transport.stop()
        await member.runner.cleanup()


async def _dial(port: int, ctx: ssl.SSLContext) -> int:
    """Try to open the Raft WebSocket with ``ctx``; the HTTP status of the answer."""
    async with aiohttp.ClientSession() as session:
        try:
            async with session.ws_connect(f"wss://127.0.0.1:{port}{DEFAULT_PATH}", ssl=ctx) as ws:
                await ws.close()
                return 101
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status


def _bare_client_context(ca_file: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(cafile=ca_file)
    return ctx


def _append(frm: int, to: int, index: int, data: bytes = b"x") -> Message:
    return Message(
        type=MessageType.APP,
        to=to,
        frm=frm,
        term=3,
        log_term=3,
        index=index - 1,
        entries=(Entry(term=3, index=index, data=data),),
        commit=index - 1,
    )


async def test_manager_certificate_is_accepted(members, ca: TestCA, tmp_path: Path) -> None:
    server = await members(1)
    files = _files(ca, tmp_path, "node9")
    assert await _dial(server.port, client_context(files.cert, files.key, files.ca)) == 101


async def test_worker_certificate_is_refused(members, ca: TestCA, tmp_path: Path) -> None:
    server = await members(1)
    files = _files(ca, tmp_path, "worker1", WORKER_ROLE)
    assert await _dial(server.port, client_context(files.cert, files.key, files.ca)) == 403
    assert server.transport.refused == 1
    assert server.sink.received.empty()


async def test_no_client_certificate_is_refused(members, ca: TestCA, tmp_path: Path) -> None:
    server = await members(1)
    ca_file = ca.write(tmp_path / "ca")
    assert await _dial(server.port, _bare_client_context(ca_file)) == 403


async def test_certificate_of_another_cluster_is_refused(members, ca: TestCA, tmp_path: Path) -> None:
    server = await members(1)
    files = _files(ca, tmp_path, "node8", cluster="cluster-b")
    assert await _dial(server.port, client_context(files.cert, files.key, files.ca)) == 403


async def test_certificate_from_a_foreign_ca_fails_the_handshake(members, tmp_path: Path) -> None:
    server = await members(1)
    stranger = TestCA("cluster-a").issue("node7").write(tmp_path / "stranger")
    # Our CA bundle would refuse the server anyway; trust it so that only the server's check is tested.
    ctx = client_context(stranger.cert, stranger.key, stranger.ca)
    ctx.verify_mode = ssl.CERT_NONE
    with pytest.raises(aiohttp.ClientError):
        await _dial(server.port, ctx)


async def test_messages_round_trip_in_order(members) -> None:
    one = await members(1)
    two = await members(2)
    one.transport.add_peer(2, two.address)
    two.transport.add_peer(1, one.address)
    sent = [_append(1, 2, i, data=bytes([i % 256]) * i) for i in range(1, 201)]
    one.transport.send(sent)
    got = [await asyncio.wait_for(two.sink.received.get(), 10) for _ in sent]
    assert got == sent
    reply = Message(type=MessageType.APP_RESP, to=1, frm=2, term=3, index=200)
    two.transport.send([reply])
    assert await asyncio.wait_for(one.sink.received.get(), 10) == reply


async def test_large_snapshot_is_chunked_and_acknowledged(members) -> None:
    one = await members(1, chunk=64 * 1024)
    two = await members(2)
    one.transport.add_peer(2, two.address)
    data = bytes(range(256)) * (5 * 1024 + 7)  # ~1.3 MB: about 21 chunks of 64 KiB
    snap = Snapshot(SnapshotMetadata(index=50, term=4, conf_state=ConfState(voters=(1, 2, 3))), data)
    message = Message(type=MessageType.SNAP, to=2, frm=1, term=4, snapshot=snap)
    one.transport.send([message])
    assert await asyncio.wait_for(two.sink.received.get(), 10) == message
    assert await asyncio.wait_for(one.sink.snapshot_reports.get(), 10) == (2, True)


async def test_unknown_or_down_peer_is_reported_unreachable(members) -> None:
    one = await members(1)
    one.transport.send([_append(1, 5, 1)])
    assert one.sink.unreachable == [5]
    # A peer whose port refuses connections: the queued message is dropped and reported.
    one.transport.add_peer(3, "127.0.0.1:1")
    one.transport.send([_append(1, 3, 1)])
    for _ in range(200):
        if 3 in one.sink.unreachable:
            break
        await asyncio.sleep(0.01)
    assert 3 in one.sink.unreachable


async def test_stream_reconnects_after_peer_restart(members, ca: TestCA, tmp_path: Path) -> None:
    one = await members(1)
    two = await members(2)
    one.transport.add_peer(2, two.address)
    one.transport.send([_append(1, 2, 1)])
    await asyncio.wait_for(two.sink.received.get(), 10)
    # Restart the listener of member 2 on the same port; member 1 must redial on its own.
    await two.runner.cleanup()
    app = web.Application()
    two.transport.attach(app)
    files = CertFiles(tmp_path / "node2" / "node.crt", tmp_path / "node2" / "node.key", tmp_path / "node2" / "ca.crt")
    two.runner, _ = await serve_cluster_port(
        app, "127.0.0.1", two.port, server_context(files.cert, files.key, files.ca)
    )
    message = _append(1, 2, 2)
    for _ in range(500):  # resend, as Raft would, until the stream is back
        one.transport.send([message])
        try:
            got = await asyncio.wait_for(two.sink.received.get(), 0.05)
        except TimeoutError:
            continue
        assert got == message
        return
    pytest.fail("stream never came back")


async def test_sender_check_drops_messages_claiming_another_member(members) -> None:
    # Raft id n must come from the certificate of node "node<n>".
    one = await members(1, sender_check=lambda identity, frm: identity is not None and identity.node_id == f"node{frm}")
    two = await members(2)
    two.transport.add_peer(1, one.address)
    forged = _append(3, 1, 1)  # sent by node2's certificate but claiming to be from 3
    honest = _append(2, 1, 1)
    two.transport.send([forged, honest])
    assert await asyncio.wait_for(one.sink.received.get(), 10) == honest
    assert one.sink.received.empty()


async def test_full_queue_drops_and_reports_without_blocking(ca: TestCA, tmp_path: Path) -> None:
    # A peer that accepts TCP but never answers TLS: the stream stays "connecting" and the queue fills.
    silent = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    files = _files(ca, tmp_path, "node1")
    sink = RecordingSink()
    transport = RaftTransport(
        1,
        sink,
        client_ssl=client_context(files.cert, files.key, files.ca),
        settings=PeerSettings(max_queue=3, connect_timeout=30.0),
    )
    await transport.start()
    try:
        transport.add_peer(2, f"127.0.0.1:{port}")
        transport.send([_append(1, 2, i) for i in range(1, 6)])  # returns at once
        assert sink.unreachable == [2, 2]  # two messages over the bound of three
        assert not transport.is_active(2)
    finally:
        await transport.stop()
        silent.close()
