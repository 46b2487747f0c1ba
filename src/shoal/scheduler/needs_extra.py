"""Two things a task may need of a node beyond CPU and memory, as swarmkit checks them: generic
resources (`--generic-resource gpu=1`: a count of some kind the node advertises, as discrete amounts or
as named items) and plugins (a log driver or a volume driver the node's engine must have)."""

from __future__ import annotations

from collections import Counter

from shoal.api.objects import Obj, dig

# Log drivers that need no plugin check (swarmkit skips "none"; an empty name is the engine default).
_NO_PLUGIN_LOG_DRIVERS = {"", "none"}


def generic_reservations(task_spec: Obj | None) -> Counter[str]:
    """{kind: count} a task spec reserves (tasks ask for discrete counts only)."""
    wanted: Counter[str] = Counter()
    for item in dig(task_spec or {}, "Resources", "Reservations", "GenericResources", default=None) or []:
        discrete = item.get("DiscreteResourceSpec") or {}
        if discrete.get("Kind"):
            wanted[str(discrete["Kind"])] += int(discrete.get("Value") or 0)
    return wanted


def generic_offered(node: Obj) -> Counter[str]:
    """{kind: count} a node advertises: discrete amounts plus one per named item."""
    offered: Counter[str] = Counter()
    for item in dig(node, "Description", "Resources", "GenericResources", default=None) or []:
        discrete = item.get("DiscreteResourceSpec") or {}
        named = item.get("NamedResourceSpec") or {}
        if discrete.get("Kind"):
            offered[str(discrete["Kind"])] += int(discrete.get("Value") or 0)
        elif named.get("Kind"):
            offered[str(named["Kind"])] += 1
    return offered


def required_plugins(task_spec: Obj | None) -> set[tuple[str, str]]:
    """(type, name) of the plugins a task needs on its node: its log driver, its volumes' drivers."""
    needed: set[tuple[str, str]] = set()
    log_driver = str(dig(task_spec or {}, "LogDriver", "Name", default="") or "")
    if log_driver not in _NO_PLUGIN_LOG_DRIVERS:
        needed.add(("Log", log_driver))
    for mount in dig(task_spec or {}, "ContainerSpec", "Mounts", default=None) or []:
        driver = dig(mount, "VolumeOptions", "DriverConfig", "Name", default="")
        if mount.get("Type") == "volume" and driver:
            needed.add(("Volume", str(driver)))
    return needed


def node_plugins(node: Obj) -> set[tuple[str, str]]:
    return {(str(p.get("Type", "")), str(p.get("Name", "")))
            for p in dig(node, "Description", "Engine", "Plugins", default=None) or []}
