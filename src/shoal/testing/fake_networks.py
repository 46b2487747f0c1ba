"""The fake backend's networks: plain dicts instead of the replicated store, but every rule (the create
request's checks, subnets from the default address pool, overlap and in-use refusals, filters, the
Engine API's shape) comes from controlapi.networks, the code the real backend runs. A fake swarm has
its `ingress` network as a real one does from init (made the first time networks are looked at, which
a client cannot tell apart). tests/contract/test_networks.py checks both alike."""

from __future__ import annotations

from shoal.allocator.networks import new_ingress_network
from shoal.api import errors
from shoal.api.objects import CLUSTER, CONFIGS, NETWORKS, NODES, SECRETS, SERVICES, TASKS
from shoal.controlapi import networks
from shoal.engineapi.backend import Filters, Json
from shoal.store.memory import ReadView
from shoal.testing.fake_core import FakeCore


class FakeNetworkCalls(FakeCore):
    def _network_view(self) -> ReadView:
        """The fake's dicts seen as the store's tables, with the swarm's ingress network in place."""
        tables = {CLUSTER: {}, NODES: self.nodes, SERVICES: self.services, TASKS: self.tasks,
                  NETWORKS: self.networks, SECRETS: self.secrets, CONFIGS: self.configs}
        view = ReadView(tables, {}, {})
        if getattr(self, "_ingress_for", None) is not self.swarm:  # once per swarm, as init does
            self._ingress_for = self.swarm
            ingress = new_ingress_network(view)
            self._stamp(ingress)
            self.networks[ingress["ID"]] = ingress
        return view

    def _stamp(self, network: Json) -> None:
        now = self.now()
        network.update({"Version": {"Index": next(self._index)}, "CreatedAt": now, "UpdatedAt": now})

    async def networks_list(self, filters: Filters) -> list[Json]:
        if self.swarm is None:
            networks.check_filters(filters)
            return []
        return networks.listed(self._network_view(), filters)

    async def network_create(self, request: Json) -> Json:
        self._manager()
        network = networks.checked_create(self._network_view(), request)
        self._stamp(network)
        self.networks[network["ID"]] = network
        return {"Id": network["ID"], "Warning": ""}

    async def network_inspect(self, ref: str, scope: str | None, verbose: bool) -> Json:
        if self.swarm is None:
            raise errors.NotFound(f"network {ref} not found")
        return networks.inspected(self._network_view(), ref, scope)

    async def network_remove(self, ref: str) -> None:
        if self.swarm is None:
            raise errors.NotFound(f"network {ref} not found")
        del self.networks[networks.removable(self._network_view(), ref)["ID"]]
