"""A null in a spec is stored as Go stores it: the field's zero value, which Docker's JSON omits (docker-py
sends `"Args": null` when a service has no args; dockerd shows no Args)."""

from __future__ import annotations

from shoal.controlapi.schema import SERVICE_SPEC, conform


def test_null_fields_are_dropped_not_stored() -> None:
    spec = conform({"Name": "web", "Labels": None, "TaskTemplate": {
        "ContainerSpec": {"Image": "busybox", "Args": None, "Command": ["sleep", "1"]}, "Placement": None}},
        SERVICE_SPEC, "ServiceSpec")
    assert spec == {"Name": "web", "TaskTemplate": {"ContainerSpec": {"Image": "busybox", "Command": ["sleep", "1"]}}}
