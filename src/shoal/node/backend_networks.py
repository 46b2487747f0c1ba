"""Networks: swarm-scoped overlay networks kept in the replicated store (controlapi.networks). Writes
run on the Raft leader; reads answer from this manager's own store.

A worker never reads the store: as dockerd's does, it shows the swarm networks its own tasks are on
(each task carries its networks, from its assignment), with its own load-balancer endpoint on them (the
managers send its addresses with its node object), and refuses to create or remove any. A node
outside a swarm has none (shoald keeps no local networks)."""

from __future__ import annotations

from shoal.allocator.lbaddresses import record_sent_with
from shoal.api import errors
from shoal.api.objects import NETWORKS, NODE_ATTACHMENTS, TABLES, TASKS, Obj
from shoal.controlapi.networks import NetworkControl, check_filters, inspected, listed
from shoal.engineapi.backend import Filters
from shoal.node.backend_base import BackendBase, Json, on_leader
from shoal.store.memory import ReadView

WORKER_CREATE = ("Cannot create a multi-host network from a worker node. Please create the network from a "
                 "manager node.")


class NetworkCalls(BackendBase):
    def _networks(self) -> NetworkControl:
        return NetworkControl(self._store())

    def _worker_view(self) -> ReadView | None:
        """On a worker, the networks of the tasks it holds (with those tasks and its own load-balancer
        addresses), as a store view; None on a manager or outside a swarm."""
        swarm = self._node.swarm
        if swarm is None or swarm.manager is not None:
            return None
        tables: dict[str, dict[str, Obj]] = {table: {} for table in TABLES}
        for manager in swarm.agent.managers.values():
            tables[TASKS][str(manager.task["ID"])] = manager.task
            for attachment in manager.task.get("NetworksAttachments") or []:
                network = attachment.get("Network") or {}
                if network.get("ID"):
                    tables[NETWORKS].setdefault(str(network["ID"]), network)
        record = record_sent_with(swarm.agent.node)  # the node object the managers sent last
        if record is not None:  # each attachment comes with its whole network (ingress among them)
            tables[NODE_ATTACHMENTS][record["ID"]] = record
            for attachment in record["Attachments"]:
                network = attachment.get("Network") or {}
                if network.get("Spec"):
                    tables[NETWORKS].setdefault(str(network["ID"]), network)
        return ReadView(tables, {}, {})

    async def networks_list(self, filters: Filters) -> list[Json]:
        if self._node.swarm is None:
            check_filters(filters)
            return []
        worker = self._worker_view()
        if worker is not None:
            return listed(worker, filters)
        return self._networks().list(filters)

    async def network_create(self, request: Json) -> Json:
        if self._worker_view() is not None:
            raise errors.Forbidden(WORKER_CREATE)
        return await self._network_create(request)

    @on_leader
    async def _network_create(self, request: Json) -> Json:
        return await self._networks().create(request)

    async def network_inspect(self, ref: str, scope: str | None, verbose: bool) -> Json:
        if self._node.swarm is None:
            raise errors.NotFound(f"network {ref} not found")
        node_id = self._node.swarm.identity.node_id
        worker = self._worker_view()
        if worker is not None:
            return inspected(worker, ref, scope, node_id)
        return self._networks().inspect(ref, scope, node_id)

    async def network_remove(self, ref: str) -> None:
        if self._node.swarm is None:
            raise errors.NotFound(f"network {ref} not found")
        if self._worker_view() is not None:
            raise errors.WorkerNotAManager()
        await self._network_remove(ref)

    @on_leader
    async def _network_remove(self, ref: str) -> None:
        await self._networks().remove(ref)
