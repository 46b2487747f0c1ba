"""`stack deploy` and `stack rm` against a daemon, in the docker CLI's order and with its messages:
networks, secrets and configs first, then each service created or updated (an update sends the version
it read and keeps ForceUpdate); --prune removes the stack's services the files no longer name. The daemon
is reached through a small client protocol so this module needs no HTTP library."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from shoal.api.errors import FailedPrecondition, InvalidArgument, NotFound, ShoalError
from shoal.compose.convert import IMAGE_LABEL, convert_service
from shoal.compose.images import digest_warning, image_with_digest, image_with_tag
from shoal.compose.loader import Compose
from shoal.compose.objects import (
    NAMESPACE_LABEL,
    convert_configs,
    convert_networks,
    convert_secrets,
    is_external,
    is_user_defined,
    reference_name,
    scoped,
)

RESOLVE_ALWAYS, RESOLVE_CHANGED, RESOLVE_NEVER = "always", "changed", "never"
NOT_A_MANAGER = ('this node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect '
                 "this node to swarm and try again")


class EngineClient(Protocol):
    """The Engine API calls a stack needs. Errors: NotFound for 404, another ShoalError otherwise, each
    worded "Error response from daemon: ..." as the docker CLI prints them."""

    def get(self, path: str, params: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> Any: ...

    def post(self, path: str, body: Any, params: dict[str, Any] | None = None,
             headers: dict[str, str] | None = None) -> Any: ...

    def delete(self, path: str) -> None: ...


Echo = Callable[[str], None]


@dataclass
class DeployOptions:
    resolve_image: str = RESOLVE_ALWAYS
    prune: bool = False
    registry_auth: Callable[[str], str | None] | None = None  # image -> X-Registry-Auth, for --with-registry-auth


def namespace_filter(namespace: str | None = None) -> dict[str, str]:
    label = NAMESPACE_LABEL if namespace is None else f"{NAMESPACE_LABEL}={namespace}"
    return {"filters": json.dumps({"label": {label: True}})}


def stack_objects(client: EngineClient, kind: str, namespace: str) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = client.get(f"/{kind}", params=namespace_filter(namespace)) or []
    return objects


def _name(obj: dict[str, Any]) -> str:
    return str((obj.get("Spec") or {}).get("Name") or obj.get("Name") or "")


def check_manager(client: EngineClient) -> None:
    info = client.get("/info")
    if not (info.get("Swarm") or {}).get("ControlAvailable"):
        raise FailedPrecondition(NOT_A_MANAGER)


def remove_services(client: EngineClient, services: list[dict[str, Any]], out: Echo, err: Echo) -> bool:
    failed = False
    for service in sorted(services, key=_name):
        out(f"Removing service {_name(service)}")
        try:
            client.delete(f"/services/{service['ID']}")
        except ShoalError as exc:
            failed = True
            err(f"Failed to remove service {service['ID']}: {exc}")
    return failed


def _check_external_networks(client: EngineClient, compose: Compose, namespace: str) -> None:
    for name in convert_networks(compose, namespace).external:
        if not is_user_defined(name):
            continue
        try:
            found = client.get(f"/networks/{name}")
        except NotFound:
            raise NotFound(f'network "{name}" is declared as external, but could not be found. You need to create '
                           "a swarm-scoped network before the stack is deployed") from None
        if found.get("Scope") != "swarm":
            raise InvalidArgument(f'network "{name}" is declared as external, but it is not in the right scope: '
                                  f'"{found.get("Scope")}" instead of "swarm"')


def _check_external_objects(client: EngineClient, compose: Compose, namespace: str) -> None:
    """External secrets and configs a service uses must exist already (the CLI finds a missing one only
    after its first writes); the message is the CLI's, naming the first service that uses it."""
    for kind in ("secret", "config"):
        declared = compose.config.get(f"{kind}s") or {}
        external = {reference_name(compose, namespace, kind, name) for name in declared if is_external(declared[name])}
        missing = external - set(_ids(client, f"{kind}s", external))
        for service_name, service in sorted(compose.services.items()):
            for entry in service.get(f"{kind}s") or []:
                source = entry if isinstance(entry, str) else str(entry.get("source") or "")
                name = reference_name(compose, namespace, kind, source)
                if name in missing:
                    raise NotFound(f"service {service_name}: {kind} not found: {name}")


def _create_networks(client: EngineClient, compose: Compose, namespace: str, out: Echo) -> None:
    networks = convert_networks(compose, namespace)
    existing = {_name(n) for n in stack_objects(client, "networks", namespace)}
    for name, body in sorted(networks.to_create.items()):
        if name in existing:
            continue
        out(f"Creating network {name}")
        try:
            client.post("/networks/create", body)
        except ShoalError as exc:
            raise type(exc)(f"failed to create network {name}: {exc}") from None


def _create_or_update(client: EngineClient, kind: str, specs: list[dict[str, Any]], out: Echo) -> None:
    """Secrets and configs: an existing one is updated with the new spec (the daemon accepts it only when
    the data is unchanged, so a changed file fails with the daemon's message), a new one is created."""
    singular = kind[:-1]
    for spec in specs:
        try:
            current = client.get(f"/{kind}/{spec['Name']}")
        except NotFound:
            out(f"Creating {singular} {spec['Name']}")
            try:
                client.post(f"/{kind}/create", spec)
            except ShoalError as exc:
                raise type(exc)(f"failed to create {singular} {spec['Name']}: {exc}") from None
            continue
        try:
            client.post(f"/{kind}/{current['ID']}/update", spec, params={"version": current["Version"]["Index"]})
        except ShoalError as exc:
            raise type(exc)(f"failed to update {singular} {spec['Name']}: {exc}") from None


def _ids(client: EngineClient, kind: str, names: set[str]) -> dict[str, str]:
    if not names:
        return {}
    found = client.get(f"/{kind}", params={"filters": json.dumps({"name": sorted(names)})}) or []
    return {_name(obj): str(obj["ID"]) for obj in found if _name(obj) in names}


def _referenced(compose: Compose, namespace: str, kind: str) -> set[str]:
    names = set()
    for service in compose.services.values():
        for entry in service.get(f"{kind}s") or []:
            source = entry if isinstance(entry, str) else str(entry.get("source") or "")
            try:
                names.add(reference_name(compose, namespace, kind, source))
            except InvalidArgument:
                continue  # reported with the service's name by the converter
    return names


def _resolve(client: EngineClient, spec: dict[str, Any], auth: str | None) -> str | None:
    """Pin the image to the digest the registry reports (and the platforms it offers), as the docker
    client does; returns the CLI's warning when the registry cannot be asked."""
    image = spec["TaskTemplate"]["ContainerSpec"]["Image"]
    headers = {"X-Registry-Auth": auth} if auth else None
    try:
        found = client.get(f"/distribution/{image}/json", headers=headers)
    except ShoalError:
        return digest_warning(image)
    spec["TaskTemplate"]["ContainerSpec"]["Image"] = image_with_digest(image, found["Descriptor"]["digest"])
    platforms = [{"Architecture": "" if (p.get("architecture") or "").lower() == "arm" else p.get("architecture", ""),
                  "OS": p.get("os", "")} for p in found.get("Platforms") or []]
    if platforms:
        spec["TaskTemplate"].setdefault("Placement", {})["Platforms"] = platforms
    return None


class _AnyID(dict[str, str]):
    """Stands for the IDs of secrets and configs that do not exist yet in a dry conversion."""

    def __contains__(self, name: object) -> bool:
        return True

    def __missing__(self, name: str) -> str:
        return "(to be created)"


def check_stack(compose: Compose, namespace: str) -> None:
    """Converts every service once without the daemon, so a stack that cannot deploy (an undefined network,
    a bad mode, a healthcheck with both test and disable) is refused before anything is written. (The
    docker CLI finds these only after it has created the stack's networks, secrets and configs.)"""
    convert_networks(compose, namespace)
    for name, service in sorted(compose.services.items()):
        convert_service(name, service, compose, namespace, _AnyID(), _AnyID())


def deploy(client: EngineClient, compose: Compose, namespace: str, options: DeployOptions, out: Echo,
           err: Echo) -> list[str]:
    """Deploys the stack; returns the IDs of its services."""
    check_manager(client)
    check_stack(compose, namespace)
    convert_secrets(compose, namespace)  # reads every file now: a missing one fails before any write
    convert_configs(compose, namespace)
    _check_external_networks(client, compose, namespace)
    _check_external_objects(client, compose, namespace)
    if options.prune:
        stale = [s for s in stack_objects(client, "services", namespace)
                 if _name(s).removeprefix(f"{namespace}_") not in compose.services]
        remove_services(client, stale, out, err)
    _create_networks(client, compose, namespace, out)
    _create_or_update(client, "secrets", convert_secrets(compose, namespace), out)
    _create_or_update(client, "configs", convert_configs(compose, namespace), out)
    secret_ids = _ids(client, "secrets", _referenced(compose, namespace, "secret"))
    config_ids = _ids(client, "configs", _referenced(compose, namespace, "config"))
    specs = {name: convert_service(name, service, compose, namespace, secret_ids, config_ids)
             for name, service in sorted(compose.services.items())}
    existing = {_name(s): s for s in stack_objects(client, "services", namespace)}
    ids = []
    for name, spec in specs.items():
        full_name = scoped(namespace, name)
        container = spec["TaskTemplate"]["ContainerSpec"]
        image = container["Image"]
        auth = options.registry_auth(image) if options.registry_auth else None
        headers = {"X-Registry-Auth": auth} if auth else None
        current = existing.get(full_name)
        if current is None:
            out(f"Creating service {full_name}")
            container["Image"] = image_with_tag(image)
            if options.resolve_image in (RESOLVE_ALWAYS, RESOLVE_CHANGED):
                _resolve(client, spec, auth)  # the CLI prints no warning on create
            try:
                created = client.post("/services/create", spec, headers=headers)
            except ShoalError as exc:
                raise type(exc)(f"failed to create service {full_name}: {exc}") from None
            ids.append(str(created["ID"]))
            continue
        out(f"Updating service {full_name} (id: {current['ID']})")
        query = options.resolve_image == RESOLVE_ALWAYS
        if image != current["Spec"]["Labels"].get(IMAGE_LABEL):
            query = query or options.resolve_image == RESOLVE_CHANGED
        elif options.resolve_image != RESOLVE_ALWAYS:
            # Unchanged image: keep what an earlier deploy pinned, or the service would update for nothing.
            container["Image"] = current["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
        container["Image"] = image_with_tag(container["Image"])
        spec["TaskTemplate"]["ForceUpdate"] = current["Spec"]["TaskTemplate"].get("ForceUpdate", 0)
        warnings = [w for w in [_resolve(client, spec, auth) if query else None] if w]
        try:
            answer = client.post(f"/services/{current['ID']}/update", spec,
                                 params={"version": current["Version"]["Index"]}, headers=headers)
        except ShoalError as exc:
            raise type(exc)(f"failed to update service {full_name}: {exc}") from None
        for warning in [*((answer or {}).get("Warnings") or []), *warnings]:
            err(warning)
        ids.append(str(current["ID"]))
    return ids


def remove(client: EngineClient, namespaces: list[str], out: Echo, err: Echo) -> list[str]:
    """Removes each stack's services, secrets, configs, then networks; returns the errors to report."""
    errors = []
    for namespace in namespaces:
        found = {kind: stack_objects(client, kind, namespace)
                 for kind in ("services", "networks", "secrets", "configs")}
        if not any(found.values()):
            err(f"Nothing found in stack: {namespace}")
            continue
        failed = remove_services(client, found["services"], out, err)
        for kind in ("secrets", "configs", "networks"):
            for obj in found[kind]:
                out(f"Removing {kind[:-1]} {_name(obj)}")
                try:
                    client.delete(f"/{kind}/{obj.get('ID') or obj.get('Id')}")
                except ShoalError as exc:
                    failed = True
                    err(f"Failed to remove {kind[:-1]} {obj.get('ID') or obj.get('Id')}: {exc}")
        if failed:
            errors.append(f"failed to remove some resources from stack: {namespace}")
    return errors


def list_stacks(client: EngineClient) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for service in client.get("/services", params=namespace_filter()) or []:
        name = (service["Spec"].get("Labels") or {}).get(NAMESPACE_LABEL)
        if name is None:
            raise FailedPrecondition(f"cannot get label {NAMESPACE_LABEL} for service {service['ID']}")
        counts[name] = counts.get(name, 0) + 1
    return sorted(counts.items())
