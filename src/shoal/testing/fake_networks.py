"""The fake backend's networks."""

from __future__ import annotations

from shoal.api import errors
from shoal.base.ids import new_id
from shoal.engineapi.backend import Filters, Json
from shoal.testing.fake_core import FakeCore, _check_filter_keys, _prefix_match


class FakeNetworkCalls(FakeCore):
    async def networks_list(self, filters: Filters) -> list[Json]:
        _check_filter_keys(filters, {"name", "id", "label", "driver", "scope", "type"})
        return [
            n
            for n in self.networks.values()
            if (not filters.get("name") or any(w in n["Name"] for w in filters["name"]))
            and _prefix_match(n["Id"], filters.get("id", []))
        ]

    async def network_create(self, request: Json) -> Json:
        name = request.get("Name", "")
        if any(n["Name"] == name for n in self.networks.values()):
            raise errors.Conflict(f"network with name {name} already exists")
        network_id = new_id()
        self.networks[network_id] = {"Id": network_id, "Name": name, "Driver": request.get("Driver")}
        return {"Id": network_id, "Warning": ""}

    async def network_inspect(self, ref: str, scope: str | None, verbose: bool) -> Json:
        for network in self.networks.values():
            if ref in (network["Id"], network["Name"]):
                return network
        raise errors.NotFound(f"network {ref} not found")

    async def network_remove(self, ref: str) -> None:
        network = await self.network_inspect(ref, None, False)
        del self.networks[network["Id"]]
