"""The allocator: gives each service its endpoint (published ports, VIPs) and moves new tasks to
PENDING ("pending task scheduling") once their service's endpoint is settled, copying it into the task."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shoal.allocator.ports import INGRESS, allocate_ports, endpoint_mode, normalized_port, spec_ports
from shoal.allocator.vips import (
    INGRESS_NETWORK_NAME,
    addresses_in_use,
    allocate_vip,
    network_id_and_subnet,
)
from shoal.api import states
from shoal.api.objects import NETWORKS, SERVICES, TASKS, Obj, clone, dig
from shoal.base.clock import rfc3339
from shoal.planner import Plan, PlanBuilder
from shoal.store.memory import ReadView
from shoal.store.watch import Event

PENDING_MESSAGE = "pending task scheduling"


class AllocatorPlanner:
    name = "allocator"

    def interested(self, event: Event) -> bool:
        if event.table == TASKS:  # only new tasks wait on the allocator; status reports do not
            return event.action != "delete" and dig(event.obj, "Status", "State") == states.NEW
        return event.table in (SERVICES, NETWORKS)

    def plan(self, view: ReadView, now: datetime) -> Plan:
        builder = PlanBuilder()
        endpoints = plan_endpoints(view, builder)
        plan_pending_tasks(view, builder, endpoints, now)
        return builder.plan


def plan_endpoints(view: ReadView, builder: PlanBuilder) -> dict[str, Obj]:
    """Allocate every service's endpoint; returns service id → Endpoint as it will be stored."""
    services = sorted(view.objects(SERVICES), key=lambda s: (s.get("CreatedAt", ""), s["ID"]))
    # Ports: explicit ports of every spec are taken up front, then dynamic ones in creation order.
    used_ports: set[tuple[str, int]] = set()
    for service in services:
        for port in spec_ports(service.get("Spec")):
            if port["PublishMode"] == INGRESS and port["PublishedPort"]:
                used_ports.add((port["Protocol"], port["PublishedPort"]))
        for port in dig(service, "Endpoint", "Ports", default=[]):
            port = normalized_port(port)
            if port["PublishMode"] == INGRESS and port["PublishedPort"]:
                used_ports.add((port["Protocol"], port["PublishedPort"]))
    used_addresses = addresses_in_use(services)
    endpoints: dict[str, Obj] = {}
    for service in services:
        own = {
            (p["Protocol"], p["PublishedPort"])
            for p in map(normalized_port, dig(service, "Endpoint", "Ports", default=[]))
            if p["PublishMode"] == INGRESS
        }
        others_used = used_ports - own | {
            (p["Protocol"], p["PublishedPort"]) for p in spec_ports(service.get("Spec")) if p["PublishedPort"]
        }
        ports = allocate_ports(service, others_used)
        used_ports |= {(p["Protocol"], p["PublishedPort"]) for p in ports if p["PublishMode"] == INGRESS}
        endpoint = _endpoint(view, service, ports, used_addresses)
        endpoints[service["ID"]] = endpoint
        if service.get("Endpoint") != endpoint:
            builder.edit(SERVICES, service)["Endpoint"] = endpoint
    return endpoints


def _endpoint(view: ReadView, service: Obj, ports: list[dict[str, Any]], used_addresses: dict[str, set[str]]) -> Obj:
    endpoint: Obj = {"Spec": clone(dig(service, "Spec", "EndpointSpec", default={}))}
    if ports:
        endpoint["Ports"] = ports
    if endpoint_mode(service.get("Spec")) != "vip":
        return endpoint
    held = {str(vip.get("NetworkID")): vip for vip in dig(service, "Endpoint", "VirtualIPs", default=[])}
    vips: list[Obj] = []
    for target in _attached_networks(service, ports):
        network_id, subnet = network_id_and_subnet(view, target)
        if any(v["NetworkID"] == network_id for v in vips):
            continue
        if network_id in held:
            vips.append(dict(held[network_id]))
            continue
        addr = allocate_vip(subnet, used_addresses.setdefault(network_id, set()))
        if addr is not None:
            vips.append({"NetworkID": network_id, "Addr": addr})
    if vips:
        endpoint["VirtualIPs"] = vips
    return endpoint


def _attached_networks(service: Obj, ports: list[dict[str, Any]]) -> list[str]:
    """Ingress first when the service publishes through the mesh, then the networks it joins."""
    targets: list[str] = []
    if any(p["PublishMode"] == INGRESS for p in ports):
        targets.append(INGRESS_NETWORK_NAME)
    attachments = dig(service, "Spec", "TaskTemplate", "Networks", default=None) or dig(
        service, "Spec", "Networks", default=[]
    )
    for attachment in attachments:
        target = str(attachment.get("Target", ""))
        if target and target not in targets:
            targets.append(target)
    return targets


def plan_pending_tasks(view: ReadView, builder: PlanBuilder, endpoints: dict[str, Obj], now: datetime) -> None:
    """NEW → PENDING, carrying the service's endpoint so the task knows its ports and VIPs."""
    stamp = rfc3339(now)
    for task in view.objects(TASKS):
        if dig(task, "Status", "State") != states.NEW:
            continue
        edited = builder.edit(TASKS, task)
        edited["Status"] = {"Timestamp": stamp, "State": states.PENDING, "Message": PENDING_MESSAGE}
        endpoint = endpoints.get(str(task.get("ServiceID", "")))
        if endpoint is not None and (endpoint.get("Ports") or endpoint.get("VirtualIPs")):
            edited["Endpoint"] = clone(endpoint)
