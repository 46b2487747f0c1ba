"""Published ports: defaults filled in, ingress ports without a number get one from the dynamic range,
and a port already published by another service is refused at API time with swarmkit's wording."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from shoal.api import errors
from shoal.api.objects import SERVICES, Obj, dig, service_name
from shoal.store.memory import ReadView

DYNAMIC_PORT_START = 30000
DYNAMIC_PORT_END = 32767  # inclusive, as Swarm's ingress range
INGRESS = "ingress"
HOST = "host"


def normalized_port(port: dict[str, Any]) -> dict[str, Any]:
    """A port config with Docker's defaults made explicit (tcp, ingress)."""
    out: dict[str, Any] = {}
    if port.get("Name"):
        out["Name"] = port["Name"]
    out["Protocol"] = port.get("Protocol") or "tcp"
    out["TargetPort"] = int(port.get("TargetPort") or 0)
    out["PublishedPort"] = int(port.get("PublishedPort") or 0)
    out["PublishMode"] = port.get("PublishMode") or INGRESS
    return out


def spec_ports(spec: Obj | None) -> list[dict[str, Any]]:
    """The service spec's EndpointSpec ports, normalized."""
    return [normalized_port(p) for p in dig(spec or {}, "EndpointSpec", "Ports", default=[])]


def endpoint_mode(spec: Obj | None) -> str:
    return str(dig(spec or {}, "EndpointSpec", "Mode", default="") or "vip")


def _port_key(port: dict[str, Any]) -> tuple[str, int]:
    return (str(port.get("Protocol") or "tcp"), int(port.get("PublishedPort") or 0))


def ingress_ports_in_use(services: Iterable[Obj], skip_service_id: str = "") -> set[tuple[str, int]]:
    """(protocol, port) pairs other services publish through the routing mesh."""
    used: set[tuple[str, int]] = set()
    for service in services:
        if service["ID"] == skip_service_id:
            continue
        for port in dig(service, "Endpoint", "Ports", default=[]) + spec_ports(service.get("Spec")):
            port = normalized_port(port)
            if port["PublishMode"] == INGRESS and port["PublishedPort"]:
                used.add(_port_key(port))
    return used


def allocate_ports(service: Obj, used: set[tuple[str, int]]) -> list[dict[str, Any]]:
    """The Endpoint.Ports a service should have. Dynamic ports it already holds are kept (matched by
    protocol and target port); new ones take the lowest free number. `used` is updated in place."""
    previous = [normalized_port(p) for p in dig(service, "Endpoint", "Ports", default=[])]
    held = {
        (p["Protocol"], p["TargetPort"]): p["PublishedPort"]
        for p in previous
        if p["PublishMode"] == INGRESS and p["PublishedPort"] >= DYNAMIC_PORT_START
    }
    result: list[dict[str, Any]] = []
    for port in spec_ports(service.get("Spec")):
        if port["PublishMode"] == INGRESS and not port["PublishedPort"]:
            kept = held.pop((port["Protocol"], port["TargetPort"]), 0)
            if kept and (port["Protocol"], kept) not in used:
                port["PublishedPort"] = kept
            else:
                port["PublishedPort"] = _free_dynamic_port(port["Protocol"], used)
        if port["PublishMode"] == INGRESS and port["PublishedPort"]:
            used.add(_port_key(port))
        result.append(port)
    return result


def _free_dynamic_port(protocol: str, used: set[tuple[str, int]]) -> int:
    for number in range(DYNAMIC_PORT_START, DYNAMIC_PORT_END + 1):
        if (protocol, number) not in used:
            return number
    return 0  # range exhausted: the port stays unpublished rather than clash


def check_port_conflicts(view: ReadView, spec: Obj, service_id: str = "") -> None:
    """Refuse a spec whose published ports another service already publishes. Call it inside the
    create/update transaction (service_id "" for a create). Two host-mode ports may share a number:
    the scheduler keeps them on different nodes."""
    requested = [p for p in spec_ports(spec) if p["PublishedPort"]]
    if not requested:
        return
    for other in view.objects(SERVICES):
        if service_id and other["ID"] == service_id:
            continue
        theirs = spec_ports(other.get("Spec")) + [
            normalized_port(p) for p in dig(other, "Endpoint", "Ports", default=[])
        ]
        for mine in requested:
            for port in theirs:
                if _port_key(port) != _port_key(mine):
                    continue
                if mine["PublishMode"] == HOST and port["PublishMode"] == HOST:
                    continue
                kind = "an ingress port" if port["PublishMode"] == INGRESS else "a host-published port"
                raise errors.InvalidArgument(
                    f"port '{mine['PublishedPort']}' is already in use by service "
                    f"'{service_name(other)}' ({other['ID']}) as {kind}",
                    grpc=True,
                )
