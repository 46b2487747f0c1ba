"""controlapi over an in-memory store: Docker's errors for bad specs, each checked to change nothing, and
the update rules (versions, renames, mode changes, rollback, cluster spec zeros)."""

from __future__ import annotations

from typing import Any

import pytest

from shoal.api import errors
from shoal.api.objects import CLUSTER, SERVICES
from shoal.ca.certs import create_root_ca
from shoal.controlapi.cluster import ClusterControl, new_cluster
from shoal.controlapi.services import ServiceControl
from shoal.store.memory import MemoryStore
from shoal.testing.clock import FakeClock
from shoal.testing.store_harness import InstantProposer


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore(InstantProposer(), FakeClock())


def spec(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"Name": "web", "TaskTemplate": {"ContainerSpec": {"Image": "busybox", "Args": ["true"]}},
                            "Mode": {"Replicated": {"Replicas": 2}}}
    base.update(overrides)
    return base


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (spec(Name="bad name"), "name must be valid as a DNS name component"),
        (spec(TaskTemplate={"ContainerSpec": {"Image": "-name"}}), '"-name" is not a valid repository/tag'),
        (spec(TaskTemplate={"ContainerSpec": {"Image": ""}}), "image reference must be provided"),
        (spec(TaskTemplate=None), "TaskSpec: missing runtime"),
        (spec(Mode={"Replicated": {"Replicas": -1}}), "cannot unmarshal number -1"),
        (spec(UpdateConfig={"Delay": "5s"}), "of type time.Duration"),
        (spec(UpdateConfig={"MaxFailureRatio": 2}), "update-maxfailureratio"),
        (spec(EndpointSpec={"Mode": "dnsrr", "Ports": [{"TargetPort": 80, "PublishedPort": 80}]}),
         "can't be used with dnsrr mode"),
        (spec(Mode={"Replicated": {}, "Global": {}}), "cannot specify both replicated mode and global mode"),
        # dockerd's conversion texts, which come before swarmkit's checks
        (spec(TaskTemplate={"ContainerSpec": {"Image": "busybox"}, "RestartPolicy": {"Condition": "bogus"}}),
         'invalid RestartCondition: "bogus"'),
        (spec(UpdateConfig={"FailureAction": "explode"}), "unrecognized update failure action explode"),
        (spec(RollbackConfig={"Order": "sideways"}), "unrecognized update order sideways"),
        (spec(EndpointSpec={"Mode": "round-robin"}), 'invalid resolution mode: "round-robin"'),
        (spec(TaskTemplate={"ContainerSpec": {"Image": "busybox", "Mounts": [{"Type": "bogus", "Target": "/x"}]}}),
         'invalid MountType: "bogus"'),
        # values of the wrong JSON type get Go's decoding error (were stored, or failed later as 500s)
        (spec(Networks="x"), "Go struct field ServiceSpec.Networks of type []NetworkAttachmentConfig"),
        (spec(TaskTemplate={"ContainerSpec": {"Image": "busybox", "Secrets": "x"}}),
         "ServiceSpec.TaskTemplate.ContainerSpec.Secrets of type []SecretReference"),
        (spec(TaskTemplate={"ContainerSpec": {"Image": "busybox", "Configs": [1]}}),
         "cannot unmarshal number 1 into Go struct field ServiceSpec.TaskTemplate.ContainerSpec.Configs"),
        (spec(TaskTemplate={"ContainerSpec": {"Image": "busybox"}, "LogDriver": "x"}),
         "ServiceSpec.TaskTemplate.LogDriver of type Driver"),
        (spec(TaskTemplate={"ContainerSpec": {"Image": "busybox", "Ulimits": "x"}}),
         "ServiceSpec.TaskTemplate.ContainerSpec.Ulimits"),
    ],
)
async def test_bad_specs_are_refused_and_store_nothing(store: MemoryStore, bad: dict[str, Any], message: str) -> None:
    with pytest.raises(errors.InvalidArgument) as caught:
        await ServiceControl(store, FakeClock()).create(bad)
    assert message in str(caught.value)
    assert store.view().objects(SERVICES) == []


async def test_update_rules(store: MemoryStore) -> None:
    control = ServiceControl(store, FakeClock())
    created = await control.create(spec())
    current = control.inspect(created["ID"], False)
    version = current["Version"]["Index"]
    with pytest.raises(errors.OutOfSequence):
        await control.update("web", version - 1, spec(), rollback=False)
    with pytest.raises(errors.InvalidArgument, match="renaming services is not supported"):
        await control.update("web", version, spec(Name="other"), rollback=False)
    with pytest.raises(errors.InvalidArgument, match="service mode change is not allowed"):
        await control.update("web", version, spec(Mode={"Global": {}}), rollback=False)
    assert control.inspect("web", False)["Version"]["Index"] == version
    await control.update("web", version, spec(Mode={"Replicated": {"Replicas": 5}}), rollback=False)
    updated = control.inspect("web", False)
    assert updated["Spec"]["Mode"]["Replicated"]["Replicas"] == 5
    assert updated["PreviousSpec"]["Mode"]["Replicated"]["Replicas"] == 2
    await control.update("web", updated["Version"]["Index"], {}, rollback=True)
    rolled = control.inspect("web", False)
    assert rolled["Spec"]["Mode"]["Replicated"]["Replicas"] == 2
    assert rolled["UpdateStatus"]["State"] == "rollback_started"


async def test_go_style_case_insensitive_fields(store: MemoryStore) -> None:
    control = ServiceControl(store, FakeClock())
    await control.create(spec(Mode={"replicated": {"replicas": 3}}))
    assert control.inspect("web", False)["Spec"]["Mode"] == {"Replicated": {"Replicas": 3}}


async def test_cluster_update_keeps_zeros_it_is_sent(store: MemoryStore) -> None:
    clock = FakeClock()
    cluster = new_cluster("c1", {"Spec": {"Orchestration": {"TaskHistoryRetentionLimit": 0}}},
                          create_root_ca(clock.now()))
    assert cluster["Spec"]["Orchestration"]["TaskHistoryRetentionLimit"] == 5  # init: zero means default
    await store.update(lambda tx: tx.create(CLUSTER, cluster))
    control = ClusterControl(store, clock)
    current = control.inspect()
    sent = {**current["Spec"], "Orchestration": {"TaskHistoryRetentionLimit": 0}}
    await control.update(sent, current["Version"]["Index"], False, False, False)
    assert control.inspect()["Spec"]["Orchestration"]["TaskHistoryRetentionLimit"] == 0
    with pytest.raises(errors.InvalidArgument, match="cannot unmarshal string"):
        await control.update({"Orchestration": {"TaskHistoryRetentionLimit": "x"}},
                             control.inspect()["Version"]["Index"], False, False, False)
    assert "_RootCA" not in control.inspect()
