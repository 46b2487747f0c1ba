"""Who is on the other end of a cluster-port connection, and what they may call.

The identity comes from a certificate the TLS handshake has already verified against the cluster CA
(Python's ssl returns a parsed ``getpeercert()`` only for a verified chain), so reading the subject is
enough: role in OU, node id in CN, cluster id in O, as Swarm puts them.
"""

from __future__ import annotations

import enum
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MANAGER_ROLE = "swarm-manager"
WORKER_ROLE = "swarm-worker"


@dataclass(frozen=True)
class PeerIdentity:
    node_id: str
    role: str
    cluster_id: str

    @property
    def is_manager(self) -> bool:
        return self.role == MANAGER_ROLE


class Access(enum.Enum):
    """Who may call a route."""

    ANYONE = "anyone"  # a joining node has no certificate yet: only the CA's join route is open to it
    NODE = "node"  # any node of this cluster, worker or manager
    MANAGER = "manager"  # managers of this cluster only


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


@dataclass
class PeerPolicy:
    """The listener's rules: which cluster's certificates count, and which node ids were removed (a
    removed node's certificate stays valid cryptographically until it expires, so it is refused by id,
    as Swarm keeps the removed nodes' ids for that)."""

    cluster_id: str | None
    is_removed: Callable[[str], bool] = lambda _node_id: False

    def refusal(self, identity: PeerIdentity | None, access: Access) -> str | None:
        """Why ``identity`` may not call a route open to ``access``, or None if it may."""
        if access is Access.ANYONE:
            return None
        if identity is None:
            return "no client certificate"
        if self.cluster_id is not None and identity.cluster_id != self.cluster_id:
            return f"certificate of cluster {identity.cluster_id!r}, not {self.cluster_id!r}"
        if self.is_removed(identity.node_id):
            return f"node {identity.node_id} was removed from the swarm"
        if identity.role not in (MANAGER_ROLE, WORKER_ROLE):
            return f"unknown role {identity.role!r}"
        if access is Access.MANAGER and identity.role != MANAGER_ROLE:
            return f"role {identity.role!r} may not call manager routes"
        return None
