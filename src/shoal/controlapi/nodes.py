"""Node calls: list with filters, inspect, update (spec round-trip, guarded demotion), remove."""

from __future__ import annotations

from typing import Any

from shoal.api import errors
from shoal.api.objects import CLUSTER, NODES, Obj, clone, dig, node_name, version_of
from shoal.controlapi import filters as flt
from shoal.controlapi.cluster import finish_rotation_if_converged
from shoal.controlapi.dockerd_checks import ROLES, node_spec_values
from shoal.controlapi.resolve import resolve
from shoal.controlapi.schema import NODE_SPEC, conform
from shoal.store.memory import MemoryStore, ReadView, Tx

NODE_FILTERS = ("id", "name", "role", "membership", "label", "node.label")
# Ids of removed nodes, kept with the cluster object: their certificates stay valid until they expire,
# so the cluster port refuses them by id (as Swarm keeps its removed nodes' certificates listed).
REMOVED_NODES = "_RemovedNodes"


def find_node(view: ReadView, ref: str) -> Obj:
    return resolve(view, NODES, ref, "node", node_name)


def _is_manager(node: Obj) -> bool:
    return bool(dig(node, "Spec", "Role") == "manager")


class NodeControl:
    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    def list(self, filters: flt.Filters) -> list[Obj]:
        flt.check_keys(filters, NODE_FILTERS)
        for role in filters.get("role", []):
            if role not in ROLES:
                raise errors.InvalidArgument(f"Invalid role filter value: {role}")
        found = flt.keep(
            self._store.view().objects(NODES),
            lambda n: flt.any_prefix(filters.get("id"), n["ID"]),
            lambda n: flt.any_prefix(filters.get("name"), node_name(n)),
            lambda n: flt.any_exact(filters.get("role"), dig(n, "Spec", "Role", default="")),
            lambda n: flt.any_exact(filters.get("membership"), dig(n, "Spec", "Membership", default="accepted")),
            lambda n: flt.labels_match(filters.get("label"), dig(n, "Description", "Engine", "Labels")),
            lambda n: flt.labels_match(filters.get("node.label"), dig(n, "Spec", "Labels")),
        )
        return sorted(found, key=lambda n: n.get("CreatedAt", ""))

    def inspect(self, ref: str) -> Obj:
        return find_node(self._store.view(), ref)

    async def update(self, ref: str, version: int, raw_spec: Any) -> None:
        if not isinstance(raw_spec, dict):
            raise errors.InvalidArgument("json: cannot unmarshal into Go value of type swarm.NodeSpec")
        spec: Obj = conform(raw_spec, NODE_SPEC, "NodeSpec")
        role, availability = node_spec_values(spec)
        spec["Role"], spec["Availability"] = role, availability
        spec.setdefault("Labels", {})

        def update(tx: Tx) -> None:
            current = find_node(tx, ref)
            if version != version_of(current):
                raise errors.OutOfSequence()
            if _is_manager(current) and role == "worker":
                managers = [n for n in tx.objects(NODES) if _is_manager(n)]
                if len(managers) <= 1:
                    raise errors.FailedPrecondition(
                        "attempting to demote the last manager of the swarm", grpc=True
                    )
            node = clone(current)
            node["Spec"] = {**current.get("Spec", {}), **spec}
            tx.update(NODES, node)

        await self._store.update(update)

    async def remove(self, ref: str, force: bool) -> None:
        def remove(tx: Tx) -> None:
            node = find_node(tx, ref)
            if _is_manager(node):
                raise errors.FailedPrecondition(
                    f"node {node['ID']} is a cluster manager and is a member of the raft cluster. "
                    "It must be demoted to worker before removal",
                    grpc=True,
                )
            if dig(node, "Status", "State") != "down" and not force:
                raise errors.FailedPrecondition(
                    f"node {node['ID']} is not down and can't be removed", grpc=True
                )
            tx.delete(NODES, node["ID"])
            for cluster in tx.objects(CLUSTER)[:1]:
                updated = clone(cluster)
                updated[REMOVED_NODES] = sorted({*(cluster.get(REMOVED_NODES) or ()), node["ID"]})
                tx.update(CLUSTER, updated, touch=False)
            finish_rotation_if_converged(tx)  # the removed node may have been the last one it waited for

        await self._store.update(remove)
