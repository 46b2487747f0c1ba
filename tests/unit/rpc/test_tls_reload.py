"""A node's certificate changing under a running cluster port (renewal, role change, root rotation):
after rpc.tls.reload, new connections on both sides use the new files, and open sessions stay up."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shoal.api import errors
from shoal.ca import certs
from shoal.rpc import tls
from shoal.rpc.client import RpcClient
from shoal.rpc.identity import Access, PeerPolicy
from shoal.rpc.server import Caller, RpcServer
from shoal.rpc.stream import MessageStream

CLUSTER = "cluster1"
NOW = datetime.now(UTC)


@dataclass
class NodeFiles:
    cert: Path
    key: Path
    ca: Path

    def install(self, root: certs.KeyPair, node_id: str, role: str, signer: certs.KeyPair | None = None) -> None:
        """Write a certificate for ``node_id`` from ``signer`` (default: the root), trusting ``root``."""
        pair = certs.issue_node_certificate(signer or root, node_id, role, CLUSTER, NOW)
        self.cert.write_bytes(pair.cert_pem)
        self.key.write_bytes(pair.key_pem)
        self.ca.write_bytes(root.cert_pem)


def node_files(directory: Path) -> NodeFiles:
    directory.mkdir(parents=True)
    return NodeFiles(directory / "swarm-node.crt", directory / "swarm-node.key", directory / "swarm-root-ca.crt")


async def whoami(caller: Caller, body: Any) -> Any:
    assert caller.identity is not None
    return {"node": caller.identity.node_id, "role": caller.identity.role}


async def echo(caller: Caller, stream: MessageStream) -> None:
    while True:
        await stream.send(await stream.recv())


@dataclass
class Cluster:
    root: certs.KeyPair
    server: NodeFiles
    address: str
    tmp: Path


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    root = certs.create_root_ca(NOW)
    server_files = node_files(tmp_path / "manager")
    server_files.install(root, "manager1", certs.ROLE_MANAGER)
    server = RpcServer(PeerPolicy(CLUSTER))
    server.unary("/whoami", Access.NODE, whoami)
    server.stream("/echo", Access.NODE, echo)
    port = await server.start("127.0.0.1", 0, tls.server_context(server_files.cert, server_files.key,
                                                                  server_files.ca))
    try:
        yield Cluster(root, server_files, f"127.0.0.1:{port}", tmp_path)
    finally:
        await server.close()


def client_of(files: NodeFiles) -> RpcClient:
    return RpcClient(tls.client_context(files.cert, files.key, files.ca))


async def test_a_dialer_presents_its_renewed_certificate_and_keeps_its_open_stream(cluster: Cluster) -> None:
    worker = node_files(cluster.tmp / "worker")
    worker.install(cluster.root, "node2", certs.ROLE_WORKER)
    client = client_of(worker)
    try:
        assert (await client.call(cluster.address, "/whoami", None))["role"] == certs.ROLE_WORKER
        stream = await client.stream(cluster.address, "/echo")
        # Promoted: the CA signed a manager certificate for the same node.
        worker.install(cluster.root, "node2", certs.ROLE_MANAGER)
        assert tls.reload(worker.cert, None) >= 1
        assert (await client.call(cluster.address, "/whoami", None))["role"] == certs.ROLE_MANAGER
        await stream.send("still here")
        assert await stream.recv() == "still here"
        await stream.close()
    finally:
        await client.close()


async def test_a_listener_serves_its_new_certificate_and_trusts_only_its_new_root(cluster: Cluster) -> None:
    new_root = certs.create_root_ca(NOW)
    new_trust = node_files(cluster.tmp / "new")
    new_trust.install(new_root, "node3", certs.ROLE_WORKER)
    old_trust = node_files(cluster.tmp / "old")
    old_trust.install(cluster.root, "node4", certs.ROLE_WORKER)
    new_client, old_client = client_of(new_trust), client_of(old_trust)
    try:
        with pytest.raises(errors.Unavailable):  # the listener still has the old root's certificate
            await new_client.call(cluster.address, "/whoami", None)
        assert (await old_client.call(cluster.address, "/whoami", None))["node"] == "node4"
        # The rotation finished: the manager's certificate and trust are the new root's.
        cluster.server.install(new_root, "manager1", certs.ROLE_MANAGER)
        tls.reload(cluster.server.cert, None)
        assert (await new_client.call(cluster.address, "/whoami", None))["node"] == "node3"
        await old_client.close()
        old_client = client_of(old_trust)  # a fresh connection with the old root's certificate
        with pytest.raises(errors.Unavailable):
            await old_client.call(cluster.address, "/whoami", None)
    finally:
        await new_client.close()
        await old_client.close()
