"""Each node's task bridge subnet (the process and oci executors' `shoal…` bridge), handed out by the
managers so it is unique across the cluster and a later issue can route between nodes.

The range is 172.24.0.0/14 in /24s (1024 nodes of 253 tasks each). Why there: it is outside the
default address pool 10.0.0.0/8 that overlay networks take their subnets from, outside 192.168.0.0/16
(home and office LANs, and dockerd's second local pool), and clear of what dockerd puts on a host
first (docker0 on 172.17.0.0/16, docker_gwbridge on 172.18.0.0/16, then 172.19, 172.20 … as bridge
networks are made) and of the cluster tests' host network (172.30.0.0/16).

A swarm starts at a /24 of its own in the range, derived from its cluster id, so separate one-node
swarms on one machine (the e2e tests) rarely meet; the nodes of one swarm never share one. The subnet
is kept on the node object in a private field (the API never shows it, as Docker shows no such thing),
set in the transaction that creates the node so it costs no extra write."""

from __future__ import annotations

import hashlib
import ipaddress

from shoal.api.objects import CLUSTER, NODES, Obj
from shoal.store.memory import ReadView

TASK_SUBNET = "_TaskSubnet"
NODE_SUBNET_RANGE = ipaddress.IPv4Network("172.24.0.0/14")
NODE_SUBNET_SIZE = 24
_COUNT = 1 << (NODE_SUBNET_SIZE - NODE_SUBNET_RANGE.prefixlen)


def task_subnet(node: Obj) -> str:
    return str(node.get(TASK_SUBNET) or "")


def _start(cluster_id: str) -> int:
    return int.from_bytes(hashlib.sha256(cluster_id.encode()).digest()[:4], "big") % _COUNT


def next_node_subnet(view: ReadView, skip_node_id: str = "", also_taken: set[str] | None = None) -> str | None:
    """The first free /24 of the range from this swarm's starting point; None when all are taken."""
    taken = {task_subnet(n) for n in view.objects(NODES) if n["ID"] != skip_node_id} | (also_taken or set())
    clusters = view.objects(CLUSTER)
    start = _start(str(clusters[0]["ID"])) if clusters else 0
    first = int(NODE_SUBNET_RANGE.network_address)
    for step in range(_COUNT):
        index = (start + step) % _COUNT
        subnet = str(ipaddress.IPv4Network((first + (index << (32 - NODE_SUBNET_SIZE)), NODE_SUBNET_SIZE)))
        if subnet not in taken:
            return subnet
    return None


def with_task_subnet(view: ReadView, node: Obj) -> Obj:
    """`node` (a new node object, changed in place and returned) with a task subnet of its own. For
    the transactions that create nodes (swarm init, a join): `view` is that transaction."""
    if not task_subnet(node):
        subnet = next_node_subnet(view, str(node["ID"]))
        if subnet is not None:
            node[TASK_SUBNET] = subnet
    return node


def missing_subnets(view: ReadView) -> dict[str, str]:
    """node id -> subnet for the nodes that have none yet (made before they were handed out at
    creation): the allocator writes these once."""
    given: dict[str, str] = {}
    for node in sorted(view.objects(NODES), key=lambda n: (n.get("CreatedAt", ""), n["ID"])):
        if task_subnet(node):
            continue
        subnet = next_node_subnet(view, also_taken=set(given.values()))
        if subnet is None:
            break
        given[str(node["ID"])] = subnet
    return given
