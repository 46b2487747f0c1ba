"""Secrets and configs: cluster objects kept in the replicated store (controlapi.secrets, .configs).
Writes run on the Raft leader; reads answer from this manager's own store."""

from __future__ import annotations

from shoal.controlapi.configs import ConfigControl
from shoal.controlapi.secrets import SecretControl
from shoal.engineapi.backend import Filters
from shoal.node.backend_base import BackendBase, Json, on_leader


class SecretsConfigsCalls(BackendBase):
    def _secrets(self) -> SecretControl:
        return SecretControl(self._store())

    def _configs(self) -> ConfigControl:
        return ConfigControl(self._store())

    async def secrets_list(self, filters: Filters) -> list[Json]:
        return self._secrets().list(filters)

    @on_leader
    async def secret_create(self, spec: Json) -> Json:
        return await self._secrets().create(spec)

    async def secret_inspect(self, ref: str) -> Json:
        return self._secrets().inspect(ref)

    @on_leader
    async def secret_update(self, ref: str, version: int, spec: Json) -> None:
        await self._secrets().update(ref, version, spec)

    @on_leader
    async def secret_remove(self, ref: str) -> None:
        await self._secrets().remove(ref)

    async def configs_list(self, filters: Filters) -> list[Json]:
        return self._configs().list(filters)

    @on_leader
    async def config_create(self, spec: Json) -> Json:
        return await self._configs().create(spec)

    async def config_inspect(self, ref: str) -> Json:
        return self._configs().inspect(ref)

    @on_leader
    async def config_update(self, ref: str, version: int, spec: Json) -> None:
        await self._configs().update(ref, version, spec)

    @on_leader
    async def config_remove(self, ref: str) -> None:
        await self._configs().remove(ref)
