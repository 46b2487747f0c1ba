"""Issue 7: each node's task bridge subnet comes from the managers, unique across the cluster and
outside the overlay networks' pool; given when the node is created, so it costs no extra write."""

from __future__ import annotations

import ipaddress

from shoal.allocator.allocator import AllocatorPlanner
from shoal.allocator.nodesubnets import NODE_SUBNET_RANGE, TASK_SUBNET, next_node_subnet, with_task_subnet
from shoal.api.objects import CLUSTER, NODES, Obj, version_of
from shoal.store.memory import Tx
from shoal.testing.store_harness import StoreHarness, node_object


def subnet(node: dict[str, object]) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(str(node[TASK_SUBNET]))


async def test_nodes_made_without_a_subnet_get_distinct_ones_once() -> None:
    harness = StoreHarness()
    await harness.create(CLUSTER, {"ID": "clusterone", "Spec": {}})
    first = await harness.add_node("one")
    second = await harness.add_node("two")
    await harness.run(AllocatorPlanner())
    nets = [subnet(harness.get(NODES, n["ID"])) for n in (first, second)]
    assert nets[0] != nets[1]
    for net in nets:
        assert net.prefixlen == 24 and net.subnet_of(NODE_SUBNET_RANGE)
        assert not net.overlaps(ipaddress.IPv4Network("10.0.0.0/8"))
    assert (await harness.run(AllocatorPlanner())).is_empty()


async def test_a_node_created_with_its_subnet_is_not_written_again() -> None:
    harness = StoreHarness()
    await harness.create(CLUSTER, {"ID": "clusterone", "Spec": {}})
    taken = await harness.add_node("one")
    await harness.run(AllocatorPlanner())

    def create(tx: Tx) -> Obj:
        return tx.create(NODES, with_task_subnet(tx, node_object("two")))

    made = await harness.write(create)
    stored = harness.get(NODES, made["ID"])
    assert subnet(stored) != subnet(harness.get(NODES, taken["ID"]))
    assert (await harness.run(AllocatorPlanner())).is_empty()
    assert version_of(harness.get(NODES, made["ID"])) == version_of(stored)


async def test_separate_swarms_start_at_their_own_place_in_the_range() -> None:
    starts = set()
    for cluster_id in ("a" * 25, "b" * 25, "c" * 25):
        harness = StoreHarness()
        await harness.create(CLUSTER, {"ID": cluster_id, "Spec": {}})
        starts.add(next_node_subnet(harness.view))
    assert len(starts) == 3
