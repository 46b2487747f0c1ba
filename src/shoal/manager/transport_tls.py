"""TLS for the manager-to-manager Raft transport: ssl contexts and the peer's identity.

The identity comes from a certificate the TLS handshake has already verified against the cluster CA
(Python's ssl only returns a parsed ``getpeercert()`` for a verified chain), so reading the subject
is enough: role in OU, node id in CN, cluster id in O, as swarm puts them.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MANAGER_ROLE = "swarm-manager"


@dataclass(frozen=True)
class PeerIdentity:
    node_id: str
    role: str
    cluster_id: str


def server_context(cert: Path, key: Path, ca: Path) -> ssl.SSLContext:
    """Listener context: TLS 1.2+, asks for a client certificate but lets a peer in without one
    (the CA's join route needs that); every Raft route checks the identity itself.
    A client certificate that is presented but does not chain to ``ca`` fails the handshake."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(cafile=ca)
    ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


def client_context(cert: Path, key: Path, ca: Path) -> ssl.SSLContext:
    """Dialer context: presents our certificate and requires the peer's to chain to ``ca``.
    Peers are dialled by address, and a manager's certificate names its node id rather than its
    address, so the hostname is not checked; the role is checked after the handshake instead."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(cafile=ca)
    return ctx


def _subject_field(cert: dict[str, Any], field: str) -> str:
    for rdn in cert.get("subject", ()):
        for name, value in rdn:
            if name == field:
                return str(value)
    return ""


def peer_identity(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> PeerIdentity | None:
    """The verified identity of the other end, or None when it presented no certificate."""
    if ssl_object is None:
        return None
    cert = ssl_object.getpeercert()
    if not cert:
        return None
    return PeerIdentity(
        node_id=_subject_field(cert, "commonName"),
        role=_subject_field(cert, "organizationalUnitName"),
        cluster_id=_subject_field(cert, "organizationName"),
    )


def authorize_manager(identity: PeerIdentity | None, cluster_id: str | None) -> str | None:
    """Why ``identity`` may not speak Raft with us, or None if it may."""
    if identity is None:
        return "no client certificate"
    if identity.role != MANAGER_ROLE:
        return f"role {identity.role!r} is not {MANAGER_ROLE!r}"
    if cluster_id is not None and identity.cluster_id != cluster_id:
        return f"certificate of cluster {identity.cluster_id!r}, not {cluster_id!r}"
    return None
