"""A stack's networks, secrets and configs as the CLI converts them: names scoped to the stack unless the
file names them, the namespace label on each, external ones only looked up."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shoal.api.errors import InvalidArgument
from shoal.compose.loader import Compose
from shoal.compose.values import go_str, mapping

NAMESPACE_LABEL = "com.docker.stack.namespace"
DEFAULT_NETWORK_DRIVER = "overlay"
# Networks that exist on every node without being created (not "user defined" in Docker's words).
BUILTIN_NETWORKS = ("default", "bridge", "host", "none")


def scoped(namespace: str, name: str) -> str:
    return f"{namespace}_{name}"


def stack_labels(namespace: str, labels: Any) -> dict[str, str]:
    return {**{k: v or "" for k, v in mapping(labels).items()}, NAMESPACE_LABEL: namespace}


def is_user_defined(network: str) -> bool:
    return network not in BUILTIN_NETWORKS and not network.startswith("container:")


def service_networks(compose: Compose) -> list[str]:
    """The networks the services use ("default" for a service that names none)."""
    used: set[str] = set()
    for service in compose.services.values():
        used.update(service.get("networks") or ["default"])
    return sorted(used)


@dataclass
class StackNetworks:
    to_create: dict[str, dict[str, Any]]  # name -> the /networks/create body
    external: list[str]


def external_name(name: str, declared: dict[str, Any], kind: str) -> str:
    external = declared.get("external")
    if isinstance(external, dict) and external.get("name"):
        if declared.get("name"):
            raise InvalidArgument(f"{kind} {name}: {kind}.external.name and {kind}.name conflict; only use "
                                  f"{kind}.name")
        return str(external["name"])
    return str(declared.get("name") or name)


def is_external(declared: dict[str, Any] | None) -> bool:
    return bool(declared and declared.get("external"))


def convert_networks(compose: Compose, namespace: str) -> StackNetworks:
    declared_all = compose.config.get("networks") or {}
    result = StackNetworks({}, [])
    for name in service_networks(compose):
        declared = declared_all.get(name) or {}
        if is_external(declared):
            result.external.append(external_name(name, declared, "network"))
            continue
        ipam = declared.get("ipam") or {}
        body: dict[str, Any] = {
            "Name": declared.get("name") or scoped(namespace, name),
            "Driver": declared.get("driver") or DEFAULT_NETWORK_DRIVER, "Scope": "", "IPAM": None,
            "Internal": bool(declared.get("internal")), "Attachable": bool(declared.get("attachable")),
            "Ingress": False, "ConfigOnly": False, "ConfigFrom": None,
            "Options": {k: go_str(v) for k, v in (declared.get("driver_opts") or {}).items()} or None,
            "Labels": stack_labels(namespace, declared.get("labels")), "CheckDuplicate": True,
        }
        if ipam.get("driver") or ipam.get("config"):
            body["IPAM"] = {"Driver": ipam.get("driver") or "",
                            "Config": [{"Subnet": entry.get("subnet", "")} for entry in ipam.get("config") or []],
                            "Options": None}
        result.to_create[body["Name"]] = body
    return result


def _object_name(namespace: str, name: str, declared: dict[str, Any]) -> str:
    return str(declared.get("name") or scoped(namespace, name))


def _file_data(declared: dict[str, Any], working_dir: Path) -> bytes:
    path = Path(os.path.normpath(os.path.join(working_dir, str(declared.get("file") or ""))))
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InvalidArgument(f"open {path}: no such file or directory") from None
    except IsADirectoryError:
        raise InvalidArgument(f"read {path}: is a directory") from None


def convert_secrets(compose: Compose, namespace: str) -> list[dict[str, Any]]:
    specs = []
    for name, declared in sorted((compose.config.get("secrets") or {}).items()):
        declared = declared or {}
        if is_external(declared):
            continue
        if declared.get("driver") and declared.get("file"):
            raise InvalidArgument(f"secret {name}: secret.driver and secret.file conflict; only use secret.driver")
        data = b"" if declared.get("driver") else _file_data(declared, compose.working_dir)
        spec: dict[str, Any] = {"Name": _object_name(namespace, name, declared),
                                "Labels": stack_labels(namespace, declared.get("labels")),
                                "Data": base64.b64encode(data).decode()}
        if declared.get("driver"):
            spec["Driver"] = {"Name": declared["driver"], "Options": declared.get("driver_opts")}
        if declared.get("template_driver"):
            spec["Templating"] = {"Name": declared["template_driver"]}
        specs.append(spec)
    return specs


def convert_configs(compose: Compose, namespace: str) -> list[dict[str, Any]]:
    specs = []
    for name, declared in sorted((compose.config.get("configs") or {}).items()):
        declared = declared or {}
        if is_external(declared):
            continue
        spec: dict[str, Any] = {"Name": _object_name(namespace, name, declared),
                                "Labels": stack_labels(namespace, declared.get("labels")),
                                "Data": base64.b64encode(_file_data(declared, compose.working_dir)).decode()}
        if declared.get("template_driver"):
            spec["Templating"] = {"Name": declared["template_driver"]}
        specs.append(spec)
    return specs


def reference_name(compose: Compose, namespace: str, kind: str, source: str) -> str:
    """The swarm name a service's secrets/configs entry points at: "undefined secret" when the file does
    not declare it."""
    declared_all = compose.config.get(f"{kind}s") or {}
    if source not in declared_all:
        raise InvalidArgument(f'undefined {kind} "{source}"')
    declared = declared_all[source] or {}
    if is_external(declared):
        return external_name(source, declared, kind)
    return _object_name(namespace, source, declared)
