"""Swarm networks as the store keeps them (swarmkit's shape, which tasks' NetworksAttachments show):
`Spec` is what the user asked for; `IPAMOptions` (subnet, gateway) and `DriverState` (the VXLAN id)
are what the managers allocated. `allocate_network` fills those two, inside the transaction that
creates the network, so a subnet is never handed out twice and a clash is refused at once."""

from __future__ import annotations

import ipaddress
from typing import Any

from shoal.allocator.ipam import (
    POOL_OVERLAP,
    AddressPool,
    gateway_of,
    node_range_clash,
    overlapping,
    parse_subnet,
)
from shoal.api import errors
from shoal.api.objects import CLUSTER, NETWORKS, Obj, clone, dig
from shoal.base.ids import new_id
from shoal.store.memory import ReadView

INGRESS_NAME = "ingress"
OVERLAY = "overlay"
VXLAN_OPTION = "com.docker.network.driver.overlay.vxlanid_list"
FIRST_VXLAN_ID = 4096  # libnetwork's overlay driver starts its VXLAN ids here


def network_name(network: Obj) -> str:
    return str(dig(network, "Spec", "Name", default=""))


def is_ingress(network: Obj) -> bool:
    return bool(dig(network, "Spec", "Ingress"))


def allocated_configs(network: Obj) -> list[Obj]:
    return list(dig(network, "IPAMOptions", "Configs", default=None) or [])


def is_allocated(network: Obj) -> bool:
    return any(config.get("Subnet") for config in allocated_configs(network))


def subnet_of(network: Obj) -> ipaddress.IPv4Network | None:
    for config in allocated_configs(network):
        if config.get("Subnet"):
            return ipaddress.IPv4Network(str(config["Subnet"]), strict=False)
    return None


def ip_range_of(network: Obj) -> ipaddress.IPv4Network | None:
    """Where task and VIP addresses come from when the user gave --ip-range."""
    for config in allocated_configs(network):
        if config.get("Range"):
            return ipaddress.IPv4Network(str(config["Range"]), strict=False)
    return None


def gateway_address(network: Obj) -> str:
    for config in allocated_configs(network):
        if config.get("Gateway"):
            return str(config["Gateway"]).split("/")[0]
    return ""


def ingress_of(view: ReadView) -> Obj | None:
    return next((n for n in view.objects(NETWORKS) if is_ingress(n)), None)


def find_network(view: ReadView, ref: str) -> Obj | None:
    """By full id, then exact name, then unique id prefix (as dockerd resolves a network)."""
    if not ref:
        return None
    exact = view.get(NETWORKS, ref)
    if exact is not None:
        return exact
    networks = view.objects(NETWORKS)
    named = [n for n in networks if network_name(n) == ref]
    if len(named) == 1:
        return named[0]
    prefixed = [n for n in networks if str(n["ID"]).startswith(ref)]
    return prefixed[0] if len(prefixed) == 1 else None


def new_network(spec: Obj) -> Obj:
    """A network object for `spec` (validated by the caller), not yet allocated."""
    return {"ID": new_id(), "Spec": clone(spec)}


def new_ingress_network(view: ReadView) -> Obj:
    """The `ingress` network a fresh swarm starts with (swarm init), its subnet the first of the
    cluster's default address pool (10.0.0.0/24 unless `--default-addr-pool` says otherwise).
    `view` is the init transaction, which has already staged the cluster object."""
    spec = {
        "Name": INGRESS_NAME, "Labels": {}, "DriverConfiguration": {}, "Ingress": True,
        "IPAMOptions": {"Driver": {}}, "Scope": "swarm",
    }
    return allocate_network(view, new_network(spec))


def _subnets_in_use(view: ReadView, skip_id: str) -> list[ipaddress.IPv4Network]:
    used: list[ipaddress.IPv4Network] = []
    for network in view.objects(NETWORKS):
        if network["ID"] == skip_id:
            continue
        subnet = subnet_of(network)
        if subnet is not None:
            used.append(subnet)
    return used


def _vxlan_ids_in_use(view: ReadView, skip_id: str) -> set[int]:
    used: set[int] = set()
    for network in view.objects(NETWORKS):
        text = str(dig(network, "DriverState", "Options", VXLAN_OPTION, default="") or "")
        if network["ID"] != skip_id and text.isdigit():
            used.add(int(text))
    return used


def allocate_network(view: ReadView, network: Obj) -> Obj:
    """A copy of `network` with its subnet and gateway (the user's, checked against every subnet in
    use, or the next free one of the pool) and its driver state."""
    allocated = clone(network)
    used = _subnets_in_use(view, str(network["ID"]))
    requested = dig(network, "Spec", "IPAMOptions", "Configs", default=None) or []
    configs = [_user_config(config, used) for config in requested]
    if not configs:
        clusters = view.objects(CLUSTER)
        subnet = AddressPool.of_cluster(clusters[0] if clusters else None).next_subnet(used)
        configs = [{"Subnet": str(subnet), "Gateway": str(gateway_of(subnet))}]
    driver = dig(network, "Spec", "IPAMOptions", "Driver", "Name", default="") or "default"
    allocated["IPAMOptions"] = {"Driver": {"Name": driver}, "Configs": configs}
    options: dict[str, Any] = dict(dig(network, "Spec", "DriverConfiguration", "Options", default=None) or {})
    vxlan = FIRST_VXLAN_ID
    taken = _vxlan_ids_in_use(view, str(network["ID"]))
    while vxlan in taken:
        vxlan += 1
    options[VXLAN_OPTION] = str(vxlan)
    allocated["DriverState"] = {"Name": OVERLAY, "Options": options}
    return allocated


def _user_config(config: Obj, used: list[ipaddress.IPv4Network]) -> Obj:
    subnet = parse_subnet(str(config.get("Subnet") or ""))
    if overlapping(subnet, used) is not None:
        raise errors.Forbidden(POOL_OVERLAP)
    clash = node_range_clash(subnet)
    if clash:
        raise errors.Forbidden(f"invalid pool request: {clash}")
    out: Obj = {"Subnet": str(subnet)}
    if config.get("Range"):
        out["Range"] = str(config["Range"])
    out["Gateway"] = str(config.get("Gateway") or gateway_of(subnet))
    used.append(subnet)
    return out
