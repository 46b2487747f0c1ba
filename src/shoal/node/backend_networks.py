"""Networks: swarm-scoped overlay networks kept in the replicated store (controlapi.networks). Writes
run on the Raft leader; reads answer from this manager's own store. A node outside a swarm, or a
worker, has no swarm networks to show (shoald keeps no local networks), so lists are empty there and
creates get dockerd's refusals."""

from __future__ import annotations

from shoal.api import errors
from shoal.controlapi.networks import NetworkControl, check_filters
from shoal.engineapi.backend import Filters
from shoal.node.backend_base import BackendBase, Json, on_leader

WORKER_CREATE = ("Cannot create a multi-host network from a worker node. Please create the network from a "
                 "manager node.")


class NetworkCalls(BackendBase):
    def _networks(self) -> NetworkControl:
        return NetworkControl(self._store())

    def _has_swarm_networks(self) -> bool:
        swarm = self._node.swarm
        return swarm is not None and swarm.manager is not None

    async def networks_list(self, filters: Filters) -> list[Json]:
        if not self._has_swarm_networks():
            check_filters(filters)
            return []
        return self._networks().list(filters)

    async def network_create(self, request: Json) -> Json:
        swarm = self._node.swarm
        if swarm is not None and swarm.manager is None:
            raise errors.Forbidden(WORKER_CREATE)
        return await self._network_create(request)

    @on_leader
    async def _network_create(self, request: Json) -> Json:
        return await self._networks().create(request)

    async def network_inspect(self, ref: str, scope: str | None, verbose: bool) -> Json:
        if not self._has_swarm_networks():
            raise errors.NotFound(f"network {ref} not found")
        return self._networks().inspect(ref, scope)

    async def network_remove(self, ref: str) -> None:
        if not self._has_swarm_networks():
            raise errors.NotFound(f"network {ref} not found")
        await self._network_remove(ref)

    @on_leader
    async def _network_remove(self, ref: str) -> None:
        await self._networks().remove(ref)
