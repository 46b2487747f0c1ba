"""Joining and renewing over a real TLS cluster port on loopback, against a CA with an in-memory
authority (the store's part is tested with the manager)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shoal.api import errors
from shoal.ca import certs, csr, join, tokens
from shoal.ca.certs import ROLE_MANAGER, ROLE_WORKER, KeyPair
from shoal.rpc.client import RpcClient
from shoal.rpc.identity import PeerPolicy
from shoal.rpc.server import RpcServer
from shoal.rpc.tls import client_context, pinned_root_context, server_context


@dataclass
class MemoryAuthority:
    root_pair: KeyPair
    cluster: str = "cluster-1"
    tokens: dict[str, str] = field(default_factory=dict)
    nodes: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # id -> (role, availability, addr)
    tls_infos: dict[str, dict[str, str]] = field(default_factory=dict)

    def root(self) -> KeyPair:
        return self.root_pair

    def signer(self) -> certs.Signer:
        return certs.Signer(self.root_pair)

    def node_cert_lifetime(self) -> timedelta:
        return certs.NODE_CERT_LIFETIME

    async def record_tls_info(self, node_id: str, tls_info: dict[str, str]) -> None:
        self.tls_infos[node_id] = tls_info

    def cluster_id(self) -> str:
        return self.cluster

    def join_tokens(self) -> dict[str, str]:
        return self.tokens

    def node_role(self, node_id: str) -> str | None:
        found = self.nodes.get(node_id)
        return None if found is None else found[0]

    async def register_node(self, node_id: str, role: str, availability: str, remote_addr: str) -> None:
        self.nodes[node_id] = (role, availability, remote_addr)


@dataclass
class Manager:
    authority: MemoryAuthority
    address: str
    tmp: Path


def write_pair(directory: Path, cert: bytes, key: bytes, root: bytes) -> tuple[Path, Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = directory / "node.crt", directory / "node.key", directory / "ca.crt"
    for path, data in zip(paths, (cert, key, root), strict=True):
        path.write_bytes(data)
    return paths


@pytest.fixture
async def manager(tmp_path: Path) -> AsyncIterator[Manager]:
    now = datetime.now(UTC)
    root = certs.create_root_ca(now)
    authority = MemoryAuthority(root)
    authority.tokens = {"Worker": tokens.generate_join_token(root.cert_pem),
                        "Manager": tokens.generate_join_token(root.cert_pem)}
    own = certs.issue_node_certificate(root, "leader", ROLE_MANAGER, authority.cluster, now)
    server = RpcServer(PeerPolicy(authority.cluster))
    join.CAService(authority, lambda: datetime.now(UTC)).register(server)
    files = write_pair(tmp_path / "leader", own.cert_pem, own.key_pem, root.cert_pem)
    port = await server.start("127.0.0.1", 0, server_context(*files))
    try:
        yield Manager(authority, f"127.0.0.1:{port}", tmp_path)
    finally:
        await server.close()


@pytest.mark.parametrize(("token_name", "role"), [("Worker", ROLE_WORKER), ("Manager", ROLE_MANAGER)])
async def test_the_token_decides_the_role(manager: Manager, token_name: str, role: str) -> None:
    joined = await join.join(manager.address, manager.authority.tokens[token_name], "drain")
    assert joined.role == role
    assert csr.subject_node_id(joined.cert_pem) == joined.node_id
    assert csr.certificate_matches_key(joined.cert_pem, joined.key_pem)
    assert csr.verify_issued_by(joined.cert_pem, manager.authority.root_pair.cert_pem)
    assert manager.authority.nodes == {joined.node_id: (role, "drain", "127.0.0.1")}


async def test_a_wrong_or_rotated_token_is_refused_and_registers_nothing(manager: Manager) -> None:
    root_pem = manager.authority.root_pair.cert_pem
    with pytest.raises(errors.InvalidArgument) as raised:
        await join.join(manager.address, tokens.generate_join_token(root_pem))
    assert str(raised.value) == f"rpc error: code = InvalidArgument desc = {join.INVALID_TOKEN}"
    old = manager.authority.tokens["Worker"]
    manager.authority.tokens["Worker"] = tokens.generate_join_token(root_pem)  # rotation
    with pytest.raises(errors.InvalidArgument, match=join.INVALID_TOKEN):
        await join.join(manager.address, old)
    assert manager.authority.nodes == {}


async def test_a_malformed_token_is_refused_before_dialling(manager: Manager) -> None:
    with pytest.raises(errors.InvalidArgument, match="invalid join token"):
        await join.join(manager.address, "SWMTKN-1-nope")


async def test_a_token_of_another_cluster_does_not_trust_this_root(manager: Manager) -> None:
    other_root = certs.create_root_ca(datetime.now(UTC))
    foreign = tokens.generate_join_token(other_root.cert_pem)
    with pytest.raises(errors.InvalidArgument, match=r"remote CA does not match fingerprint\. Expected: "):
        await join.join(manager.address, foreign)
    assert manager.authority.nodes == {}


async def test_an_unreachable_manager_times_out_with_dockers_message(manager: Manager) -> None:
    with pytest.raises(errors.Unavailable) as raised:
        await join.join("127.0.0.1:9", manager.authority.tokens["Worker"], timeout=1.0, retry_every=0.2)
    assert str(raised.value) == join.JOIN_TIMEOUT_MESSAGE


async def test_renewal_keeps_the_node_id_and_follows_the_role_in_the_store(manager: Manager) -> None:
    joined = await join.join(manager.address, manager.authority.tokens["Worker"])
    files = write_pair(manager.tmp / "worker", joined.cert_pem, joined.key_pem, joined.root_pem)
    client = RpcClient(client_context(*files))
    try:
        _, availability, addr = manager.authority.nodes[joined.node_id]
        manager.authority.nodes[joined.node_id] = (ROLE_MANAGER, availability, addr)  # promoted
        renewed = await join.renew(client, manager.address)
    finally:
        await client.close()
    assert renewed.node_id == joined.node_id
    assert renewed.role == ROLE_MANAGER
    assert renewed.key_pem != joined.key_pem
    assert csr.certificate_matches_key(renewed.cert_pem, renewed.key_pem)


async def test_renewal_of_a_node_the_store_does_not_know_is_refused(manager: Manager) -> None:
    stray = certs.issue_node_certificate(manager.authority.root_pair, "ghost", ROLE_WORKER,
                                         manager.authority.cluster, datetime.now(UTC))
    files = write_pair(manager.tmp / "ghost", stray.cert_pem, stray.key_pem, manager.authority.root_pair.cert_pem)
    client = RpcClient(client_context(*files))
    try:
        with pytest.raises(errors.NotFound, match="node ghost not found"):
            await join.renew(client, manager.address)
    finally:
        await client.close()


async def test_a_bad_csr_is_refused_and_registers_nothing(manager: Manager) -> None:
    root = await join.fetch_pinned_root(manager.address, manager.authority.tokens["Worker"], deadline=float("inf"))
    pinned = RpcClient(pinned_root_context(root))
    try:
        with pytest.raises(errors.InvalidArgument, match="invalid certificate signing request"):
            await pinned.call(manager.address, join.ISSUE_PATH,
                              {"token": manager.authority.tokens["Worker"], "csr": b"not a csr"})
    finally:
        await pinned.close()
    assert manager.authority.nodes == {}
