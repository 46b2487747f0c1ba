"""The allocator writes a service only when it changes something a client sees (issue 9: a service
without ports was written again ~15 ms after create, so an update with the version just read failed)."""

from __future__ import annotations

import pytest

from shoal.allocator.allocator import AllocatorPlanner
from shoal.api import states
from shoal.api.objects import SERVICES, Obj, version_of
from shoal.base.ids import new_id
from shoal.orchestrator.task import new_task
from shoal.testing.store_harness import StoreHarness, service_spec


@pytest.fixture
def harness() -> StoreHarness:
    return StoreHarness()


async def _create_as_controlapi(harness: StoreHarness, spec: Obj) -> Obj:
    """What `docker service create` stores: the spec alone, no Endpoint."""
    return await harness.create(SERVICES, {"ID": new_id(), "Spec": spec})


async def test_service_without_ports_or_networks_is_never_written(harness: StoreHarness) -> None:
    spec = service_spec("quiet")
    spec["EndpointSpec"] = {"Mode": "vip"}  # what the docker CLI sends without -p
    service = await _create_as_controlapi(harness, spec)
    plan = await harness.run(AllocatorPlanner())
    assert plan.is_empty()
    stored = harness.get(SERVICES, service["ID"])
    assert version_of(stored) == version_of(service)
    assert "Endpoint" not in stored


async def test_new_task_of_a_portless_service_moves_on_without_touching_the_service(harness: StoreHarness) -> None:
    service = await _create_as_controlapi(harness, service_spec("quiet"))
    task = new_task(service, harness.clock.now(), slot=1)
    await harness.write(lambda tx: tx.create("tasks", task))
    await harness.run(AllocatorPlanner())
    assert version_of(harness.get(SERVICES, service["ID"])) == version_of(service)
    moved = harness.get("tasks", task["ID"])
    assert moved["Status"]["State"] == states.PENDING
    assert "Endpoint" not in moved or not moved["Endpoint"].get("VirtualIPs")


async def test_a_second_pass_over_an_allocated_service_writes_nothing(harness: StoreHarness) -> None:
    await _create_as_controlapi(harness, service_spec("web", ports=[{"TargetPort": 80, "PublishedPort": 8080}]))
    first = await harness.run(AllocatorPlanner())
    assert not first.is_empty()
    assert (await harness.run(AllocatorPlanner())).is_empty()


async def test_ports_removed_by_an_update_are_dropped_from_the_endpoint(harness: StoreHarness) -> None:
    web = await _create_as_controlapi(harness, service_spec("web", ports=[{"TargetPort": 80, "PublishedPort": 8080}]))
    await harness.run(AllocatorPlanner())
    assert harness.get(SERVICES, web["ID"])["Endpoint"]["Ports"]
    await harness.update_service_spec(web["ID"], lambda spec: spec.update(EndpointSpec={"Mode": "vip"}))
    await harness.run(AllocatorPlanner())
    endpoint = harness.get(SERVICES, web["ID"])["Endpoint"]
    assert "Ports" not in endpoint and "VirtualIPs" not in endpoint
