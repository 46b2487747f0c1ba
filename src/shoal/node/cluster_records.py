"""What the manager's cluster-port services read from and write to the replicated store: the CA's
root, join tokens and new node objects; which Raft member each manager node is; which nodes were
removed (their certificates are refused from then on); and each manager's status as Raft sees it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from shoal.allocator.nodesubnets import with_task_subnet
from shoal.api import errors
from shoal.api.objects import CLUSTER, NODES, Obj, clone, dig
from shoal.ca.certs import ROLE_MANAGER, ROLE_WORKER, KeyPair, Signer
from shoal.controlapi.cluster import ca_state, node_cert_lifetime, record_node_tls_info
from shoal.controlapi.nodes import REMOVED_NODES
from shoal.store.memory import MemoryStore, ReadView, Tx

RAFT_ID = "_RaftID"  # the node's Raft member id, kept with its node object (never shown by the API)


def _cluster(view: ReadView) -> Obj:
    clusters = view.objects(CLUSTER)
    if not clusters:
        raise errors.Unavailable("the swarm's cluster object is not replicated here yet")
    return clusters[0]


def public_node(node: Obj) -> Obj:
    """The node as the API shows it: without shoal's private fields."""
    return {key: value for key, value in node.items() if not key.startswith("_")}


class StoreAuthority:
    """The CA's view of the store (see shoal.ca.join.Authority)."""

    def __init__(self, store: MemoryStore, cluster_id: str) -> None:
        self._store = store
        self._cluster_id = cluster_id

    def root(self) -> KeyPair:
        return ca_state(_cluster(self._store.view())).root

    def signer(self) -> Signer:
        """What signs certificates now: the new root while a rotation runs (with its cross-signed
        certificate after the leaf), else the root."""
        return ca_state(_cluster(self._store.view())).signer()

    def node_cert_lifetime(self) -> timedelta:
        return node_cert_lifetime(_cluster(self._store.view()))

    async def record_tls_info(self, node_id: str, tls_info: dict[str, str]) -> None:
        await self._store.update(lambda tx: record_node_tls_info(tx, node_id, tls_info))

    def cluster_id(self) -> str:
        return self._cluster_id

    def join_tokens(self) -> dict[str, str]:
        return dict(_cluster(self._store.view()).get("JoinTokens") or {})

    def node_role(self, node_id: str) -> str | None:
        node = self._store.view().get(NODES, node_id)
        if node is None:
            return None
        return ROLE_MANAGER if dig(node, "Spec", "Role") == "manager" else ROLE_WORKER

    async def register_node(self, node_id: str, role: str, availability: str, remote_addr: str) -> None:
        def create(tx: Tx) -> None:
            tls_info = _cluster(tx).get("TLSInfo") or {}
            tx.create(NODES, with_task_subnet(tx, {
                "ID": node_id,
                "Spec": {"Labels": {}, "Role": "manager" if role == ROLE_MANAGER else "worker",
                         "Availability": availability},
                "Description": {"Hostname": "", "TLSInfo": tls_info},
                "Status": {"State": "unknown", "Addr": remote_addr},
            }))

        await self._store.update(create)


class StoreManagerDirectory:
    """Which Raft member a manager node is (see shoal.manager.membership.ManagerDirectory)."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    def raft_id_of(self, node_id: str) -> int | None:
        node = self._store.view().get(NODES, node_id)
        raft_id = None if node is None else node.get(RAFT_ID)
        return int(raft_id) if isinstance(raft_id, int) else None

    async def record(self, node_id: str, raft_id: int, address: str) -> None:
        def update(tx: Tx) -> None:
            current = tx.get(NODES, node_id)
            if current is None:
                raise errors.NotFound(f"node {node_id} not found", grpc=True)
            node = clone(current)
            node[RAFT_ID] = raft_id
            node["ManagerStatus"] = {"Leader": False, "Reachability": "reachable", "Addr": address}
            tx.update(NODES, node)

        await self._store.update(update)


def removed_checker(store: MemoryStore) -> Callable[[str], bool]:
    def is_removed(node_id: str) -> bool:
        clusters = store.view().objects(CLUSTER)
        return bool(clusters) and node_id in (clusters[0].get(REMOVED_NODES) or ())

    return is_removed


def with_manager_status(node: Obj, raft_status: Callable[[int], tuple[bool, bool]] | None) -> Obj:
    """``node`` for the API, its ManagerStatus filled from Raft as Swarm does at read time:
    ``raft_status(raft id) -> (is leader, reachable)``; None on a manager that cannot tell."""
    shown: dict[str, Any] = public_node(node)
    raft_id = node.get(RAFT_ID)
    status = node.get("ManagerStatus")
    if dig(node, "Spec", "Role") != "manager" or not isinstance(status, dict):
        shown.pop("ManagerStatus", None)
        return shown
    status = dict(status)
    if raft_status is not None and isinstance(raft_id, int):
        leader, reachable = raft_status(raft_id)
        status["Leader"] = leader
        status["Reachability"] = "reachable" if reachable else "unreachable"
    if not status.get("Leader"):
        status.pop("Leader", None)
    shown["ManagerStatus"] = status
    return shown
