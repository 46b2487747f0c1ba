"""Network calls: swarm-scoped overlay networks kept in the replicated store. A network is created
already allocated (its subnet, gateway and VXLAN id chosen in the same transaction), so a subnet that
overlaps another is refused at once and `network inspect` right after create shows its IPAM config.

Requests arrive in the Engine API's shape (types.NetworkCreateRequest) and networks are shown in it
(types.NetworkResource); the store keeps swarmkit's shape, which tasks' NetworksAttachments show."""

from __future__ import annotations

import hashlib
import ipaddress
from typing import Any

from shoal.allocator.addresses import holds_addresses
from shoal.allocator.ipam import parse_subnet
from shoal.allocator.lbaddresses import endpoint_names, node_address
from shoal.allocator.networks import (
    OVERLAY,
    allocate_network,
    ingress_of,
    is_ingress,
    network_name,
    new_network,
)
from shoal.allocator.ports import INGRESS, spec_ports
from shoal.allocator.vips import attachment_configs
from shoal.api import errors, states
from shoal.api.objects import NETWORKS, SERVICES, TASKS, Obj, container_name, dig
from shoal.controlapi import filters as flt
from shoal.controlapi.resolve import resolve
from shoal.controlapi.schema import NETWORK_CREATE, conform
from shoal.store.memory import MemoryStore, ReadView

NETWORK_FILTERS = ("dangling", "driver", "id", "label", "name", "scope", "type")
PREDEFINED = ("bridge", "host", "none", "default")
ENCRYPTED_OPTION = "encrypted"
NO_IPSEC = ("encrypted overlay networks are not supported: this kernel has no IPsec, which --opt encrypted "
            "needs to encrypt the VXLAN traffic")


def find_network(view: ReadView, ref: str) -> Obj:
    """As dockerd resolves a network: full id, exact name, unique id prefix."""
    return resolve(view, NETWORKS, ref, "network", network_name)


# ---------------------------------------------------------------------------------------------- create


def _invalid(message: str) -> errors.InvalidArgument:
    return errors.InvalidArgument(message, grpc=True)


def _ipam_configs(ipam: Any) -> list[Obj]:
    """IPAM.Config of the request as swarmkit's IPAMOptions.Configs, checked with swarmkit's words."""
    if ipam is None:
        return []
    if not isinstance(ipam, dict):
        raise errors.InvalidArgument("json: cannot unmarshal into Go struct field of type network.IPAM")
    driver = ipam.get("Driver") or "default"
    if driver != "default":
        raise errors.NotImplementedYet(f'IPAM driver "{driver}" is not supported by shoal: only "default" is')
    configs: list[Obj] = []
    for raw in ipam.get("Config") or []:
        subnet_text = str(raw.get("Subnet") or "")
        if not subnet_text:
            raise _invalid("ipam configuration: invalid subnet ")
        subnet = parse_subnet(subnet_text)
        config: Obj = {"Subnet": str(subnet)}
        ip_range = str(raw.get("IPRange") or "")
        if ip_range:
            try:
                parsed = ipaddress.ip_network(ip_range, strict=False)
            except ValueError:
                raise _invalid(f"ipam configuration: invalid range {ip_range}") from None
            if not isinstance(parsed, ipaddress.IPv4Network) or not parsed.subnet_of(subnet):
                raise _invalid(f"ipam configuration: subnet {subnet_text} does not contain range {ip_range}")
            config["Range"] = str(parsed)
        gateway = str(raw.get("Gateway") or "")
        if gateway:
            try:
                address = ipaddress.ip_address(gateway)
            except ValueError:
                raise _invalid(f"ipam configuration: invalid gateway {gateway}") from None
            if address not in subnet:
                raise _invalid(f"ipam configuration: subnet {subnet_text} does not contain gateway {gateway}")
            config["Gateway"] = gateway
        if raw.get("AuxiliaryAddresses"):
            raise errors.NotImplementedYet("auxiliary addresses (--aux-address) are not supported by shoal yet")
        configs.append(config)
    return configs


def network_spec(request: Obj) -> Obj:
    """The swarm NetworkSpec for a create request, or the error Docker gives for it."""
    request = conform(request, NETWORK_CREATE, "NetworkCreateRequest")  # a value of the wrong JSON type: Go's 400
    name = str(request.get("Name") or "")
    if not name:
        raise _invalid("meta: name must be provided")
    if name in PREDEFINED:
        raise errors.Forbidden(f"{name} is a pre-defined network and cannot be created")
    driver = str(request.get("Driver") or "bridge")  # dockerd's default driver
    if driver != OVERLAY:
        raise errors.NotImplementedYet(
            f'network driver "{driver}" is not supported: shoal serves swarm-scoped overlay networks only '
            "(docker network create -d overlay)"
        )
    scope = str(request.get("Scope") or "swarm")
    if scope != "swarm":
        raise errors.InvalidArgument(f'an overlay network has swarm scope: scope "{scope}" is not supported')
    if request.get("EnableIPv6"):
        raise errors.NotImplementedYet("IPv6 networks are not supported by shoal yet")
    if request.get("ConfigOnly") or dig(request, "ConfigFrom", "Network"):
        raise errors.NotImplementedYet("configuration-only networks (--config-only, --config-from) are not "
                                       "supported by shoal yet")
    options = {str(k): str(v) for k, v in (request.get("Options") or {}).items()}
    if ENCRYPTED_OPTION in options:
        raise errors.NotImplementedYet(NO_IPSEC)
    ingress = bool(request.get("Ingress"))
    attachable = bool(request.get("Attachable"))
    if ingress and attachable:
        raise _invalid("ingress network cannot be attachable")
    spec: Obj = {
        "Name": name,
        "Labels": {str(k): str(v) for k, v in (request.get("Labels") or {}).items()},
        "DriverConfiguration": {"Name": OVERLAY, **({"Options": options} if options else {})},
    }
    for key, value in (("Internal", bool(request.get("Internal"))), ("Attachable", attachable),
                       ("Ingress", ingress)):
        if value:
            spec[key] = True
    configs = _ipam_configs(request.get("IPAM"))
    spec["IPAMOptions"] = {"Driver": {"Name": "default"}, **({"Configs": configs} if configs else {})}
    spec["Scope"] = "swarm"
    return spec


# ---------------------------------------------------------------------------------------------- showing


def docker_network(network: Obj, containers: Obj | None = None) -> Obj:
    """The network as the Engine API shows a swarm network (types.NetworkResource); `containers` is
    what this node has on it (local_endpoints), None where it has nothing (the list never shows any)."""
    configs = []
    for config in dig(network, "IPAMOptions", "Configs", default=None) or []:
        shown: Obj = {"Subnet": config.get("Subnet", "")}
        if config.get("Range"):
            shown["IPRange"] = config["Range"]
        if config.get("Gateway"):
            shown["Gateway"] = config["Gateway"]
        configs.append(shown)
    spec = network.get("Spec") or {}
    return {
        "Name": network_name(network),
        "Id": network["ID"],
        "Created": network.get("CreatedAt", ""),
        "Scope": "swarm",
        "Driver": dig(network, "DriverState", "Name", default=None) or OVERLAY,
        "EnableIPv6": False,
        "IPAM": {
            "Driver": dig(network, "IPAMOptions", "Driver", "Name", default=None) or "default",
            "Options": None,
            "Config": configs,
        },
        "Internal": bool(spec.get("Internal")),
        "Attachable": bool(spec.get("Attachable")),
        "Ingress": bool(spec.get("Ingress")),
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": False,
        "Containers": containers,
        "Options": dict(dig(network, "DriverState", "Options", default=None) or {}) or None,
        "Labels": dict(spec.get("Labels") or {}) or None,
    }


def _endpoint(name: str, address: str, identity: str) -> Obj:
    """One entry of Containers. The MAC is dockerd's for an overlay address (02:42 and the address's
    four bytes); the endpoint id, random on dockerd, is derived here so it stays the same."""
    mac = "02:42:" + ":".join(f"{byte:02x}" for byte in ipaddress.IPv4Address(address.split("/")[0]).packed)
    return {"Name": name, "EndpointID": hashlib.sha256(identity.encode()).hexdigest(), "MacAddress": mac,
            "IPv4Address": address, "IPv6Address": ""}


def local_endpoints(view: ReadView, network: Obj, node_id: str) -> Obj | None:
    """What `docker network inspect` on node `node_id` shows under Containers: None unless the network
    is in use there (the node holds its load-balancer address on it: always for ingress), else this
    node's task containers on it and the load-balancer endpoint (`lb-<net>`, `ingress-sbox`)."""
    network_id = str(network["ID"])
    address = node_address(view, node_id, network_id) if node_id else None
    if address is None:
        return None
    containers: Obj = {}
    for task in view.find(TASKS, lambda t: t.get("NodeID") == node_id):
        container_id = str(dig(task, "Status", "ContainerStatus", "ContainerID", default="") or "")
        if not container_id or not holds_addresses(task):
            continue
        for attachment in task.get("NetworksAttachments") or []:
            addresses = attachment.get("Addresses") or []
            if dig(attachment, "Network", "ID") == network_id and addresses:
                identity = f"{task['ID']}/{network_id}"
                containers[container_id] = _endpoint(container_name(task), str(addresses[0]), identity)
    key, name = endpoint_names(network)
    containers[key] = _endpoint(name, address, f"{node_id}/{network_id}")
    return containers


# ---------------------------------------------------------------------------------------------- in use


def _attaches(service: Obj, network: Obj) -> bool:
    for config in attachment_configs(service):
        target = str(config["Target"])
        if target in (network["ID"], network_name(network)):
            return True
    return False


def _needs_ingress(service: Obj) -> bool:
    return any(p["PublishMode"] == INGRESS for p in spec_ports(service.get("Spec")))


def _task_on(task: Obj, network_id: str) -> bool:
    live = states.rank(str(task.get("DesiredState") or states.RUNNING)) <= states.rank(states.RUNNING)
    running = states.rank(str(dig(task, "Status", "State", default=states.NEW))) <= states.rank(states.RUNNING)
    return live and running and any(
        dig(a, "Network", "ID") == network_id for a in task.get("NetworksAttachments") or []
    )


def check_removable(view: ReadView, network: Obj) -> None:
    """Refuse removing a network a service or a live task uses, with swarmkit's words."""
    network_id = str(network["ID"])
    if is_ingress(network):
        for service in view.objects(SERVICES):
            if _needs_ingress(service):
                raise errors.FailedPrecondition(
                    f"ingress network cannot be removed because service {service['ID']} depends on it", grpc=True
                )
        return
    for service in view.objects(SERVICES):
        if _attaches(service, network):
            raise errors.FailedPrecondition(f"network {network_id} is in use by service {service['ID']}",
                                            grpc=True)
    for task in view.objects(TASKS):
        # a task whose service is gone is on its way out (`docker stack rm` removes the networks right
        # after the services, before the orchestrator has marked their tasks for removal)
        if _task_on(task, network_id) and view.get(SERVICES, str(task.get("ServiceID") or "")) is not None:
            raise errors.FailedPrecondition(f"network {network_id} is in use by task {task['ID']}", grpc=True)


# ---------------------------------------------------------------------------------------------- the calls


def _keep(network: Obj, filters: flt.Filters, view: ReadView) -> bool:
    shown_driver = dig(network, "DriverState", "Name", default=None) or OVERLAY
    for kind in filters.get("type") or []:
        if kind not in ("custom", "builtin"):
            raise errors.InvalidArgument(f"Invalid filter: 'type'='{kind}'")
    if "builtin" in (filters.get("type") or []) and "custom" not in (filters.get("type") or []):
        return False  # every swarm network is user-defined
    dangling = filters.get("dangling")
    if dangling:
        value = dangling[0].lower()
        if value not in ("true", "false", "1", "0"):
            raise errors.InvalidArgument(f"Invalid filter 'dangling={dangling[0]}'")
        used = is_ingress(network) or any(_attaches(s, network) for s in view.objects(SERVICES))
        if used == (value in ("true", "1")):
            return False
    return (
        (not filters.get("name") or any(v in network_name(network) for v in filters["name"]))
        and (not filters.get("id") or any(v in network["ID"] for v in filters["id"]))
        and flt.any_exact(filters.get("driver"), shown_driver)
        and flt.any_exact(filters.get("scope"), "swarm")
        and flt.labels_match(filters.get("label"), dig(network, "Spec", "Labels"))
    )


def checked_create(view: ReadView, request: Obj) -> Obj:
    """The allocated network object a create request makes, or Docker's refusal."""
    spec = network_spec(request)
    if any(network_name(n) == spec["Name"] for n in view.objects(NETWORKS)):
        raise errors.Conflict(f"network with name {spec['Name']} already exists")
    if spec.get("Ingress"):
        present = ingress_of(view)
        if present is not None:
            raise errors.AlreadyExists(f"ingress network ({present['ID']}) is already present", grpc=True)
    return allocate_network(view, new_network(spec))


def check_filters(filters: flt.Filters) -> None:
    flt.check_keys(filters, NETWORK_FILTERS)


def listed(view: ReadView, filters: flt.Filters) -> list[Obj]:
    check_filters(filters)
    found = [n for n in view.objects(NETWORKS) if _keep(n, filters, view)]
    found.sort(key=network_name)
    return [docker_network(n) for n in found]


def inspected(view: ReadView, ref: str, scope: str | None, node_id: str = "") -> Obj:
    """The network as `docker network inspect` on node `node_id` shows it (with what it has there)."""
    network = find_network(view, ref)
    if scope not in (None, "", "swarm"):
        raise errors.NotFound(f"network {ref} not found")  # swarm networks only have swarm scope
    return docker_network(network, local_endpoints(view, network, node_id))


def removable(view: ReadView, ref: str) -> Obj:
    """The network `ref` names, if nothing uses it (else swarmkit's refusal)."""
    network = find_network(view, ref)
    check_removable(view, network)
    return network


class NetworkControl:
    """The calls on the replicated store (the fake backend runs the same functions on its dicts)."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    async def create(self, request: Obj) -> Obj:
        network = await self._store.update(lambda tx: tx.create(NETWORKS, checked_create(tx, request)))
        return {"Id": network["ID"], "Warning": ""}

    def list(self, filters: flt.Filters) -> list[Obj]:
        return listed(self._store.view(), filters)

    def inspect(self, ref: str, scope: str | None, node_id: str = "") -> Obj:
        return inspected(self._store.view(), ref, scope, node_id)

    async def remove(self, ref: str) -> None:
        await self._store.update(lambda tx: tx.delete(NETWORKS, removable(tx, ref)["ID"]))
