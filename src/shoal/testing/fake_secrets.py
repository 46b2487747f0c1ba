"""The fake backend's secrets and configs."""

from __future__ import annotations

import copy

from shoal.api import errors
from shoal.engineapi.backend import Filters, Json
from shoal.testing.fake_core import _NAMED_FILTERS, FakeCore, _check_filter_keys, _prefix_match


class FakeSecretsConfigs(FakeCore):
    async def _create_named(self, table: dict[str, Json], kind: str, spec: Json) -> Json:
        self._manager()
        name = spec.get("Name", "")
        if any(o["Spec"].get("Name") == name for o in table.values()):
            raise errors.AlreadyExists(
                f"name conflicts with an existing object: {kind} {name} already exists", grpc=True
            )
        obj = self._new_object(spec)
        table[obj["ID"]] = obj
        return {"ID": obj["ID"]}

    def _list_named(self, table: dict[str, Json], filters: Filters) -> list[Json]:
        self._manager()
        _check_filter_keys(filters, _NAMED_FILTERS)
        return [
            o
            for o in table.values()
            if _prefix_match(o["Spec"].get("Name", ""), filters.get("name", []))
            and (not filters.get("names") or o["Spec"].get("Name") in filters["names"])
        ]

    async def secrets_list(self, filters: Filters) -> list[Json]:
        return [_without_data(s) for s in self._list_named(self.secrets, filters)]

    async def secret_create(self, spec: Json) -> Json:
        return await self._create_named(self.secrets, "secret", spec)

    async def secret_inspect(self, ref: str) -> Json:
        return _without_data(self._resolve(self.secrets, ref, "secret", ("Spec", "Name")))

    async def secret_update(self, ref: str, version: int, spec: Json) -> None:
        secret = self._resolve(self.secrets, ref, "secret", ("Spec", "Name"))
        self._bump(secret, version)
        secret["Spec"]["Labels"] = spec.get("Labels") or {}

    async def secret_remove(self, ref: str) -> None:
        del self.secrets[self._resolve(self.secrets, ref, "secret", ("Spec", "Name"))["ID"]]

    async def configs_list(self, filters: Filters) -> list[Json]:
        return self._list_named(self.configs, filters)

    async def config_create(self, spec: Json) -> Json:
        return await self._create_named(self.configs, "config", spec)

    async def config_inspect(self, ref: str) -> Json:
        return self._resolve(self.configs, ref, "config", ("Spec", "Name"))

    async def config_update(self, ref: str, version: int, spec: Json) -> None:
        config = await self.config_inspect(ref)
        self._bump(config, version)
        config["Spec"]["Labels"] = spec.get("Labels") or {}

    async def config_remove(self, ref: str) -> None:
        del self.configs[(await self.config_inspect(ref))["ID"]]


def _without_data(secret: Json) -> Json:
    shown = copy.deepcopy(secret)
    shown["Spec"].pop("Data", None)
    return shown
