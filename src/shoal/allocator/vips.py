"""Virtual IPs: one address per network a VIP-mode service is attached to, from that network's subnet
(its IPAM config, else a /24 of 10.0.0.0/8 chosen per network). An address is in use while a service
holds it, so deleting a service frees its addresses."""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable

from shoal.api.objects import NETWORKS, Obj, dig
from shoal.store.memory import ReadView

INGRESS_NETWORK_NAME = "ingress"
INGRESS_SUBNET = "10.0.0.0/24"


def network_id_and_subnet(view: ReadView, target: str) -> tuple[str, ipaddress.IPv4Network]:
    """Resolve a network reference (id or name) to its id and the subnet VIPs come from."""
    for network in view.objects(NETWORKS):
        is_ingress = target == INGRESS_NETWORK_NAME and bool(dig(network, "Spec", "Ingress"))
        if is_ingress or target in (network.get("ID"), network.get("Name"), dig(network, "Spec", "Name")):
            return str(network["ID"]), _subnet_of(network)
    if target == INGRESS_NETWORK_NAME:
        return target, ipaddress.IPv4Network(INGRESS_SUBNET)
    return target, _fallback_subnet(target)


def _subnet_of(network: Obj) -> ipaddress.IPv4Network:
    # Docker's network shape (IPAM.Config) or swarmkit's (IPAMOptions.Configs, allocated or in Spec).
    configs = (
        dig(network, "IPAM", "Config", default=None)
        or dig(network, "IPAMOptions", "Configs", default=None)
        or dig(network, "Spec", "IPAMOptions", "Configs", default=[])
    )
    for config in configs or []:
        subnet = config.get("Subnet")
        if subnet:
            parsed = ipaddress.ip_network(subnet, strict=False)
            if isinstance(parsed, ipaddress.IPv4Network):
                return parsed
    name = str(network.get("Name") or dig(network, "Spec", "Name", default=""))
    if name == INGRESS_NETWORK_NAME or dig(network, "Spec", "Ingress"):
        return ipaddress.IPv4Network(INGRESS_SUBNET)
    return _fallback_subnet(str(network["ID"]))


def _fallback_subnet(key: str) -> ipaddress.IPv4Network:
    """A stable /24 in 10.1.0.0 to 10.255.255.0 for a network without IPAM config (10.0.0/24 is ingress)."""
    digest = int.from_bytes(hashlib.sha256(key.encode()).digest()[:2], "big")
    second, third = 1 + digest % 255, (digest >> 8) % 256
    return ipaddress.IPv4Network(f"10.{second}.{third}.0/24")


def addresses_in_use(services: Iterable[Obj]) -> dict[str, set[str]]:
    """network id → host addresses (without prefix) held by these services' VIPs."""
    used: dict[str, set[str]] = {}
    for service in services:
        for vip in dig(service, "Endpoint", "VirtualIPs", default=[]):
            addr = str(vip.get("Addr", "")).split("/")[0]
            if addr:
                used.setdefault(str(vip.get("NetworkID", "")), set()).add(addr)
    return used


def allocate_vip(subnet: ipaddress.IPv4Network, used: set[str]) -> str | None:
    """The lowest free host address (the first one is the gateway), as `addr/prefix`; None when full."""
    hosts = subnet.hosts()
    next(hosts, None)  # gateway
    for host in hosts:
        if str(host) not in used:
            used.add(str(host))
            return f"{host}/{subnet.prefixlen}"
    return None
