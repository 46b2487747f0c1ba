"""--with-registry-auth: where the credentials live in a stored spec, which ones an update keeps, and
that nothing shown to clients carries them."""

from __future__ import annotations

import pytest

from shoal.api import errors
from shoal.controlapi.defaults import (
    normalize_new_spec,
    registry_auth_for_update,
    registry_auth_of,
    with_registry_auth,
    without_registry_auth,
)
from shoal.controlapi.schema import SERVICE_SPEC, conform


def spec(image: str = "busybox") -> dict:
    return {"Name": "web", "TaskTemplate": {"ContainerSpec": {"Image": image}}}


def test_a_pull_options_the_client_sends_itself_is_dropped() -> None:
    sent = spec()
    sent["TaskTemplate"]["ContainerSpec"]["PullOptions"] = {"RegistryAuth": "forged"}
    stored = normalize_new_spec(conform(sent, SERVICE_SPEC, "ServiceSpec"))
    assert registry_auth_of(stored) is None


def test_the_header_s_credentials_are_stored_for_the_tasks() -> None:
    stored = with_registry_auth(normalize_new_spec(spec()), "eyJ1c2VybmFtZSI6ImEifQ==")
    assert stored["TaskTemplate"]["ContainerSpec"]["PullOptions"] == {"RegistryAuth": "eyJ1c2VybmFtZSI6ImEifQ=="}
    assert "PullOptions" not in with_registry_auth(stored, None)["TaskTemplate"]["ContainerSpec"]


def test_an_update_keeps_the_current_or_previous_credentials_unless_new_ones_come() -> None:
    service = {"Spec": with_registry_auth(spec(), "now"), "PreviousSpec": with_registry_auth(spec(), "before")}
    assert registry_auth_for_update(service, "sent", "spec") == "sent"
    assert registry_auth_for_update(service, None, "spec") == "now"
    assert registry_auth_for_update(service, None, "") == "now"
    assert registry_auth_for_update(service, None, "previous-spec") == "before"
    with pytest.raises(errors.Unknown, match="unsupported registryAuthFrom value"):
        registry_auth_for_update(service, None, "elsewhere")
    with pytest.raises(errors.Unknown, match="service does not have a previous spec"):
        registry_auth_for_update({"Spec": spec()}, None, "previous-spec")


def test_services_and_tasks_are_shown_without_credentials() -> None:
    service = {"ID": "s", "Spec": with_registry_auth(spec(), "a"), "PreviousSpec": with_registry_auth(spec(), "b")}
    shown = without_registry_auth(service)
    assert registry_auth_of(shown["Spec"]) is None and registry_auth_of(shown["PreviousSpec"]) is None
    assert registry_auth_of(service["Spec"]) == "a"  # the stored object is untouched
    task = {"ID": "t", "Spec": {"ContainerSpec": {"Image": "busybox", "PullOptions": {"RegistryAuth": "a"}}}}
    assert without_registry_auth(task)["Spec"]["ContainerSpec"] == {"Image": "busybox"}
