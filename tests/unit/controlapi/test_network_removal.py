"""Removing a network: refused while a service names it or a live task of a live service sits on it
(swarmkit's texts), allowed once the service is gone even if its tasks are still stopping."""

from __future__ import annotations

import pytest

from shoal.allocator.allocator import AllocatorPlanner
from shoal.api import errors, states
from shoal.api.objects import NETWORKS, SERVICES, TASKS
from shoal.base.ids import new_id
from shoal.controlapi.networks import NetworkControl
from shoal.orchestrator.task import new_task
from shoal.testing.store_harness import StoreHarness, service_spec


async def test_in_use_by_service_then_by_its_old_task_then_free() -> None:
    harness = StoreHarness()
    control = NetworkControl(harness.store)
    network_id = (await control.create({"Name": "back", "Driver": "overlay"}))["Id"]
    spec = service_spec("api")
    spec["TaskTemplate"]["Networks"] = [{"Target": network_id}]
    service = await harness.create(SERVICES, {"ID": new_id(), "Spec": spec})
    task = await harness.create(TASKS, new_task(service, harness.clock.now(), slot=1))
    await harness.run(AllocatorPlanner())
    assert harness.get(TASKS, task["ID"])["NetworksAttachments"][0]["Network"]["ID"] == network_id

    with pytest.raises(errors.FailedPrecondition) as by_service:
        await control.remove("back")
    assert str(by_service.value) == (f"rpc error: code = FailedPrecondition desc = network {network_id} is in use "
                                     f"by service {service['ID']}")

    # --network-rm: the service lets go, its old task still runs on the network
    await harness.update_service_spec(service["ID"], lambda s: s["TaskTemplate"].pop("Networks"))
    await harness.set_task_state(task["ID"], states.RUNNING)
    with pytest.raises(errors.FailedPrecondition) as by_task:
        await control.remove(network_id)
    assert str(by_task.value).endswith(f"network {network_id} is in use by task {task['ID']}")

    # the service is removed: its task is on its way out and holds nothing any more
    await harness.delete(SERVICES, service["ID"])
    await control.remove(network_id[:8])
    assert harness.view.get(NETWORKS, network_id) is None
