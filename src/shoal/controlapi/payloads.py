"""What secrets and configs share: a name, labels and a payload that never changes after creation.

Both kinds are checked, listed, shown and guarded here with swarmkit's rules and texts
(manager/controlapi/secret.go, config.go, common.go); controlapi.secrets and controlapi.configs bind
them to their tables. The pure functions are also what the fake backend uses, so both answer alike."""

from __future__ import annotations

import base64
import binascii
import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from shoal.api import errors
from shoal.api.objects import CONFIGS, SECRETS, SERVICES, Obj, clone, dig, service_name, version_of
from shoal.base.ids import new_id
from shoal.controlapi.resolve import resolve
from shoal.controlapi.schema import ANY, STR, STR_MAP, Struct, conform
from shoal.store.memory import MemoryStore, ReadView, Tx

FILTERS = ("id", "name", "names", "label")
TEMPLATE_DRIVERS = ("golang",)
_DRIVER = Struct("Driver", {"Name": STR, "Options": STR_MAP})
_NAME = re.compile(r"^[a-zA-Z0-9]+(?:[a-zA-Z0-9-_.]*[a-zA-Z0-9])?$")
_NAME_RULE = ("invalid name, only 64 [a-zA-Z0-9-_.] characters allowed, and the start and end character "
              "must be [a-zA-Z0-9]")


@dataclass(frozen=True)
class PayloadKind:
    """One of the two kinds: `secret` or `config`."""

    kind: str
    table: str
    go_spec: str
    max_size: int  # payloads must be shorter than this many bytes
    shows_data: bool  # configs' data is returned by the API; a secret's never is
    refs_field: str  # ContainerSpec field that references it: "Secrets" / "Configs"

    def spec_shape(self) -> Struct:
        # Data is checked by hand (Go decodes []byte from base64)
        return Struct(self.go_spec, {"Name": STR, "Labels": STR_MAP, "Data": ANY, "Driver": _DRIVER,
                                     "Templating": _DRIVER})


SECRET = PayloadKind("secret", SECRETS, "SecretSpec", 500 * 1024, False, "Secrets")
CONFIG = PayloadKind("config", CONFIGS, "ConfigSpec", 1000 * 1024, True, "Configs")


def _grpc_invalid(message: str) -> errors.InvalidArgument:
    return errors.InvalidArgument(message, grpc=True)


def decode_data(kind: PayloadKind, value: Any) -> bytes:
    """The payload's bytes from the API's base64 text (Go's []byte in JSON)."""
    if value is None:
        return b""
    if not isinstance(value, str):
        raise errors.InvalidArgument(
            f"json: cannot unmarshal {type(value).__name__} into Go struct field {kind.go_spec}.Data of type []uint8"
        )
    try:
        # Go's base64 decoder skips line breaks; anything else outside the alphabet is an error
        return base64.b64decode(value.replace("\r", "").replace("\n", ""), validate=True)
    except (binascii.Error, ValueError):
        bad = next((i for i, ch in enumerate(value) if not (ch.isalnum() or ch in "+/=")), len(value) // 4 * 4)
        raise errors.InvalidArgument(f"illegal base64 data at input byte {bad}") from None


def _driver(value: Obj | None) -> Obj | None:
    """A conformed Driver/Templating as Docker's swarm.Driver shows it: empty fields omitted."""
    if value is None:
        return None
    options = value.get("Options")
    return {"Name": value.get("Name") or "", **({"Options": dict(options)} if options else {})}


def checked_spec(kind: PayloadKind, raw: Any) -> Obj:
    """The spec to store for a create: name and payload checked as swarmkit does. Data stays base64
    (the store keeps objects in the API's shape)."""
    if not isinstance(raw, dict):
        raise errors.InvalidArgument(f"json: cannot unmarshal into Go value of type swarm.{kind.go_spec}")
    spec = conform(raw, kind.spec_shape(), kind.go_spec)
    data = decode_data(kind, spec.get("Data"))  # Go decodes the base64 with the JSON, before any check
    name = spec.get("Name") or ""
    if not name:
        raise _grpc_invalid("name must be provided")
    if len(name) > 64 or not _NAME.match(name):
        raise _grpc_invalid(_NAME_RULE)
    stored: Obj = {"Name": name, "Labels": dict(spec.get("Labels") or {})}
    driver = _driver(spec.get("Driver"))
    if driver is not None:
        if not driver["Name"]:
            raise _grpc_invalid(f"{kind.kind} driver must have a name")
        # Swarm would fetch the payload from a secret-store plugin; shoal has no plugins.
        raise errors.NotImplementedYet(f"{kind.kind} drivers (plugins) are not supported by shoal")
    if not 0 < len(data) < kind.max_size:
        raise _grpc_invalid(f"{kind.kind} data must be larger than 0 and less than {kind.max_size} bytes")
    stored["Data"] = base64.b64encode(data).decode("ascii")
    templating = _driver(spec.get("Templating"))
    if templating is not None:
        # Swarm accepts any name and fails each task at the node; refusing here says it once, up front.
        if templating["Name"] not in TEMPLATE_DRIVERS:
            raise _grpc_invalid(f"unrecognized template type {templating['Name']!r} (supported: golang)")
        stored["Templating"] = templating
    return stored


def label_update(kind: PayloadKind, current: Obj, raw: Any) -> Obj:
    """The stored spec with only its labels replaced: Swarm refuses any other change."""
    if not isinstance(raw, dict):
        raise errors.InvalidArgument(f"json: cannot unmarshal into Go value of type swarm.{kind.go_spec}")
    spec = conform(raw, kind.spec_shape(), kind.go_spec)
    stored = current.get("Spec") or {}
    data = spec.get("Data")
    if spec.get("Name", "") != stored.get("Name") or (
            data is not None and decode_data(kind, data) != decode_data(kind, stored.get("Data"))):
        raise _grpc_invalid("only updates to Labels are allowed")
    return {**stored, "Labels": dict(spec.get("Labels") or {})}


def shown(kind: PayloadKind, obj: Obj) -> Obj:
    """What the API returns: a secret without its data."""
    if kind.shows_data:
        return clone(obj)
    copied = clone(obj)
    copied.get("Spec", {}).pop("Data", None)
    return copied


def _name_of(obj: Obj) -> str:
    return str(dig(obj, "Spec", "Name", default=""))


def _labels_hold(wanted: Iterable[str], labels: Mapping[str, str]) -> bool:
    """swarmkit's label filter: every `k` must be present, and `k=v` with a value must match it."""
    for item in wanted:
        key, _, value = item.partition("=")
        if key not in labels or (value and labels[key] != value):
            return False
    return True


def check_filters(filters: Mapping[str, list[str]]) -> None:
    for key in filters:
        if key not in FILTERS:
            raise errors.InvalidArgument(f"Invalid filter '{key}'")


def matches(filters: Mapping[str, list[str]]) -> Callable[[Obj], bool]:
    """`names` (exact), `name` (prefix) and `id` (prefix) widen each other, as swarmkit ORs them;
    `label` then narrows. Names compare case-insensitively, as swarmkit's name index does."""
    check_filters(filters)
    names = [n.lower() for n in filters.get("names", [])]
    prefixes = [n.lower() for n in filters.get("name", [])]
    ids = filters.get("id", [])

    def test(obj: Obj) -> bool:
        name = _name_of(obj).lower()
        widened = name in names or any(name.startswith(p) for p in prefixes) or any(
            obj["ID"].startswith(i) for i in ids)
        if (names or prefixes or ids) and not widened:
            return False
        return _labels_hold(filters.get("label", []), dig(obj, "Spec", "Labels") or {})

    return test


def references(kind: PayloadKind, spec: Obj | None) -> list[Obj]:
    """The references a service or task spec makes to objects of this kind."""
    container = dig(spec or {}, "TaskTemplate", "ContainerSpec") or dig(spec or {}, "ContainerSpec") or {}
    refs = container.get(kind.refs_field) if isinstance(container, dict) else None
    return [ref for ref in refs or [] if isinstance(ref, dict)]


def in_use_error(kind: PayloadKind, obj: Obj, services: Iterable[Obj]) -> errors.InvalidArgument | None:
    users = [service_name(s) for s in services
             if any(ref.get(f"{kind.kind.capitalize()}ID") == obj["ID"] for ref in references(kind, s.get("Spec")))]
    if not users:
        return None
    noun = "service" if len(users) == 1 else "services"
    return _grpc_invalid(f"{kind.kind} '{_name_of(obj)}' is in use by the following {noun}: {', '.join(users)}")


def name_taken(kind: PayloadKind, objects: Iterable[Obj], name: str) -> errors.AlreadyExists | None:
    if any(_name_of(o).lower() == name.lower() for o in objects):
        return errors.AlreadyExists(f"{kind.kind} {name} already exists", grpc=True)
    return None


def check_refs(kind: PayloadKind, spec: Obj, get: Callable[[str], Obj | None]) -> None:
    """A service spec's references of this kind: well formed, no two on one target file, and each
    naming an existing object by its ID and current name (swarmkit's validate*RefsSpec and
    check*Existence)."""
    label = kind.kind.capitalize()
    targets: dict[str, str] = {}
    missing: list[str] = []
    for ref in references(kind, spec):
        obj_id, name = ref.get(f"{label}ID"), ref.get(f"{label}Name")
        if not obj_id or not name:
            raise _grpc_invalid(f"malformed {kind.kind} reference")
        file = ref.get("File")
        if file is None and ref.get("Runtime") is None:
            raise _grpc_invalid(f"malformed {kind.kind} reference, no target provided")
        if isinstance(file, dict):
            target = file.get("Name")
            if not target or not isinstance(target, str):
                raise _grpc_invalid(f"malformed file {kind.kind} reference, invalid target file name provided")
            if target in targets:
                raise _grpc_invalid(
                    f"{kind.kind} references '{targets[target]}' and '{name}' have a conflicting target: '{target}'"
                )
            targets[target] = name
        found = get(obj_id)
        if found is None or _name_of(found) != name:
            missing.append(name)
    if missing:
        noun = kind.kind if len(missing) == 1 else kind.kind + "s"
        raise _grpc_invalid(f"{noun} not found: {', '.join(missing)}")


def check_service_references(view: ReadView, spec: Obj) -> None:
    """The hook service create and update call (inside their transaction): the secrets and configs a
    service spec references must exist, as Swarm checks."""
    for kind in (SECRET, CONFIG):
        check_refs(kind, spec, functools.partial(view.get, kind.table))


class PayloadControl:
    """The five calls on one kind, each a read or one store transaction."""

    def __init__(self, store: MemoryStore, kind: PayloadKind) -> None:
        self._store = store
        self.kind = kind

    def _find(self, view: ReadView, ref: str) -> Obj:
        return resolve(view, self.kind.table, ref, self.kind.kind, _name_of)

    def list(self, filters: Mapping[str, list[str]]) -> list[Obj]:
        test = matches(filters)
        found = [obj for obj in self._store.view().objects(self.kind.table) if test(obj)]
        return [shown(self.kind, obj) for obj in sorted(found, key=lambda o: str(o["ID"]))]

    def inspect(self, ref: str) -> Obj:
        return shown(self.kind, self._find(self._store.view(), ref))

    async def create(self, raw_spec: Any) -> Obj:
        spec = checked_spec(self.kind, raw_spec)

        def create(tx: Tx) -> Obj:
            taken = name_taken(self.kind, tx.objects(self.kind.table), spec["Name"])
            if taken is not None:
                raise taken
            return tx.create(self.kind.table, {"ID": new_id(), "Spec": spec})

        created = await self._store.update(create)
        return {"ID": created["ID"]}

    async def update(self, ref: str, version: int, raw_spec: Any) -> None:
        def update(tx: Tx) -> None:
            current = self._find(tx, ref)
            if version != version_of(current):
                raise errors.OutOfSequence()
            updated = clone(current)
            updated["Spec"] = label_update(self.kind, current, raw_spec)
            tx.update(self.kind.table, updated)

        await self._store.update(update)

    async def remove(self, ref: str) -> None:
        def remove(tx: Tx) -> None:
            current = self._find(tx, ref)
            refused = in_use_error(self.kind, current, tx.objects(SERVICES))
            if refused is not None:
                raise refused
            tx.delete(self.kind.table, current["ID"])

        await self._store.update(remove)
