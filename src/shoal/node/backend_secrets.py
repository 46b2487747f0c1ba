"""Secrets and configs: cluster objects kept in the replicated store."""

from __future__ import annotations

from shoal.engineapi.backend import Filters
from shoal.node.backend_base import BackendBase, Json, not_yet


class SecretsConfigsCalls(BackendBase):
    async def secrets_list(self, filters: Filters) -> list[Json]:
        raise not_yet("secrets")

    async def secret_create(self, spec: Json) -> Json:
        raise not_yet("secrets")

    async def secret_inspect(self, ref: str) -> Json:
        raise not_yet("secrets")

    async def secret_update(self, ref: str, version: int, spec: Json) -> None:
        raise not_yet("secrets")

    async def secret_remove(self, ref: str) -> None:
        raise not_yet("secrets")

    async def configs_list(self, filters: Filters) -> list[Json]:
        raise not_yet("configs")

    async def config_create(self, spec: Json) -> Json:
        raise not_yet("configs")

    async def config_inspect(self, ref: str) -> Json:
        raise not_yet("configs")

    async def config_update(self, ref: str, version: int, spec: Json) -> None:
        raise not_yet("configs")

    async def config_remove(self, ref: str) -> None:
        raise not_yet("configs")
