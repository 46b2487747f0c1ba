"""Job services in the control API: Docker's defaults for a replicated job's sizes, swarmkit's refusals
(an update config, negative sizes as Go's decoder refuses them, a change of mode), the JobStatus each
update bumps, the `mode` filter's job names and ServiceStatus counted over the current run only."""

from __future__ import annotations

from typing import Any

import pytest

from shoal.api import errors, states
from shoal.api.objects import SERVICES, TASKS
from shoal.base.ids import new_id
from shoal.controlapi.services import ServiceControl, service_status
from shoal.store.memory import MemoryStore
from shoal.testing.clock import FakeClock
from shoal.testing.store_harness import InstantProposer


@pytest.fixture
def control() -> ServiceControl:
    return ServiceControl(MemoryStore(InstantProposer(), FakeClock()), FakeClock())


def spec(mode: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"Name": "job", "TaskTemplate": {"ContainerSpec": {"Image": "busybox", "Args": ["true"]}},
                            "Mode": mode}
    base.update(overrides)
    return base


async def test_replicated_job_defaults_and_job_status(control: ServiceControl) -> None:
    created = await control.create(spec({"ReplicatedJob": {"MaxConcurrent": 3}}))
    service = control.inspect(created["ID"], insert_defaults=False)
    assert service["Spec"]["Mode"] == {"ReplicatedJob": {"MaxConcurrent": 3, "TotalCompletions": 3}}
    assert service["JobStatus"]["JobIteration"] == {} and service["JobStatus"]["LastExecution"]
    bare = await control.create(spec({"ReplicatedJob": {}}, Name="bare"))
    assert control.inspect(bare["ID"], False)["Spec"]["Mode"]["ReplicatedJob"] == {"MaxConcurrent": 1,
                                                                                 "TotalCompletions": 1}
    plain = await control.create(spec({"Replicated": {"Replicas": 1}}, Name="plain"))
    assert "JobStatus" not in control.inspect(plain["ID"], False)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (spec({"ReplicatedJob": {}}, UpdateConfig={"Parallelism": 1}),
         "rpc error: code = InvalidArgument desc = Jobs may not have an update config"),
        (spec({"GlobalJob": {}}, UpdateConfig={}), "Jobs may not have an update config"),
        (spec({"ReplicatedJob": {"MaxConcurrent": -1}}),
         "json: cannot unmarshal number -1 into Go struct field ServiceSpec.Mode.ReplicatedJob.MaxConcurrent "
         "of type uint64"),
    ],
)
async def test_bad_job_specs_refused(control: ServiceControl, bad: dict[str, Any], message: str) -> None:
    with pytest.raises(errors.InvalidArgument) as caught:
        await control.create(bad)
    assert message in str(caught.value)
    assert control.list({}, status=False) == []


async def test_update_runs_again_and_mode_is_fixed(control: ServiceControl) -> None:
    created = await control.create(spec({"ReplicatedJob": {"TotalCompletions": 2}}))
    service = control.inspect(created["ID"], False)
    await control.update(created["ID"], service["Version"]["Index"], service["Spec"], rollback=False)
    service = control.inspect(created["ID"], False)
    assert service["JobStatus"]["JobIteration"] == {"Index": 1}
    for other in ({"GlobalJob": {}}, {"Replicated": {"Replicas": 2}}):
        with pytest.raises(errors.InvalidArgument, match="service mode change is not allowed"):
            await control.update(created["ID"], service["Version"]["Index"], {**service["Spec"], "Mode": other},
                                 rollback=False)


async def test_mode_filter_names_jobs(control: ServiceControl) -> None:
    await control.create(spec({"ReplicatedJob": {}}, Name="rj"))
    await control.create(spec({"GlobalJob": {}}, Name="gj"))
    await control.create(spec({"Replicated": {"Replicas": 1}}, Name="r"))
    names = {mode: [s["Spec"]["Name"] for s in control.list({"mode": [mode]}, status=False)]
             for mode in ("replicated-job", "global-job", "replicated")}
    assert names == {"replicated-job": ["rj"], "global-job": ["gj"], "replicated": ["r"]}


async def test_service_status_counts_the_current_run_only() -> None:
    store = MemoryStore(InstantProposer(), FakeClock())
    control = ServiceControl(store, FakeClock())
    created = await control.create(spec({"ReplicatedJob": {"MaxConcurrent": 2, "TotalCompletions": 4}}))

    def task(iteration: int, state: str) -> dict[str, Any]:
        return {"ID": new_id(), "ServiceID": created["ID"], "JobIteration": {"Index": iteration} if iteration else {},
                "DesiredState": states.COMPLETE, "Status": {"State": state}}

    def add(tx: Any) -> None:
        service = tx.get(SERVICES, created["ID"])
        tx.update(SERVICES, {**service, "JobStatus": {"JobIteration": {"Index": 1}}})
        for item in (task(0, states.COMPLETE), task(1, states.COMPLETE), task(1, states.RUNNING)):
            tx.create(TASKS, item)

    await store.update(add)
    service = store.view().get(SERVICES, created["ID"])
    assert service is not None
    assert service_status(store.view(), service) == {"RunningTasks": 1, "DesiredTasks": 2, "CompletedTasks": 1}


@pytest.mark.parametrize(
    ("check", "message"),
    [
        ({"Test": ["CMD", "true"], "Interval": 500_000}, "Interval in HealthConfig cannot be less than 1ms"),
        ({"Test": ["CMD", "true"], "Timeout": 1}, "Timeout in HealthConfig cannot be less than 1ms"),
        ({"Test": ["CMD", "true"], "StartPeriod": 999_999}, "StartPeriod in HealthConfig cannot be less than 1ms"),
        ({"Test": ["CMD", "true"], "Retries": -1}, "Retries in HealthConfig cannot be negative"),
        ({"Test": ["CMD", "true"], "Retries": "3"}, "json: cannot unmarshal string into Go struct field "
         "ServiceSpec.TaskTemplate.ContainerSpec.Healthcheck.Retries of type int64"),
    ],
)
async def test_health_check_limits_as_swarmkit(control: ServiceControl, check: dict[str, Any], message: str) -> None:
    bad = spec({"Replicated": {"Replicas": 1}})
    bad["TaskTemplate"]["ContainerSpec"]["Healthcheck"] = check
    with pytest.raises(errors.InvalidArgument) as caught:
        await control.create(bad)
    assert message in str(caught.value)
    assert control.list({}, status=False) == []
