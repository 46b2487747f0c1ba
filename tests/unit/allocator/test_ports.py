"""Published ports and VIPs: dynamic allocation, stability across updates, conflicts at API time."""

from __future__ import annotations

import pytest

from shoal.allocator.allocator import AllocatorPlanner
from shoal.allocator.ports import DYNAMIC_PORT_START, check_port_conflicts
from shoal.api import errors, states
from shoal.api.objects import NETWORKS, SERVICES, TASKS
from shoal.testing.store_harness import StoreHarness


@pytest.fixture
def harness() -> StoreHarness:
    return StoreHarness()


async def test_dynamic_ingress_ports_are_unique_across_services(harness: StoreHarness) -> None:
    one = await harness.add_service("one", ports=[{"TargetPort": 80}])
    harness.clock.advance(1)  # allocation follows creation order
    two = await harness.add_service("two", ports=[{"TargetPort": 80}, {"TargetPort": 443, "Protocol": "tcp"}])
    await harness.run(AllocatorPlanner())
    ports_one = harness.get(SERVICES, one["ID"])["Endpoint"]["Ports"]
    ports_two = harness.get(SERVICES, two["ID"])["Endpoint"]["Ports"]
    assert ports_one == [
        {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": DYNAMIC_PORT_START, "PublishMode": "ingress"}
    ]
    assert [p["PublishedPort"] for p in ports_two] == [DYNAMIC_PORT_START + 1, DYNAMIC_PORT_START + 2]


async def test_dynamic_port_survives_an_unrelated_update_and_is_freed_on_delete(harness: StoreHarness) -> None:
    one = await harness.add_service("one", ports=[{"TargetPort": 80}])
    await harness.run(AllocatorPlanner())
    await harness.update_service_spec(one["ID"], lambda spec: spec["Labels"].update(x="y"))
    await harness.run(AllocatorPlanner())
    assert harness.get(SERVICES, one["ID"])["Endpoint"]["Ports"][0]["PublishedPort"] == DYNAMIC_PORT_START
    await harness.delete(SERVICES, one["ID"])
    two = await harness.add_service("two", ports=[{"TargetPort": 81}])
    await harness.run(AllocatorPlanner())
    assert harness.get(SERVICES, two["ID"])["Endpoint"]["Ports"][0]["PublishedPort"] == DYNAMIC_PORT_START


async def test_explicit_port_is_not_handed_out_dynamically(harness: StoreHarness) -> None:
    await harness.add_service("fixed", ports=[{"TargetPort": 80, "PublishedPort": DYNAMIC_PORT_START}])
    dynamic = await harness.add_service("dynamic", ports=[{"TargetPort": 80}])
    await harness.run(AllocatorPlanner())
    port = harness.get(SERVICES, dynamic["ID"])["Endpoint"]["Ports"][0]["PublishedPort"]
    assert port == DYNAMIC_PORT_START + 1


async def test_conflicting_ingress_port_is_refused_with_swarm_wording(harness: StoreHarness) -> None:
    web = await harness.add_service("web", ports=[{"TargetPort": 80, "PublishedPort": 8080}])
    other = {"Name": "other", "EndpointSpec": {"Ports": [{"TargetPort": 81, "PublishedPort": 8080}]}}
    with pytest.raises(errors.InvalidArgument) as caught:
        check_port_conflicts(harness.view, other)
    assert str(caught.value) == (
        "rpc error: code = InvalidArgument desc = port '8080' is already in use by service 'web' "
        f"({web['ID']}) as an ingress port"
    )
    # The service itself may keep its port on update; another protocol is another port.
    check_port_conflicts(harness.view, web["Spec"], web["ID"])
    udp = {"Name": "udp", "EndpointSpec": {"Ports": [{"TargetPort": 81, "PublishedPort": 8080, "Protocol": "udp"}]}}
    check_port_conflicts(harness.view, udp)


async def test_dynamic_port_already_allocated_conflicts(harness: StoreHarness) -> None:
    await harness.add_service("web", ports=[{"TargetPort": 80}])
    await harness.run(AllocatorPlanner())
    spec = {"Name": "x", "EndpointSpec": {"Ports": [{"TargetPort": 1, "PublishedPort": DYNAMIC_PORT_START}]}}
    with pytest.raises(errors.InvalidArgument, match="already in use by service 'web'"):
        check_port_conflicts(harness.view, spec)


async def test_host_mode_ports_may_share_a_number(harness: StoreHarness) -> None:
    host = [{"TargetPort": 80, "PublishedPort": 9000, "PublishMode": "host"}]
    await harness.add_service("a", ports=host)
    check_port_conflicts(harness.view, {"Name": "b", "EndpointSpec": {"Ports": host}})
    ingress = {"Name": "c", "EndpointSpec": {"Ports": [{"TargetPort": 80, "PublishedPort": 9000}]}}
    with pytest.raises(errors.InvalidArgument, match="as a host-published port"):
        check_port_conflicts(harness.view, ingress)


async def test_vips_come_from_each_network_and_are_released(harness: StoreHarness) -> None:
    await harness.create(NETWORKS, {
        "ID": "ingressid", "Spec": {"Name": "ingress", "Ingress": True},
        "IPAMOptions": {"Configs": [{"Subnet": "10.0.0.0/24", "Gateway": "10.0.0.1"}]},
    })
    await harness.create(NETWORKS, {
        "ID": "netid", "Spec": {"Name": "backend"},
        "IPAMOptions": {"Configs": [{"Subnet": "10.9.8.0/24", "Gateway": "10.9.8.1"}]},
    })
    one = await harness.add_service("one", ports=[{"TargetPort": 80}])
    await harness.edit(
        SERVICES, one["ID"], lambda s: s["Spec"]["TaskTemplate"].update(Networks=[{"Target": "backend"}])
    )
    harness.clock.advance(1)  # allocation follows creation order
    two = await harness.add_service("two", ports=[{"TargetPort": 80}])
    await harness.run(AllocatorPlanner())
    assert harness.get(SERVICES, one["ID"])["Endpoint"]["VirtualIPs"] == [
        {"NetworkID": "ingressid", "Addr": "10.0.0.2/24"},
        {"NetworkID": "netid", "Addr": "10.9.8.2/24"},
    ]
    assert harness.get(SERVICES, two["ID"])["Endpoint"]["VirtualIPs"] == [
        {"NetworkID": "ingressid", "Addr": "10.0.0.3/24"}
    ]
    await harness.delete(SERVICES, one["ID"])
    three = await harness.add_service("three", ports=[{"TargetPort": 80}])
    await harness.run(AllocatorPlanner())
    assert harness.get(SERVICES, three["ID"])["Endpoint"]["VirtualIPs"][0]["Addr"] == "10.0.0.2/24"


async def test_dnsrr_service_gets_no_vip(harness: StoreHarness) -> None:
    svc = await harness.add_service("dns", ports=[{"TargetPort": 80, "PublishedPort": 80, "PublishMode": "host"}])
    await harness.edit(SERVICES, svc["ID"], lambda s: s["Spec"]["EndpointSpec"].update(Mode="dnsrr"))
    await harness.run(AllocatorPlanner())
    assert "VirtualIPs" not in harness.get(SERVICES, svc["ID"])["Endpoint"]


async def test_new_tasks_become_pending_with_the_service_endpoint(harness: StoreHarness) -> None:
    from shoal.orchestrator.task import new_task

    svc = await harness.add_service("web", ports=[{"TargetPort": 80}])
    task = await harness.create(TASKS, new_task(svc, harness.clock.now(), slot=1))
    await harness.run(AllocatorPlanner())
    pending = harness.get(TASKS, task["ID"])
    assert pending["Status"]["State"] == states.PENDING
    assert pending["Status"]["Message"] == "pending task scheduling"
    assert pending["Endpoint"] == harness.get(SERVICES, svc["ID"])["Endpoint"]
    assert (await harness.run(AllocatorPlanner())).is_empty()


async def test_vip_on_the_swarm_ingress_network_object(harness: StoreHarness) -> None:
    ingress = {
        "ID": "ingressid",
        "Spec": {"Name": "ingress", "Ingress": True},
        "IPAMOptions": {"Configs": [{"Subnet": "10.255.0.0/16", "Gateway": "10.255.0.1"}]},
    }
    await harness.create(NETWORKS, ingress)
    service = await harness.add_service("web", ports=[{"TargetPort": 80}])
    await harness.run(AllocatorPlanner())
    assert harness.get(SERVICES, service["ID"])["Endpoint"]["VirtualIPs"] == [
        {"NetworkID": "ingressid", "Addr": "10.255.0.2/16"}
    ]


async def test_protocols_have_separate_dynamic_ports_and_host_ports_are_kept(harness: StoreHarness) -> None:
    service = await harness.add_service(
        "dns",
        ports=[
            {"TargetPort": 53, "Protocol": "udp"},
            {"TargetPort": 53, "Protocol": "tcp"},
            {"TargetPort": 9100, "PublishedPort": 9100, "PublishMode": "host"},
        ],
    )
    await harness.run(AllocatorPlanner())
    ports = harness.get(SERVICES, service["ID"])["Endpoint"]["Ports"]
    assert ports == [
        {"Protocol": "udp", "TargetPort": 53, "PublishedPort": DYNAMIC_PORT_START, "PublishMode": "ingress"},
        {"Protocol": "tcp", "TargetPort": 53, "PublishedPort": DYNAMIC_PORT_START, "PublishMode": "ingress"},
        {"Protocol": "tcp", "TargetPort": 9100, "PublishedPort": 9100, "PublishMode": "host"},
    ]


async def test_a_full_dynamic_range_leaves_the_port_unpublished(harness: StoreHarness) -> None:
    from shoal.allocator.ports import DYNAMIC_PORT_END, allocate_ports

    used = {("tcp", n) for n in range(DYNAMIC_PORT_START, DYNAMIC_PORT_END + 1)}
    service = {"ID": "x", "Spec": {"EndpointSpec": {"Ports": [{"TargetPort": 80}]}}}
    assert allocate_ports(service, used)[0]["PublishedPort"] == 0
