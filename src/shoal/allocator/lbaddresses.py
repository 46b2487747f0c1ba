"""Each node's load-balancer address on each swarm network it needs (swarmkit's Node.Attachments):
on ingress for every node (see networks_needed for a node older than its ingress), and on every other
network while a task of it there (one that has not stopped) is attached to it. dockerd shows it in
`docker network inspect` on that node, as the `lb-<network>` endpoint (`ingress-sbox` on ingress).

The addresses live in the store, one record per node in a table of their own
(`{"ID": node id, "Attachments": [{"Network": {"ID": …}, "Addresses": ["10.0.1.5/24"]}]}`): Swarm keeps
them on the node object, where the allocator's write bumps the node's Version and a client's
`docker node update` made with the version it just read fails; the Engine API never shows them on the
node, so nothing is lost by keeping them apart. Being in the store, they survive a leader change and a
restart, and every pass of the allocator reads them as taken, so a task or a VIP never gets one.

An address is kept while its node needs the network and freed (the record rewritten or deleted) when
the node's last task on it stops, the node is removed or the network is removed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from shoal.allocator.addresses import Used, addresses_in_use, holds_addresses, host_number
from shoal.allocator.ipam import free_address
from shoal.allocator.networks import ip_range_of, is_allocated, is_ingress, network_name, subnet_of
from shoal.allocator.ports import INGRESS, spec_ports
from shoal.api.objects import NETWORKS, NODE_ATTACHMENTS, NODES, SENT_ATTACHMENTS_FIELD, SERVICES, TASKS, Obj, dig
from shoal.store.memory import ReadView

Held = dict[str, str]  # network id -> the node's address on it ("10.0.1.5/24")


def endpoint_names(network: Obj) -> tuple[str, str]:
    """(key under Containers, endpoint Name) of the load-balancer endpoint, as dockerd names them:
    `ingress-sbox`/`ingress-endpoint` on ingress, `lb-<net>`/`<net>-endpoint` elsewhere."""
    if is_ingress(network):
        return "ingress-sbox", "ingress-endpoint"
    name = network_name(network)
    return f"lb-{name}", f"{name}-endpoint"


def record_sent_with(node: Obj | None) -> Obj | None:
    """The node's record as the managers sent it with its node object (a worker reads no store; the
    dispatcher adds it under SENT_ATTACHMENTS_FIELD, as Swarm's session carries Node.Attachments)."""
    if not node or not node.get(SENT_ATTACHMENTS_FIELD):
        return None
    return {"ID": str(node["ID"]), "Attachments": list(node[SENT_ATTACHMENTS_FIELD])}


def records(view: ReadView) -> list[Obj]:
    return view.objects(NODE_ATTACHMENTS)


def held_addresses(record: Obj | None) -> Held:
    held: Held = {}
    for attachment in (record or {}).get("Attachments") or []:
        network_id = str(dig(attachment, "Network", "ID", default=""))
        addresses = attachment.get("Addresses") or []
        if network_id and addresses:
            held[network_id] = str(addresses[0])
    return held


def node_address(view: ReadView, node_id: str, network_id: str) -> str | None:
    """This node's load-balancer address on the network, as `addr/prefix`; None when it has none."""
    return held_addresses(view.get(NODE_ATTACHMENTS, node_id)).get(network_id)


def lb_addresses_in_use(view: ReadView) -> Iterable[tuple[str, int]]:
    """(network id, address) for every node's load-balancer address (taken for tasks and VIPs)."""
    for record in records(view):
        for network_id, address in held_addresses(record).items():
            number = host_number(address)
            if number is not None:
                yield network_id, number


def all_addresses_in_use(view: ReadView) -> Used:
    """Every address taken on each network: gateways, VIPs, live tasks' and the nodes' own."""
    used = addresses_in_use(view)
    for network_id, number in lb_addresses_in_use(view):
        used.setdefault(network_id, set()).add(number)
    return used


def _publishes_through_ingress(view: ReadView) -> bool:
    return any(p["PublishMode"] == INGRESS for s in view.objects(SERVICES) for p in spec_ports(s.get("Spec")))


def networks_needed(view: ReadView) -> dict[str, list[Obj]]:
    """node id -> the allocated networks it needs an address on: ingress first, then the networks of
    its tasks that have not stopped, in the order the networks were made. Nodes in creation order.

    Ingress is needed by every node as it joins (it has no record yet: swarm init, a join), and kept.
    A node that was already there when an ingress was made anew (`network rm ingress`, then `network
    create --ingress`) needs one once the routing mesh is used (a service publishes through it) or a
    task of it is on it: as in Swarm, where such a node is allocated again only at its next change,
    the services' VIPs come first on the new ingress."""
    networks = {str(n["ID"]): n for n in view.objects(NETWORKS) if is_allocated(n)}
    nodes = sorted(view.objects(NODES), key=lambda n: (str(n.get("CreatedAt", "")), str(n["ID"])))
    held = {str(record["ID"]): held_addresses(record) for record in records(view)}
    wanted: dict[str, set[str]] = {str(node["ID"]): set() for node in nodes}
    for task in view.objects(TASKS):
        node_id = str(task.get("NodeID") or "")
        if node_id not in wanted or not holds_addresses(task):
            continue
        for attachment in task.get("NetworksAttachments") or []:
            network_id = str(dig(attachment, "Network", "ID", default=""))
            if network_id in networks:
                wanted[node_id].add(network_id)
    mesh_in_use = _publishes_through_ingress(view)
    for ingress in (n for n in networks.values() if is_ingress(n)):
        for node_id, ids in wanted.items():
            if node_id not in held or ingress["ID"] in held[node_id] or mesh_in_use:
                ids.add(str(ingress["ID"]))
    ordered = sorted(networks.values(), key=lambda n: (not is_ingress(n), str(n.get("CreatedAt", "")), str(n["ID"])))
    return {node_id: [n for n in ordered if str(n["ID"]) in ids] for node_id, ids in wanted.items()}


def lb_attachments(needed: Mapping[str, list[Obj]], held: Mapping[str, Held], used: Used) -> dict[str, list[Obj]]:
    """node id -> its Attachments: an address it holds is kept, a network it newly needs gets the
    lowest free one (added to `used`); a full network gives it none for now. Pure: the same inputs
    give the same answer, whichever manager computes it."""
    result: dict[str, list[Obj]] = {}
    for node_id, networks in needed.items():
        own = held.get(node_id, {})
        attachments: list[Obj] = []
        for network in networks:
            network_id = str(network["ID"])
            subnet = subnet_of(network)
            if subnet is None:
                continue
            address = own.get(network_id)
            if address is None:
                address = free_address(subnet, used.setdefault(network_id, set()), ip_range_of(network))
            if address is not None:
                attachments.append({"Network": {"ID": network_id}, "Addresses": [address]})
        result[node_id] = attachments
    return result


def wanted_records(view: ReadView, used: Used) -> dict[str, list[Obj]]:
    """node id -> the Attachments its record should hold, for every node (once made, a node keeps its
    record, empty or not, until it is removed: that it has one says it got its ingress address once,
    see networks_needed)."""
    held = {str(record["ID"]): held_addresses(record) for record in records(view)}
    return lb_attachments(networks_needed(view), held, used)
