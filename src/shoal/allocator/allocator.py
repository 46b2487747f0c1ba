"""The allocator: allocates networks the API did not (the ingress network of an older init) and task
subnets to nodes made without one, gives each service its endpoint (published ports, VIPs), and moves
new tasks to PENDING ("pending task scheduling") with their service's endpoint and an address on each
network they join, and keeps each node's load-balancer address on the networks it needs
(allocator.lbaddresses). (Networks and nodes normally get theirs in the transaction that creates them.)

It writes an object only when a client would see the change: a service with no published port and
no VIP is never written (Swarm writes nothing there either), so an update sent with the version just
read is not refused as out of sequence. For the same reason the nodes' load-balancer addresses go to a
table of their own, never onto the node object (whose Version a client sends back with `node update`)."""

from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import Any

from shoal.allocator.addresses import Used, holds_addresses, task_addresses
from shoal.allocator.ipam import free_address
from shoal.allocator.lbaddresses import all_addresses_in_use, records, wanted_records
from shoal.allocator.networks import allocate_network, ip_range_of, is_allocated, subnet_of
from shoal.allocator.nodesubnets import TASK_SUBNET, missing_subnets
from shoal.allocator.ports import INGRESS, allocate_ports, endpoint_mode, normalized_port, spec_ports
from shoal.allocator.vips import attached_networks, plan_vips
from shoal.api import errors, states
from shoal.api.objects import NETWORKS, NODE_ATTACHMENTS, NODES, SERVICES, TASKS, Obj, clone, dig
from shoal.base.clock import rfc3339
from shoal.planner import Plan, PlanBuilder
from shoal.store.memory import ReadView
from shoal.store.watch import Event

PENDING_MESSAGE = "pending task scheduling"


class AllocatorPlanner:
    name = "allocator"

    def interested(self, event: Event) -> bool:
        if event.table == TASKS:  # new tasks wait on the allocator; of status reports, only those
            # that change which nodes need a load-balancer address on a network
            if event.action != "delete" and dig(event.obj, "Status", "State") == states.NEW:
                return True
            return _lb_footprint(event.obj if event.action != "delete" else None) != _lb_footprint(event.old)
        if event.table == NODES:  # a new node gets its address on ingress (and a task subnet if it has
            return event.action in ("create", "delete")  # none); a removed one frees its addresses
        return event.table in (SERVICES, NETWORKS)

    def plan(self, view: ReadView, now: datetime) -> Plan:
        builder = PlanBuilder()
        if plan_networks(view, builder):
            return builder.plan  # the next pass allocates addresses on the network as stored
        plan_node_subnets(view, builder)
        used = all_addresses_in_use(view)
        endpoints = plan_endpoints(view, builder, used)
        plan_pending_tasks(view, builder, endpoints, used, now)
        plan_lb_addresses(view, builder, used)
        return builder.plan


def _lb_footprint(task: Obj | None) -> tuple[str, tuple[str, ...]] | None:
    """What of a task decides the nodes' load-balancer addresses: its node and its networks while it
    has not stopped."""
    if task is None or not task.get("NodeID") or not holds_addresses(task):
        return None
    networks = tuple(str(dig(a, "Network", "ID", default="")) for a in task.get("NetworksAttachments") or [])
    return (str(task["NodeID"]), networks) if networks else None


def plan_lb_addresses(view: ReadView, builder: PlanBuilder, used: Used) -> None:
    """Each node's load-balancer addresses (allocator.lbaddresses), written only where they change:
    a record per node from its first address on (kept when it holds none any more: it says the node
    has been given its ingress address once), deleted once the node is gone."""
    stored = {str(record["ID"]): record for record in records(view)}
    for node_id, attachments in wanted_records(view, used).items():
        record = stored.pop(node_id, None)
        if record is None:
            if attachments:
                builder.create(NODE_ATTACHMENTS, {"ID": node_id, "Attachments": attachments})
        elif record.get("Attachments") != attachments:
            builder.edit(NODE_ATTACHMENTS, record)["Attachments"] = attachments
    for record in stored.values():  # nodes removed from the swarm
        builder.delete(NODE_ATTACHMENTS, record)


def plan_networks(view: ReadView, builder: PlanBuilder) -> bool:
    """Allocate one network that has no subnet yet (one per pass: each reads the subnets in use)."""
    for network in view.objects(NETWORKS):
        if is_allocated(network):
            continue
        try:
            allocated = allocate_network(view, network)
        except errors.ShoalError:
            continue  # e.g. the pool is full: it stays unallocated, its tasks wait
        edited = builder.edit(NETWORKS, network)
        edited["IPAMOptions"] = allocated["IPAMOptions"]
        edited["DriverState"] = allocated["DriverState"]
        return True
    return False


def plan_node_subnets(view: ReadView, builder: PlanBuilder) -> None:
    """Nodes get their task bridge subnet when created; one made without (by an older shoald) gets
    it here, once."""
    for node_id, subnet in missing_subnets(view).items():
        node = view.get(NODES, node_id)
        if node is not None:
            builder.edit(NODES, node)[TASK_SUBNET] = subnet


def plan_endpoints(view: ReadView, builder: PlanBuilder, used: Used) -> dict[str, Obj | None]:
    """Allocate every service's endpoint; returns service id → Endpoint as it will be stored."""
    services = sorted(view.objects(SERVICES), key=lambda s: (s.get("CreatedAt", ""), s["ID"]))
    # Ports: explicit ports of every spec are taken up front, then dynamic ones in creation order.
    used_ports: set[tuple[str, int]] = set()
    for service in services:
        for port in spec_ports(service.get("Spec")) + [
            normalized_port(p) for p in dig(service, "Endpoint", "Ports", default=None) or []
        ]:
            if port["PublishMode"] == INGRESS and port["PublishedPort"]:
                used_ports.add((port["Protocol"], port["PublishedPort"]))
    endpoints: dict[str, Obj | None] = {}
    for service in services:
        own = {
            (p["Protocol"], p["PublishedPort"])
            for p in map(normalized_port, dig(service, "Endpoint", "Ports", default=None) or [])
            if p["PublishMode"] == INGRESS
        }
        others_used = used_ports - own | {
            (p["Protocol"], p["PublishedPort"]) for p in spec_ports(service.get("Spec")) if p["PublishedPort"]
        }
        ports = allocate_ports(service, others_used)
        used_ports |= {(p["Protocol"], p["PublishedPort"]) for p in ports if p["PublishMode"] == INGRESS}
        endpoint = _endpoint(view, service, ports, used)
        if endpoint is None:
            endpoints[service["ID"]] = service.get("Endpoint")
            continue
        endpoints[service["ID"]] = endpoint
        if service.get("Endpoint") != endpoint:
            builder.edit(SERVICES, service)["Endpoint"] = endpoint
    return endpoints


def _endpoint(view: ReadView, service: Obj, ports: list[dict[str, Any]], used: Used) -> Obj | None:
    """The Endpoint the service should have, or None when what it has already needs no write (it
    publishes nothing and holds no VIP)."""
    vips: list[Obj] = []
    if endpoint_mode(service.get("Spec")) == "vip":
        networks = [network for network, _ in attached_networks(view, service, ports)]
        vips = plan_vips(view, service, networks, used)
    current = service.get("Endpoint") or {}
    if not ports and not vips and not current.get("Ports") and not current.get("VirtualIPs"):
        return None
    endpoint: Obj = {"Spec": clone(dig(service, "Spec", "EndpointSpec", default=None) or {})}
    if ports:
        endpoint["Ports"] = ports
    if vips:
        endpoint["VirtualIPs"] = vips
    return endpoint


def plan_pending_tasks(view: ReadView, builder: PlanBuilder, endpoints: dict[str, Obj | None], used: Used,
                       now: datetime) -> None:
    """NEW → PENDING, carrying the service's endpoint and the task's network attachments. A task
    whose networks are not allocated yet stays NEW until they are."""
    stamp = rfc3339(now)
    for task in view.objects(TASKS):
        if dig(task, "Status", "State") != states.NEW:
            continue
        service = view.get(SERVICES, str(task.get("ServiceID", "")))
        attachments = _attachments(view, service, task, used) if service is not None else []
        if attachments is None:
            continue
        edited = builder.edit(TASKS, task)
        edited["Status"] = {"Timestamp": stamp, "State": states.PENDING, "Message": PENDING_MESSAGE}
        endpoint = endpoints.get(str(task.get("ServiceID", "")))
        if endpoint is not None and (endpoint.get("Ports") or endpoint.get("VirtualIPs")):
            edited["Endpoint"] = clone(endpoint)
        if attachments:
            edited["NetworksAttachments"] = attachments


def _attachments(view: ReadView, service: Obj, task: Obj, used: Used) -> list[Obj] | None:
    """One attachment per network the task joins, each with an address of its own (kept if the task
    already has one); None when a network is not allocated yet or has no address left."""
    held = dict(task_addresses(task))
    attachments: list[Obj] = []
    for network, config in attached_networks(view, service, spec_ports(service.get("Spec"))):
        subnet = subnet_of(network)
        if subnet is None or not is_allocated(network):
            return None
        network_id = str(network["ID"])
        taken = used.setdefault(network_id, set())
        address = f"{ipaddress.IPv4Address(held[network_id])}/{subnet.prefixlen}" if network_id in held else None
        if address is None:
            address = free_address(subnet, taken, ip_range_of(network))
        if address is None:
            return None
        attachment: Obj = {"Network": clone(network), "Addresses": [address]}
        if config.get("Aliases"):
            attachment["Aliases"] = list(config["Aliases"])
        attachments.append(attachment)
    return attachments
