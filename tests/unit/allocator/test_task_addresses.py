"""Task addresses on swarm networks: one per network the task joins (NetworksAttachments as Docker
shows them), from the --ip-range when given, never one a VIP, a gateway or a live task holds, and
free again once the task has stopped."""

from __future__ import annotations

from typing import Any

from shoal.allocator.allocator import AllocatorPlanner
from shoal.allocator.networks import allocate_network, new_ingress_network, new_network
from shoal.api import states
from shoal.api.objects import NETWORKS, SERVICES, TASKS, Obj
from shoal.base.ids import new_id
from shoal.orchestrator.task import new_task
from shoal.testing.store_harness import StoreHarness, service_spec


async def network(harness: StoreHarness, name: str, **ipam: Any) -> Obj:
    spec: Obj = {"Name": name, "DriverConfiguration": {"Name": "overlay"}, "Scope": "swarm"}
    if ipam:
        spec["IPAMOptions"] = {"Driver": {"Name": "default"}, "Configs": [ipam]}
    return await harness.create(NETWORKS, allocate_network(harness.view, new_network(spec)))


async def service_on(harness: StoreHarness, *networks: Obj, ports: list[dict[str, Any]] | None = None) -> Obj:
    spec = service_spec(new_id()[:8], ports=ports)
    spec["TaskTemplate"]["Networks"] = [{"Target": n["ID"], "Aliases": ["db"]} for n in networks]
    return await harness.create(SERVICES, {"ID": new_id(), "Spec": spec})


async def tasks_of(harness: StoreHarness, service: Obj, count: int) -> list[Obj]:
    service = harness.get(SERVICES, service["ID"])
    made = [new_task(service, harness.clock.now(), slot=i + 1) for i in range(count)]
    await harness.write(lambda tx: [tx.create(TASKS, t) for t in made])
    await harness.run(AllocatorPlanner())
    return [harness.get(TASKS, t["ID"]) for t in made]


def addresses(task: Obj) -> dict[str, str]:
    return {a["Network"]["Spec"]["Name"]: a["Addresses"][0] for a in task.get("NetworksAttachments") or []}


async def test_one_address_per_network_ingress_first_with_aliases() -> None:
    harness = StoreHarness()
    await harness.create(NETWORKS, new_ingress_network(harness.view))
    back = await network(harness, "back", Subnet="10.50.0.0/24", Gateway="10.50.0.1")
    web = await service_on(harness, back, ports=[{"TargetPort": 80, "PublishedPort": 8080}])
    await harness.run(AllocatorPlanner())
    [task] = await tasks_of(harness, web, 1)
    assert task["Status"]["State"] == states.PENDING
    assert [a["Network"]["Spec"]["Name"] for a in task["NetworksAttachments"]] == ["ingress", "back"]
    assert task["NetworksAttachments"][1]["Aliases"] == ["db"]
    assert task["NetworksAttachments"][1]["Network"]["IPAMOptions"]["Configs"][0]["Subnet"] == "10.50.0.0/24"
    # the VIPs took .2 on each network (the gateways hold .1): the task has .3
    assert addresses(task) == {"ingress": "10.0.0.3/24", "back": "10.50.0.3/24"}
    assert harness.get(SERVICES, web["ID"])["Endpoint"]["VirtualIPs"][1]["Addr"] == "10.50.0.2/24"


async def test_ip_range_and_freed_addresses() -> None:
    harness = StoreHarness()
    ranged = await network(harness, "ranged", Subnet="10.60.0.0/24", Range="10.60.0.128/25")
    dnsrr = await service_on(harness, ranged)
    await harness.edit(SERVICES, dnsrr["ID"], lambda s: s["Spec"].update(EndpointSpec={"Mode": "dnsrr"}))
    first, second = await tasks_of(harness, dnsrr, 2)
    assert (addresses(first)["ranged"], addresses(second)["ranged"]) == ("10.60.0.129/24", "10.60.0.130/24")
    await harness.set_task_state(first["ID"], states.FAILED)  # stopped: its address may go to another task
    [third] = await tasks_of(harness, dnsrr, 1)
    assert addresses(third)["ranged"] == "10.60.0.129/24"


async def test_tasks_wait_while_their_network_has_no_subnet() -> None:
    harness = StoreHarness()
    pending = await harness.create(NETWORKS, new_network({"Name": "later", "Scope": "swarm"}))
    svc = await service_on(harness, pending)
    [task] = await tasks_of(harness, svc, 1)  # this pass allocates the network, the task waits for it
    assert task["Status"]["State"] == states.NEW
    assert harness.get(NETWORKS, pending["ID"])["IPAMOptions"]["Configs"][0]["Subnet"] == "10.0.0.0/24"
    await harness.run(AllocatorPlanner())
    assert addresses(harness.get(TASKS, task["ID"])) == {"later": "10.0.0.3/24"}
