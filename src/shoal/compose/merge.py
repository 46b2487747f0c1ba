"""Several compose files (-c a.yml -c b.yml) merged into one, later files overriding earlier ones as the
CLI merges them: services field by field (mappings merged, lists such as ports, volumes, secrets and
configs merged by their key, other lists replaced); networks, volumes, secrets and configs by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shoal.compose.values import go_str, mapping

_MAPPINGS = ("environment", "labels", "sysctls", "extra_hosts")


def _keyed(items: list[Any], key: Callable[[Any], Any]) -> dict[Any, Any]:
    return {key(item): item for item in items}


def _volume_key(item: Any) -> Any:
    if isinstance(item, dict):
        return item.get("target")
    parts = str(item).split(":")
    return parts[1] if len(parts) > 1 else parts[0]


def _source_key(item: Any) -> Any:
    return item.get("source") if isinstance(item, dict) else item


def _port_key(item: Any) -> Any:
    return go_str(item) if not isinstance(item, dict) else tuple(sorted((k, go_str(v)) for k, v in item.items()))


_LIST_KEYS: dict[str, Callable[[Any], Any]] = {"volumes": _volume_key, "secrets": _source_key,
                                               "configs": _source_key, "ports": _port_key}


def _as_map(networks: Any) -> dict[str, Any]:
    return dict(networks) if isinstance(networks, dict) else dict.fromkeys(networks)


def _merge_value(key: str, base: Any, override: Any) -> Any:
    if key in _MAPPINGS and base is not None and override is not None:
        separator = ":" if key == "extra_hosts" and isinstance(base, list) else "="
        return {**mapping(base, separator, allow_nil=True), **mapping(override, separator, allow_nil=True)}
    if key in _LIST_KEYS and isinstance(base, list) and isinstance(override, list):
        return list({**_keyed(base, _LIST_KEYS[key]), **_keyed(override, _LIST_KEYS[key])}.values())
    if key == "networks" and base is not None and override is not None:
        return {**_as_map(base), **_as_map(override)}
    if isinstance(base, dict) and isinstance(override, dict):
        return merge_dicts(base, override)
    return override


def merge_dicts(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        merged[key] = _merge_value(key, base[key], value) if key in base else value
    return merged


def merge_files(configs: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for config in configs:
        for section, value in config.items():
            if section == "services" and isinstance(merged.get(section), dict):
                services = dict(merged[section])
                for name, service in (value or {}).items():
                    services[name] = merge_dicts(services[name], service) if name in services else service
                merged[section] = services
            elif section in ("networks", "volumes", "secrets", "configs") and isinstance(merged.get(section), dict):
                merged[section] = {**merged[section], **(value or {})}
            else:
                merged[section] = value
    return merged
