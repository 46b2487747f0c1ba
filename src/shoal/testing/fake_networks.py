"""The fake backend's networks: plain dicts instead of the replicated store, but every rule (the create
request's checks, subnets from the default address pool, overlap and in-use refusals, filters, the
Engine API's shape) comes from controlapi.networks, the code the real backend runs. A fake swarm has
its `ingress` network as a real one does from init (made the first time networks are looked at, which
a client cannot tell apart). Each node's load-balancer addresses come from the allocator's own rules
(allocator.lbaddresses), worked out whenever networks are looked at and kept in a table of the fake's,
so `network inspect` shows this node's `ingress-sbox`/`lb-<net>` endpoint as shoald does.
tests/contract/test_networks.py checks both alike."""

from __future__ import annotations

from shoal.allocator.lbaddresses import all_addresses_in_use, wanted_records
from shoal.allocator.networks import new_ingress_network
from shoal.api import errors
from shoal.api.objects import CLUSTER, CONFIGS, NETWORKS, NODE_ATTACHMENTS, NODES, SECRETS, SERVICES, TASKS
from shoal.controlapi import networks
from shoal.engineapi.backend import Filters, Json
from shoal.store.memory import ReadView
from shoal.testing.fake_core import FakeCore


class FakeNetworkCalls(FakeCore):
    def _network_view(self) -> ReadView:
        """The fake's dicts seen as the store's tables, with the swarm's ingress network in place."""
        if not hasattr(self, "lb_records"):
            self.lb_records: dict[str, Json] = {}
        tables = {CLUSTER: {}, NODES: self.nodes, SERVICES: self.services, TASKS: self.tasks,
                  NETWORKS: self.networks, SECRETS: self.secrets, CONFIGS: self.configs,
                  NODE_ATTACHMENTS: self.lb_records}
        view = ReadView(tables, {}, {})
        if getattr(self, "_ingress_for", None) is not self.swarm:  # once per swarm, as init does
            self._ingress_for = self.swarm
            ingress = new_ingress_network(view)
            self._stamp(ingress)
            self.networks[ingress["ID"]] = ingress
        self._allocate_lb_addresses(view)
        return view

    def _allocate_lb_addresses(self, view: ReadView) -> None:
        """What the allocator's pass does to the nodes' load-balancer addresses, on the fake's table."""
        for node_id, attachments in wanted_records(view, all_addresses_in_use(view)).items():
            if attachments or node_id in self.lb_records:
                self.lb_records[node_id] = {"ID": node_id, "Attachments": attachments}
        for node_id in [n for n in self.lb_records if n not in self.nodes]:
            del self.lb_records[node_id]

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
        return networks.inspected(self._network_view(), ref, scope, self.node_id)

    async def network_remove(self, ref: str) -> None:
        if self.swarm is None:
            raise errors.NotFound(f"network {ref} not found")
        del self.networks[networks.removable(self._network_view(), ref)["ID"]]
