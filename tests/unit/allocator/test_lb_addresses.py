"""Each node's load-balancer address per network (issue 9; swarmkit's Node.Attachments): one on ingress
for every node and one on each network a live task of that node joins, never an address a task, a VIP
or a gateway holds, kept while needed and freed when the node's last task there stops, the node is
removed or the network is; kept in the store apart from the node, so the node's Version never moves."""

from __future__ import annotations

import ipaddress

from shoal.allocator.allocator import AllocatorPlanner
from shoal.allocator.lbaddresses import (
    held_addresses,
    lb_attachments,
    networks_needed,
    record_sent_with,
    records,
)
from shoal.allocator.networks import allocate_network, new_ingress_network, new_network
from shoal.allocator.nodesubnets import with_task_subnet
from shoal.api import states
from shoal.api.objects import (
    NETWORKS,
    NODE_ATTACHMENTS,
    NODES,
    SENT_ATTACHMENTS_FIELD,
    SERVICES,
    TASKS,
    Obj,
    version_of,
)
from shoal.base.ids import new_id
from shoal.orchestrator.task import new_task
from shoal.store.memory import MemoryStore, ReadView
from shoal.store.watch import Event
from shoal.testing.store_harness import InstantProposer, StoreHarness, node_object, service_spec


def overlay(name: str, subnet: str, created: str = "2026-01-01T00:00:00Z", **extra: object) -> Obj:
    net = ipaddress.IPv4Network(subnet)
    config: Obj = {"Subnet": subnet, "Gateway": str(net.network_address + 1), **extra}
    return {"ID": f"id-{name}", "CreatedAt": created, "Spec": {"Name": name},
            "IPAMOptions": {"Driver": {"Name": "default"}, "Configs": [config]}}


def task_on(node_id: str, *networks: Obj, state: str = states.RUNNING) -> Obj:
    return {"ID": new_id(), "NodeID": node_id, "Status": {"State": state},
            "NetworksAttachments": [{"Network": {"ID": n["ID"]}, "Addresses": []} for n in networks]}


def view_of(**tables: list[Obj]) -> ReadView:
    tables = {NODE_ATTACHMENTS: [], SERVICES: [], TASKS: [], **tables}
    return ReadView({name: {o["ID"]: o for o in objs} for name, objs in tables.items()}, {}, {})


# ---------------------------------------------------------------------------------------- the pure core


def test_every_node_needs_ingress_and_the_networks_of_its_live_tasks() -> None:
    ingress = {**overlay("ingress", "10.0.0.0/24"), "Spec": {"Name": "ingress", "Ingress": True}}
    back = overlay("back", "10.0.1.0/24")
    front = overlay("front", "10.0.2.0/24", created="2025-01-01T00:00:00Z")  # made first: listed first
    unallocated = {"ID": "id-later", "Spec": {"Name": "later"}}
    nodes = [{"ID": "n1", "CreatedAt": "1"}, {"ID": "n2", "CreatedAt": "2"}, {"ID": "n3", "CreatedAt": "3"}]
    tasks = [task_on("n1", back, front, unallocated), task_on("n2", back, state=states.FAILED),
             task_on("", back, state=states.PENDING), task_on("gone", front)]
    needed = networks_needed(view_of(nodes=nodes, networks=[back, ingress, front, unallocated], tasks=tasks))
    assert {node: [n["Spec"]["Name"] for n in nets] for node, nets in needed.items()} == {
        "n1": ["ingress", "front", "back"], "n2": ["ingress"], "n3": ["ingress"]}
    without_ingress = networks_needed(view_of(nodes=nodes, networks=[back], tasks=tasks))
    assert without_ingress == {"n1": [back], "n2": [], "n3": []}


def test_nodes_there_before_a_new_ingress_need_it_once_the_mesh_is_used() -> None:
    """`network rm ingress` then `network create --ingress`: the services' VIPs come first on it."""
    ingress = {**overlay("edge", "10.11.0.0/24"), "Spec": {"Name": "edge", "Ingress": True}}
    nodes = [{"ID": "old", "CreatedAt": "1"}, {"ID": "new", "CreatedAt": "2"}]
    joined = [{"ID": "old", "Attachments": []}]  # "new" has no record yet: it is joining
    needed = networks_needed(view_of(nodes=nodes, networks=[ingress], nodeattachments=joined))
    assert needed == {"old": [], "new": [ingress]}
    published = {"ID": "web", "Spec": service_spec("web", ports=[{"TargetPort": 80, "PublishedPort": 8080}])}
    needed = networks_needed(view_of(nodes=nodes, networks=[ingress], nodeattachments=joined, services=[published]))
    assert needed == {"old": [ingress], "new": [ingress]}
    on_it = task_on("old", ingress)
    assert networks_needed(view_of(nodes=nodes, networks=[ingress], nodeattachments=joined, tasks=[on_it]))["old"]


def test_held_addresses_are_kept_and_new_ones_take_the_lowest_free() -> None:
    back = overlay("back", "10.0.1.0/24")
    used = {back["ID"]: {int(ipaddress.IPv4Address(a)) for a in ("10.0.1.1", "10.0.1.2", "10.0.1.4")}}
    got = lb_attachments({"n1": [back], "n2": [back], "n3": [back]}, {"n2": {back["ID"]: "10.0.1.4/24"}}, used)
    assert {node: a[0]["Addresses"][0] for node, a in got.items()} == {
        "n1": "10.0.1.3/24", "n2": "10.0.1.4/24", "n3": "10.0.1.5/24"}
    assert got["n1"] == [{"Network": {"ID": back["ID"]}, "Addresses": ["10.0.1.3/24"]}]
    assert int(ipaddress.IPv4Address("10.0.1.5")) in used[back["ID"]]  # later takers skip it


def test_ip_range_is_honoured_and_a_full_network_gives_none() -> None:
    ranged = overlay("ranged", "10.0.3.0/24", Range="10.0.3.128/30")  # hosts .129 and .130 only
    got = lb_attachments({"a": [ranged], "b": [ranged], "c": [ranged]}, {}, {})
    assert [got[n] and got[n][0]["Addresses"][0] for n in "abc"] == ["10.0.3.129/24", "10.0.3.130/24", []]


def test_the_same_inputs_give_the_same_answer() -> None:
    nets = [overlay(f"n{i}", f"10.0.{i}.0/24") for i in range(1, 4)]
    needed = {f"node{i}": nets[: i + 1] for i in range(3)}
    assert lb_attachments(needed, {}, {}) == lb_attachments(needed, {}, {})


# ---------------------------------------------------------------------------------------- in the allocator


async def swarm(harness: StoreHarness) -> tuple[Obj, Obj]:
    """An ingress network and one node, allocated once."""
    ingress = await harness.create(NETWORKS, new_ingress_network(harness.view))
    node = await harness.add_node("one")
    await harness.run(AllocatorPlanner())
    return ingress, node


async def user_network(harness: StoreHarness, name: str) -> Obj:
    spec: Obj = {"Name": name, "DriverConfiguration": {"Name": "overlay"}, "Scope": "swarm"}
    return await harness.create(NETWORKS, allocate_network(harness.view, new_network(spec)))


def lb(harness: StoreHarness, node: Obj) -> dict[str, str]:
    """network name -> the node's address on it."""
    names = {n["ID"]: n["Spec"]["Name"] for n in harness.view.objects(NETWORKS)}
    found = [r for r in records(harness.view) if r["ID"] == node["ID"]]
    return {names.get(k, k): v for k, v in held_addresses(found[0] if found else None).items()}


async def placed_task(harness: StoreHarness, network: Obj, node: Obj) -> Obj:
    """A task of a new service on `network`, allocated and then assigned to `node` (the scheduler's part)."""
    spec = service_spec(new_id()[:8])
    spec["TaskTemplate"]["Networks"] = [{"Target": network["ID"]}]
    service = await harness.create(SERVICES, {"ID": new_id(), "Spec": spec})
    task = new_task(service, harness.clock.now(), slot=1)
    await harness.write(lambda tx: tx.create(TASKS, task))
    await harness.run(AllocatorPlanner())
    await harness.edit(TASKS, task["ID"], lambda t: t.update(NodeID=node["ID"], Status={"State": states.ASSIGNED}))
    return harness.get(TASKS, task["ID"])


def task_address(task: Obj) -> str:
    return str(task["NetworksAttachments"][0]["Addresses"][0])


async def test_a_node_gets_its_ingress_address_without_its_version_moving() -> None:
    harness = StoreHarness()
    await harness.create(NETWORKS, new_ingress_network(harness.view))
    node = await harness.create(NODES, with_task_subnet(harness.view, node_object("one")))  # as a join makes it
    plan = await harness.run(AllocatorPlanner())
    assert lb(harness, node) == {"ingress": "10.0.0.2/24"}
    assert version_of(harness.get(NODES, node["ID"])) == version_of(node)
    assert all(table == NODE_ATTACHMENTS for table, _ in plan.creates + plan.updates)
    assert (await harness.run(AllocatorPlanner())).is_empty()  # a second pass has nothing to write


async def test_a_task_on_a_network_gives_its_node_an_address_there_until_it_stops() -> None:
    harness = StoreHarness()
    _, node = await swarm(harness)
    back = await user_network(harness, "back")
    task = await placed_task(harness, back, node)
    assert lb(harness, node) == {"ingress": "10.0.0.2/24"}  # not yet: the allocator has not seen it placed
    await harness.run(AllocatorPlanner())
    assert lb(harness, node) == {"ingress": "10.0.0.2/24", "back": "10.0.1.4/24"}
    assert task_address(task) == "10.0.1.3/24"  # the VIP has .2, the task .3: the node gets the next
    await harness.set_task_state(task["ID"], states.RUNNING)
    assert (await harness.run(AllocatorPlanner())).is_empty()
    await harness.set_task_state(task["ID"], states.COMPLETE)  # the node's last task on it stopped
    await harness.run(AllocatorPlanner())
    assert lb(harness, node) == {"ingress": "10.0.0.2/24"}


async def test_no_task_or_vip_gets_a_nodes_address() -> None:
    harness = StoreHarness()
    _, node = await swarm(harness)
    back = await user_network(harness, "back")
    await placed_task(harness, back, node)
    await harness.run(AllocatorPlanner())
    taken = {lb(harness, node)["back"], lb(harness, node)["ingress"]}
    second = await placed_task(harness, back, node)
    web = await harness.create(SERVICES, {"ID": new_id(), "Spec": service_spec(
        "web", ports=[{"TargetPort": 80, "PublishedPort": 8080}])})
    await harness.run(AllocatorPlanner())
    vips = {v["Addr"] for v in harness.get(SERVICES, web["ID"])["Endpoint"]["VirtualIPs"]}
    assert task_address(second) not in taken and not vips & taken
    assert vips == {"10.0.0.3/24"}


async def test_removing_the_node_or_the_network_frees_its_addresses() -> None:
    harness = StoreHarness()
    _, node = await swarm(harness)
    other = await harness.add_node("two")
    back = await user_network(harness, "back")
    task = await placed_task(harness, back, node)
    await harness.run(AllocatorPlanner())
    assert lb(harness, other) == {"ingress": "10.0.0.3/24"}
    await harness.delete(TASKS, task["ID"])
    await harness.delete(NETWORKS, back["ID"])
    await harness.run(AllocatorPlanner())
    assert lb(harness, node) == {"ingress": "10.0.0.2/24"}
    await harness.delete(NODES, other["ID"])
    await harness.run(AllocatorPlanner())
    assert [r["ID"] for r in records(harness.view)] == [node["ID"]]
    third = await harness.add_node("three")
    await harness.run(AllocatorPlanner())
    assert lb(harness, third) == {"ingress": "10.0.0.3/24"}  # the removed node's address is free again


async def test_the_addresses_survive_a_restart_and_a_new_leader_keeps_them() -> None:
    harness = StoreHarness()
    _, node = await swarm(harness)
    back = await user_network(harness, "back")
    await placed_task(harness, back, node)
    await harness.run(AllocatorPlanner())
    before = lb(harness, node)
    assert before == {"ingress": "10.0.0.2/24", "back": "10.0.1.4/24"}
    restarted = StoreHarness()
    restarted.store = MemoryStore(InstantProposer(), restarted.clock)
    restarted.store.restore(harness.store.snapshot())
    assert (await restarted.run(AllocatorPlanner())).is_empty()  # the new leader's first pass
    assert lb(restarted, node) == before


def test_the_allocator_wakes_when_a_task_lands_on_a_node_or_stops_there_not_on_every_report() -> None:
    planner = AllocatorPlanner()
    back = overlay("back", "10.0.1.0/24")
    pending = {**task_on("", back, state=states.PENDING), "NodeID": ""}
    assigned = {**pending, "NodeID": "n1", "Status": {"State": states.ASSIGNED}}
    running = {**assigned, "Status": {"State": states.RUNNING}}
    failed = {**assigned, "Status": {"State": states.FAILED}}
    portless = {**running, "NetworksAttachments": []}
    woken = [planner.interested(Event(action, TASKS, new, old)) for action, new, old in (
        ("update", assigned, pending), ("update", running, assigned), ("update", failed, running),
        ("delete", running, running), ("update", {**portless, "Status": {"State": states.FAILED}}, portless))]
    assert woken == [True, False, True, True, False]
    assert planner.interested(Event("delete", NODES, {"ID": "n1"}, {"ID": "n1"}))
    assert not planner.interested(Event("update", NODES, {"ID": "n1"}, {"ID": "n1"}))


def test_a_worker_reads_its_record_from_the_node_object_the_managers_send() -> None:
    sent = {"ID": "n1", SENT_ATTACHMENTS_FIELD: [{"Network": {"ID": "id-back"}, "Addresses": ["10.0.1.4/24"]}]}
    assert held_addresses(record_sent_with(sent)) == {"id-back": "10.0.1.4/24"}
    assert record_sent_with({"ID": "n1"}) is None and record_sent_with(None) is None
