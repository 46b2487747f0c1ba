"""The fake backend's secrets and configs: plain dicts instead of the replicated store, but every
rule (names, payload sizes, label-only updates, filters, in-use refusals, hiding a secret's data)
comes from controlapi.payloads, the code the real backend runs. tests/contract checks both alike."""

from __future__ import annotations

from typing import Any

from shoal.api import errors
from shoal.controlapi import payloads
from shoal.controlapi.payloads import CONFIG, SECRET, PayloadKind
from shoal.engineapi.backend import Filters, Json
from shoal.testing.fake_core import FakeCore


class FakeSecretsConfigs(FakeCore):
    def _payload_table(self, kind: PayloadKind) -> dict[str, Json]:
        return self.secrets if kind is SECRET else self.configs

    def _find_payload(self, kind: PayloadKind, ref: str) -> Json:
        return self._resolve(self._payload_table(kind), ref, kind.kind, ("Spec", "Name"))

    async def _create_payload(self, kind: PayloadKind, raw: Any) -> Json:
        self._manager()
        spec = payloads.checked_spec(kind, raw)
        table = self._payload_table(kind)
        taken = payloads.name_taken(kind, table.values(), spec["Name"])
        if taken is not None:
            raise taken
        obj = self._new_object(spec)
        table[obj["ID"]] = obj
        return {"ID": obj["ID"]}

    def _list_payloads(self, kind: PayloadKind, filters: Filters) -> list[Json]:
        self._manager()
        test = payloads.matches(filters)
        found = sorted((o for o in self._payload_table(kind).values() if test(o)), key=lambda o: str(o["ID"]))
        return [payloads.shown(kind, o) for o in found]

    async def _update_payload(self, kind: PayloadKind, ref: str, version: int, raw: Any) -> None:
        current = self._find_payload(kind, ref)
        if version != current["Version"]["Index"]:
            raise errors.OutOfSequence()
        spec = payloads.label_update(kind, current, raw)
        self._bump(current, version)
        current["Spec"] = spec

    async def _remove_payload(self, kind: PayloadKind, ref: str) -> None:
        current = self._find_payload(kind, ref)
        refused = payloads.in_use_error(kind, current, self.services.values())
        if refused is not None:
            raise refused
        del self._payload_table(kind)[current["ID"]]

    async def secrets_list(self, filters: Filters) -> list[Json]:
        return self._list_payloads(SECRET, filters)

    async def secret_create(self, spec: Json) -> Json:
        return await self._create_payload(SECRET, spec)

    async def secret_inspect(self, ref: str) -> Json:
        return payloads.shown(SECRET, self._find_payload(SECRET, ref))

    async def secret_update(self, ref: str, version: int, spec: Json) -> None:
        await self._update_payload(SECRET, ref, version, spec)

    async def secret_remove(self, ref: str) -> None:
        await self._remove_payload(SECRET, ref)

    async def configs_list(self, filters: Filters) -> list[Json]:
        return self._list_payloads(CONFIG, filters)

    async def config_create(self, spec: Json) -> Json:
        return await self._create_payload(CONFIG, spec)

    async def config_inspect(self, ref: str) -> Json:
        return payloads.shown(CONFIG, self._find_payload(CONFIG, ref))

    async def config_update(self, ref: str, version: int, spec: Json) -> None:
        await self._update_payload(CONFIG, ref, version, spec)

    async def config_remove(self, ref: str) -> None:
        await self._remove_payload(CONFIG, ref)
