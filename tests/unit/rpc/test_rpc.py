"""The cluster port over real TLS on loopback: who may call what, errors that keep their category,
streams, and a peer of another protocol version refused with a clear message."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import msgpack
import pytest

from shoal.api import errors
from shoal.rpc import codec
from shoal.rpc.client import RpcClient
from shoal.rpc.identity import MANAGER_ROLE, WORKER_ROLE, Access, PeerPolicy
from shoal.rpc.server import Caller, RpcServer
from shoal.rpc.stream import MessageStream, StreamClosed
from shoal.rpc.tls import client_context, server_context
from shoal.testing.pki import TestCA


@dataclass
class Port:
    server: RpcServer
    address: str
    ca: TestCA
    tmp: Path
    removed: set[str]

    def client(self, node_id: str | None, role: str = MANAGER_ROLE, *, ca: TestCA | None = None,
               cluster_id: str | None = None) -> RpcClient:
        """A client presenting a certificate for node_id (None: no certificate) from ``ca``."""
        issuer = ca or self.ca
        if node_id is None:
            ca_file = self.tmp / "ca-only.crt"
            ca_file.write_bytes(self.ca.ca_pem)
            return RpcClient(client_context(None, None, ca_file))
        files = issuer.issue(node_id, role, cluster_id=cluster_id).write(self.tmp / f"{node_id}-{role}")
        # Trust the server's CA even when our own certificate comes from another one.
        files.ca.write_bytes(self.ca.ca_pem)
        return RpcClient(client_context(files.cert, files.key, files.ca))


async def whoami(caller: Caller, body: Any) -> Any:
    identity = caller.identity
    return {"node": None if identity is None else identity.node_id, "echo": body}


async def fail(caller: Caller, body: Any) -> Any:
    raise errors.NotFound(f"service {body} not found", grpc=True)


async def crash(caller: Caller, body: Any) -> Any:
    raise KeyError("oops")


async def echo_stream(caller: Caller, stream: MessageStream) -> None:
    while True:
        message = await stream.recv()
        if message == "stop":
            raise errors.FailedPrecondition("stopped on request")
        await stream.send({"echo": message})


@pytest.fixture
async def port(tmp_path: Path) -> AsyncIterator[Port]:
    ca = TestCA("cluster-a")
    removed: set[str] = set()
    server = RpcServer(PeerPolicy("cluster-a", is_removed=removed.__contains__))
    server.unary("/join", Access.ANYONE, whoami)
    server.unary("/node", Access.NODE, whoami)
    server.unary("/manager", Access.MANAGER, whoami)
    server.unary("/fail", Access.NODE, fail)
    server.unary("/crash", Access.NODE, crash)
    server.stream("/stream", Access.NODE, echo_stream)
    files = ca.issue("server", MANAGER_ROLE).write(tmp_path / "server")
    bound = await server.start("127.0.0.1", 0, server_context(files.cert, files.key, files.ca))
    try:
        yield Port(server, f"127.0.0.1:{bound}", ca, tmp_path, removed)
    finally:
        await server.close()


async def test_roles_decide_which_routes_a_caller_reaches(port: Port) -> None:
    manager, worker, anonymous = port.client("m1"), port.client("w1", WORKER_ROLE), port.client(None)
    try:
        assert await manager.call(port.address, "/manager", 1) == {"node": "m1", "echo": 1}
        assert await worker.call(port.address, "/node", [1, 2]) == {"node": "w1", "echo": [1, 2]}
        assert await anonymous.call(port.address, "/join", "token") == {"node": None, "echo": "token"}
        with pytest.raises(errors.Forbidden, match="role 'swarm-worker' may not call manager routes"):
            await worker.call(port.address, "/manager", 1)
        with pytest.raises(errors.Forbidden, match="no client certificate"):
            await anonymous.call(port.address, "/node", 1)
        assert port.server.refused == 2
    finally:
        for client in (manager, worker, anonymous):
            await client.close()


async def test_a_certificate_of_another_cluster_is_refused_everywhere_but_join(port: Port) -> None:
    # Signed by another CA: the handshake itself fails.
    stranger = port.client("x1", ca=TestCA("cluster-b"))
    # Signed by our CA but naming another cluster: refused by the policy.
    misnamed = port.client("x2", cluster_id="cluster-b")
    try:
        with pytest.raises(errors.Unavailable, match="cannot reach"):
            await stranger.call(port.address, "/node", 1)
        with pytest.raises(errors.Forbidden, match="certificate of cluster 'cluster-b'"):
            await misnamed.call(port.address, "/node", 1)
        with pytest.raises(errors.Forbidden):
            await misnamed.stream(port.address, "/stream")
    finally:
        await stranger.close()
        await misnamed.close()


async def test_a_removed_node_is_refused_from_then_on(port: Port) -> None:
    client = port.client("w9", WORKER_ROLE)
    try:
        assert (await client.call(port.address, "/node", 0))["node"] == "w9"
        port.removed.add("w9")
        with pytest.raises(errors.Forbidden, match="node w9 was removed"):
            await client.call(port.address, "/node", 0)
    finally:
        await client.close()


async def test_errors_keep_their_category_and_text(port: Port) -> None:
    client = port.client("m1")
    try:
        with pytest.raises(errors.NotFound) as raised:
            await client.call(port.address, "/fail", "web")
        assert str(raised.value) == "rpc error: code = NotFound desc = service web not found"
        with pytest.raises(errors.Unknown, match="/crash: 'oops'"):
            await client.call(port.address, "/crash", None)
        with pytest.raises(errors.Unavailable, match="does not serve /nowhere"):
            await client.call(port.address, "/nowhere", None)
    finally:
        await client.close()


async def test_an_unreachable_peer_is_unavailable_with_its_address(port: Port) -> None:
    client = port.client("m1")
    try:
        with pytest.raises(errors.Unavailable, match=r"cannot reach 127\.0\.0\.1:9"):
            await client.call("127.0.0.1:9", "/node", None, timeout=2)
    finally:
        await client.close()


async def test_streams_carry_messages_both_ways_and_end_with_the_handlers_error(port: Port) -> None:
    client = port.client("w1", WORKER_ROLE)
    try:
        stream = await client.stream(port.address, "/stream")
        for n in range(3):
            await stream.send(n)
            assert await stream.recv() == {"echo": n}
        await stream.send("stop")
        with pytest.raises(errors.FailedPrecondition, match="stopped on request"):
            await stream.recv()
        with pytest.raises(StreamClosed):
            await stream.recv()
    finally:
        await client.close()


async def test_a_peer_of_another_protocol_version_is_refused_clearly(port: Port) -> None:
    files = port.ca.issue("m2", MANAGER_ROLE).write(port.tmp / "raw")
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(
        ssl=client_context(files.cert, files.key, files.ca)))
    try:
        newer = msgpack.packb({"v": codec.VERSION + 1, "ok": 1})
        async with session.post(f"https://{port.address}/node", data=newer) as response:
            body = await response.read()
        with pytest.raises(errors.InvalidArgument, match=f"peer speaks cluster protocol version {codec.VERSION + 1}"):
            codec.decode_response(body)
    finally:
        await session.close()


def test_codec_refuses_what_is_not_an_envelope() -> None:
    with pytest.raises(codec.ProtocolError, match="malformed"):
        codec.decode_request(b"\xc1")
    with pytest.raises(codec.ProtocolError, match="no protocol version"):
        codec.decode_request(msgpack.packb({"ok": 1}))
    assert codec.decode_request(codec.encode_request({"a": [1, b"x"]})) == {"a": [1, b"x"]}
