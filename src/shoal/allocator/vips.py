"""Virtual IPs: a VIP-mode service gets one address on each network it is attached to (the ingress
network first when it publishes through the routing mesh), from that network's allocated subnet. A
VIP is kept while the service stays on the network; deleting the service frees it."""

from __future__ import annotations

from typing import Any

from shoal.allocator.addresses import Used
from shoal.allocator.ipam import free_address
from shoal.allocator.networks import find_network, ingress_of, ip_range_of, is_allocated, subnet_of
from shoal.allocator.ports import INGRESS
from shoal.api.objects import Obj, dig
from shoal.store.memory import ReadView


def attachment_configs(service: Obj) -> list[Obj]:
    """The service's network attachments as its spec gives them (TaskTemplate.Networks, or the
    deprecated top-level Networks)."""
    found = dig(service, "Spec", "TaskTemplate", "Networks", default=None) or dig(
        service, "Spec", "Networks", default=None
    )
    return [a for a in found or [] if isinstance(a, dict) and a.get("Target")]


def attached_networks(view: ReadView, service: Obj, ports: list[dict[str, Any]]) -> list[tuple[Obj, Obj]]:
    """(network, attachment config) for each network the service's tasks join: ingress first when a
    port is published through the mesh, then the spec's networks; unknown targets are skipped."""
    found: list[tuple[Obj, Obj]] = []
    if any(p["PublishMode"] == INGRESS for p in ports):
        ingress = ingress_of(view)
        if ingress is not None:
            found.append((ingress, {"Target": ingress["ID"]}))
    for config in attachment_configs(service):
        network = find_network(view, str(config["Target"]))
        if network is not None and all(network["ID"] != n["ID"] for n, _ in found):
            found.append((network, config))
    return found


def plan_vips(view: ReadView, service: Obj, networks: list[Obj], used: Used) -> list[Obj]:
    """The service's VirtualIPs: the ones it holds are kept, a new network gets the lowest free
    address; a network not allocated yet (or full) gets none for now."""
    held = {str(v.get("NetworkID")): v for v in dig(service, "Endpoint", "VirtualIPs", default=None) or []}
    vips: list[Obj] = []
    for network in networks:
        network_id = str(network["ID"])
        if network_id in held:
            vips.append({"NetworkID": network_id, "Addr": held[network_id].get("Addr")})
            continue
        subnet = subnet_of(network)
        if subnet is None or not is_allocated(network):
            continue
        addr = free_address(subnet, used.setdefault(network_id, set()), ip_range_of(network))
        if addr is not None:
            vips.append({"NetworkID": network_id, "Addr": addr})
    return vips
