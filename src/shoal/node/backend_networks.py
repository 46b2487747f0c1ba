"""Networks: cluster objects kept in the replicated store."""

from __future__ import annotations

from shoal.engineapi.backend import Filters
from shoal.node.backend_base import BackendBase, Json, not_yet


class NetworkCalls(BackendBase):
    async def networks_list(self, filters: Filters) -> list[Json]:
        raise not_yet("networks")

    async def network_create(self, request: Json) -> Json:
        raise not_yet("networks")

    async def network_inspect(self, ref: str, scope: str | None, verbose: bool) -> Json:
        raise not_yet("networks")

    async def network_remove(self, ref: str) -> None:
        raise not_yet("networks")
