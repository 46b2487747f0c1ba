"""Joining a swarm and renewing a node certificate over the cluster port, both ends.

A joining node (``join``):
1. fetches the root CA certificate without verifying the manager (it has nothing to verify with yet)
   and checks it against the digest in its join token, so a man in the middle cannot hand it another
   root;
2. makes a key and a CSR and sends them with the token over TLS verified against that root;
3. gets back its node id, its role (from the token it used) and the certificate, and checks the
   certificate is for its key and signed by the root.

The CA's side (``CAService``) signs at once on the leader: the root key is in the replicated store, and
signing in the request saves the long-poll round trips Swarm's CA needs. Renewal needs no token: the
caller's current certificate says who it is, and the store says which role it has now (so a promoted or
demoted node gets its new role by renewing). The certificate's life is the cluster's
CAConfig.NodeCertExpiry; during a root rotation the new root signs, its cross-signed certificate
following the leaf. A node that installed a new certificate or trust root reports its TLSInfo
(``TLS_INFO_PATH``), which is how the leader learns that a rotation has reached every node.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from shoal.api import errors
from shoal.base.ids import new_id
from shoal.ca import csr, tokens
from shoal.ca.certs import ROLE_MANAGER, ROLE_WORKER, KeyPair, Signer
from shoal.rpc.client import RpcClient
from shoal.rpc.identity import Access
from shoal.rpc.leader import Leadership, serve_on_leader
from shoal.rpc.server import Caller, RpcServer
from shoal.rpc.tls import pinned_root_context, unverified_client_context

ROOT_PATH = "/ca/v1/root"
ISSUE_PATH = "/ca/v1/issue"
RENEW_PATH = "/ca/v1/renew"
TLS_INFO_PATH = "/ca/v1/tls-info"
TLS_INFO_FIELDS = ("TrustRoot", "CertIssuerSubject", "CertIssuerPublicKey")
JOIN_TIMEOUT = 20.0  # dockerd's swarm connect timeout
JOIN_TIMEOUT_MESSAGE = (
    "Timeout was reached before node joined. The attempt to join the swarm will continue in the background. "
    'Use the "docker info" command to see the current swarm status of your node.'
)
INVALID_TOKEN = "A valid join token is necessary to join this cluster"
AVAILABILITIES = ("active", "pause", "drain")


class Authority(Protocol):
    """What the CA reads from and writes to the cluster's store (on the leader)."""

    def root(self) -> KeyPair:
        """The root every node trusts (what a joining node pins)."""
        ...

    def signer(self) -> Signer:
        """What signs node certificates now (the new root while a root rotation runs)."""
        ...

    def node_cert_lifetime(self) -> timedelta:
        """The cluster's CAConfig.NodeCertExpiry."""
        ...

    def cluster_id(self) -> str: ...

    def join_tokens(self) -> dict[str, str]:
        """{"Worker": token, "Manager": token}."""
        ...

    def node_role(self, node_id: str) -> str | None:
        """The node's current role (ROLE_MANAGER/ROLE_WORKER), or None when there is no such node."""
        ...

    async def register_node(self, node_id: str, role: str, availability: str, remote_addr: str) -> None:
        """Create the node object of a node that just joined."""
        ...

    async def record_tls_info(self, node_id: str, tls_info: dict[str, str]) -> None:
        """Keep the TLSInfo a node reported in its node object (and finish a root rotation that this
        report completes)."""
        ...


@dataclass
class CAService:
    authority: Authority
    now: Callable[[], datetime]

    def register(self, server: RpcServer, client: RpcClient | None = None,
                 leadership: Leadership | None = None) -> None:
        """Serve the CA's routes. With ``client`` and ``leadership`` (a manager in a Raft group), issuing
        and renewing run on the leader, which alone writes node objects; the root is served anywhere."""
        server.unary(ROOT_PATH, Access.ANYONE, self.root)
        if client is None or leadership is None:
            server.unary(ISSUE_PATH, Access.ANYONE, self.issue)
            server.unary(RENEW_PATH, Access.NODE, self.renew)
            server.unary(TLS_INFO_PATH, Access.NODE, self.report_tls_info)
        else:
            serve_on_leader(server, client, leadership, ISSUE_PATH, Access.ANYONE, self.issue)
            serve_on_leader(server, client, leadership, RENEW_PATH, Access.NODE, self.renew)
            serve_on_leader(server, client, leadership, TLS_INFO_PATH, Access.NODE, self.report_tls_info)

    async def root(self, caller: Caller, body: Any) -> Any:
        return {"root": self.authority.root().cert_pem}

    async def issue(self, caller: Caller, body: Any) -> Any:
        request = _fields(body, token=str, csr=bytes, availability=str)
        role = self._role_for_token(request["token"])
        availability = request["availability"] or "active"
        if availability not in AVAILABILITIES:
            raise errors.InvalidArgument(f"invalid availability {availability!r}")
        node_id = new_id()
        # Sign before registering, so that a bad CSR leaves no node object behind.
        cert = self._sign(request["csr"], node_id, role)
        await self.authority.register_node(node_id, role, availability, caller.remote)
        return {"node_id": node_id, "role": role, "cert": cert, "root": self.authority.root().cert_pem}

    async def renew(self, caller: Caller, body: Any) -> Any:
        request = _fields(body, csr=bytes)
        assert caller.identity is not None  # Access.NODE admits only callers with a certificate
        node_id = caller.identity.node_id
        role = self.authority.node_role(node_id)
        if role is None:
            raise errors.NotFound(f"node {node_id} not found", grpc=True)
        cert = self._sign(request["csr"], node_id, role)
        return {"role": role, "cert": cert, "root": self.authority.root().cert_pem}

    async def report_tls_info(self, caller: Caller, body: Any) -> Any:
        request = _fields(body, tls_info=dict)
        info = request["tls_info"]
        if set(info) != set(TLS_INFO_FIELDS) or not all(isinstance(v, str) for v in info.values()):
            raise errors.InvalidArgument(f"malformed request: tls_info must have string fields {TLS_INFO_FIELDS}")
        assert caller.identity is not None  # Access.NODE admits only callers with a certificate
        await self.authority.record_tls_info(caller.identity.node_id, dict(info))
        return {}

    def _sign(self, csr_pem: bytes, node_id: str, role: str) -> bytes:
        return csr.sign_csr(self.authority.signer(), csr_pem, node_id, role, self.authority.cluster_id(),
                            self.now(), self.authority.node_cert_lifetime())

    def _role_for_token(self, token: str) -> str:
        tokens.parse_join_token(token)  # a malformed token gets its own message
        for name, role in (("Manager", ROLE_MANAGER), ("Worker", ROLE_WORKER)):
            expected = self.authority.join_tokens().get(name, "")
            if expected and tokens.token_matches(token, expected):
                return role
        raise errors.InvalidArgument(INVALID_TOKEN, grpc=True)


def _fields(body: Any, **types: type) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise errors.InvalidArgument("malformed request: expected a map")
    out: dict[str, Any] = {}
    for name, kind in types.items():
        value = body.get(name, kind())
        if not isinstance(value, kind):
            raise errors.InvalidArgument(f"malformed request: {name} must be {kind.__name__}")
        out[name] = value
    return out


# -- the joining node's side


@dataclass(frozen=True)
class Credentials:
    node_id: str
    role: str
    cert_pem: bytes
    key_pem: bytes
    root_pem: bytes


async def _retrying(call: Callable[[], Awaitable[Any]], deadline: float, retry_every: float) -> Any:
    """Retry ``call`` while the manager cannot be reached, until ``deadline`` (monotonic)."""
    while True:
        try:
            return await call()
        except errors.Unavailable:
            if time.monotonic() + retry_every >= deadline:
                raise errors.Unavailable(JOIN_TIMEOUT_MESSAGE) from None
            await asyncio.sleep(retry_every)


async def fetch_pinned_root(address: str, token: str, deadline: float, retry_every: float = 1.0) -> bytes:
    """The manager's root CA certificate, checked against the token's digest."""
    parsed = tokens.parse_join_token(token)
    client = RpcClient(unverified_client_context())
    try:
        reply = await _retrying(lambda: client.call(address, ROOT_PATH, None, timeout=5.0), deadline, retry_every)
    finally:
        await client.close()
    root = reply.get("root") if isinstance(reply, dict) else None
    if not isinstance(root, bytes):
        raise errors.InvalidArgument(f"{address} sent no root CA certificate")
    if not tokens.token_matches(tokens.ca_digest(root), parsed.ca_digest):
        raise errors.InvalidArgument(f"remote CA does not match fingerprint. Expected: {parsed.ca_digest}")
    return root


def _check_issued(reply: Any, key_pem: bytes, root_pem: bytes) -> bytes:
    cert = reply.get("cert") if isinstance(reply, dict) else None
    if not isinstance(cert, bytes) or not csr.certificate_matches_key(cert, key_pem):
        raise errors.Unknown("the CA returned a certificate that does not match our key")
    if not csr.verify_chain(cert, root_pem):
        raise errors.Unknown("the CA returned a certificate that does not chain to the root it trusts")
    return cert


async def join(address: str, token: str, availability: str = "active", *, timeout: float = JOIN_TIMEOUT,
               retry_every: float = 1.0) -> Credentials:
    deadline = time.monotonic() + timeout
    root = await fetch_pinned_root(address, token, deadline, retry_every)
    key_pem, csr_pem = csr.new_key_and_csr()
    client = RpcClient(pinned_root_context(root))
    request = {"token": token, "csr": csr_pem, "availability": availability}
    try:
        reply = await _retrying(lambda: client.call(address, ISSUE_PATH, request, timeout=10.0), deadline,
                                retry_every)
    finally:
        await client.close()
    cert = _check_issued(reply, key_pem, root)
    return Credentials(str(reply["node_id"]), str(reply["role"]), cert, key_pem, root)


async def renew(client: RpcClient, address: str) -> Credentials:
    """A new certificate (and key) for this node, over its current mutual-TLS identity."""
    key_pem, csr_pem = csr.new_key_and_csr()
    reply = await client.call(address, RENEW_PATH, {"csr": csr_pem})
    root = reply.get("root") if isinstance(reply, dict) else None
    if not isinstance(root, bytes):
        raise errors.Unknown(f"{address} sent no root CA certificate")
    cert = _check_issued(reply, key_pem, root)
    return Credentials(csr.subject_node_id(cert), str(reply["role"]), cert, key_pem, root)


async def fetch_root(client: RpcClient, address: str) -> bytes:
    """The root the cluster trusts now, over this node's mutual TLS (so from a manager its current
    trust vouches for), after a root rotation finished."""
    reply = await client.call(address, ROOT_PATH, None)
    root = reply.get("root") if isinstance(reply, dict) else None
    if not isinstance(root, bytes) or not csr.verify_chain(root, root):
        raise errors.Unknown(f"{address} sent no valid root CA certificate")
    return root


async def report_tls_info(client: RpcClient, address: str, tls_info: dict[str, str]) -> None:
    await client.call(address, TLS_INFO_PATH, {"tls_info": tls_info})
