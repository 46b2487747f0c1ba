"""A task container's ports in the shapes `docker inspect` shows them (`docker port` reads
NetworkSettings.Ports), as dockerd does for a swarm task: what was asked for (Config.ExposedPorts,
HostConfig.PortBindings, from the task's host-mode ports) and what is bound now (NetworkSettings.Ports)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from shoal.executor.base import PortBinding, PortSpec

Json = dict[str, Any]
PortMap = dict[str, list[dict[str, str]] | None]  # "80/tcp" → its bindings; None: exposed only


def port_key(target: int, protocol: str) -> str:
    return f"{target}/{protocol}"


def requested_bindings(bindings: Iterable[PortBinding]) -> dict[str, list[dict[str, str]]]:
    """HostConfig.PortBindings as Swarm's executor asks dockerd for them: no host address, one entry per
    container port ({} when none)."""
    asked: dict[str, list[dict[str, str]]] = {}
    for binding in bindings:
        asked.setdefault(binding.key, [{"HostIp": "", "HostPort": str(binding.host_port)}])
    return asked


def exposed_ports(keys: Iterable[str]) -> Json | None:
    """Config.ExposedPorts ({"80/tcp": {}}); None (left out) when there is none."""
    shown: Json = {key: {} for key in keys}
    return dict(sorted(shown.items())) or None


def network_ports(exposed: Iterable[PortSpec], bindings: Iterable[PortBinding]) -> PortMap:
    """NetworkSettings.Ports of a container: each bound port with every address it is bound on, and an
    exposed port nothing binds as null ({} for a container with neither, or one not running)."""
    bound: dict[str, list[dict[str, str]]] = {}
    for binding in bindings:
        bound.setdefault(binding.key, []).append({"HostIp": binding.host_ip, "HostPort": str(binding.host_port)})
    shown: PortMap = dict(bound)
    for port in exposed:
        shown.setdefault(port_key(port.target, port.protocol), None)
    return shown


def bindings_from_network_ports(ports: object) -> tuple[PortBinding, ...]:
    """The bindings an engine reports in NetworkSettings.Ports (the inverse of network_ports); entries
    that are not well formed are skipped."""
    found: list[PortBinding] = []
    for key, entries in (ports.items() if isinstance(ports, dict) else ()):
        number, _, protocol = str(key).partition("/")
        for entry in entries if isinstance(entries, list) else ():
            host_port = str(entry.get("HostPort") or "") if isinstance(entry, dict) else ""
            if number.isdigit() and host_port.isdigit():
                found.append(PortBinding(int(number), protocol or "tcp", int(host_port),
                                         str(entry.get("HostIp") or "0.0.0.0")))
    return tuple(found)
