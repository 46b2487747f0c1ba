"""Secrets and configs, the same cases on the fake and on a real shoald (see conftest.py): Swarm's texts
for every refusal, each refusal changing nothing, a secret's data never returned, a config's always."""

from __future__ import annotations

import base64
import itertools
from typing import Any

import pytest
from contract_api import Api, filters

KINDS = ("secret", "config")
MAX = {"secret": 500 * 1024, "config": 1000 * 1024}
_names = itertools.count()


def fresh(prefix: str) -> str:
    return f"{prefix}{next(_names)}"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def create(api: Api, kind: str, name: str, data: bytes = b"hush", **extra: Any) -> str:
    reply = api.ok("POST", f"/{kind}s/create", {"Name": name, "Labels": extra.pop("Labels", {}),
                                                "Data": b64(data), **extra})
    assert set(reply) == {"ID"}
    return str(reply["ID"])


def names(api: Api, kind: str, query: str = "") -> set[str]:
    return {o["Spec"]["Name"] for o in api.ok("GET", f"/{kind}s" + (f"?{query}" if query else ""))}


def refused(api: Api, method: str, path: str, body: Any, status: int) -> str:
    got, reply = api.call(method, path, body)
    assert got == status, f"{api.kind}: {method} {path} answered {got}: {reply}"
    return str(reply["message"])


@pytest.mark.parametrize("kind", KINDS)
def test_create_inspect_list_show_data_only_for_configs(api: Api, kind: str) -> None:
    name = fresh("show")
    object_id = create(api, kind, name, b"t0p-s3cr3t\n", Labels={"team": "a"})
    for ref in (name, object_id, object_id[:10]):
        shown = api.ok("GET", f"/{kind}s/{ref}")
        assert shown["ID"] == object_id
        assert shown["Spec"]["Name"] == name and shown["Spec"]["Labels"] == {"team": "a"}
        assert shown["Version"]["Index"] > 0 and shown["CreatedAt"] and shown["UpdatedAt"]
        if kind == "secret":
            assert "Data" not in shown["Spec"]
        else:
            assert base64.b64decode(shown["Spec"]["Data"]) == b"t0p-s3cr3t\n"
    listed = [o for o in api.ok("GET", f"/{kind}s") if o["ID"] == object_id]
    assert len(listed) == 1
    assert ("Data" in listed[0]["Spec"]) == (kind == "config")


@pytest.mark.parametrize("kind", KINDS)
def test_list_filters(api: Api, kind: str) -> None:
    first, second = fresh("flt-a"), fresh("flt-b")
    first_id = create(api, kind, first, Labels={"tier": "web"})
    create(api, kind, second, Labels={"tier": "db", "keep": ""})
    assert names(api, kind, filters(names=[first])) == {first}
    assert names(api, kind, filters(name=["flt-"])) >= {first, second}
    assert names(api, kind, filters(id=[first_id[:8]])) == {first}
    assert names(api, kind, filters(label=["tier=db"])) == {second}
    assert names(api, kind, filters(label=["tier"], name=["flt-"])) >= {first, second}
    # names, name and id widen each other, as swarmkit ORs them
    assert names(api, kind, filters(names=[first], id=["zzzz"])) == {first}
    assert refused(api, "GET", f"/{kind}s?" + filters(bogus=["x"]), None, 400) == "Invalid filter 'bogus'"


@pytest.mark.parametrize("kind", KINDS)
def test_bad_creates_are_refused_with_swarms_texts_and_change_nothing(api: Api, kind: str) -> None:
    taken = fresh("dup")
    create(api, kind, taken)
    before = names(api, kind)
    cases = [
        ({"Name": taken, "Data": b64(b"x")}, 409,
         f"rpc error: code = AlreadyExists desc = {kind} {taken} already exists"),
        ({"Name": taken.upper(), "Data": b64(b"x")}, 409, f"{kind} {taken.upper()} already exists"),
        ({"Name": "", "Data": b64(b"x")}, 400, "name must be provided"),
        ({"Name": "-bad", "Data": b64(b"x")}, 400,
         "invalid name, only 64 [a-zA-Z0-9-_.] characters allowed, and the start and end character must be "
         "[a-zA-Z0-9]"),
        ({"Name": "x" * 65, "Data": b64(b"x")}, 400, "invalid name, only 64"),
        ({"Name": fresh("empty"), "Data": ""}, 400,
         f"{kind} data must be larger than 0 and less than {MAX[kind]} bytes"),
        ({"Name": fresh("big"), "Data": b64(b"x" * MAX[kind])}, 400,
         f"rpc error: code = InvalidArgument desc = {kind} data must be larger than 0 and less than {MAX[kind]} bytes"),
        ({"Name": fresh("b64"), "Data": "no base64!"}, 400, "illegal base64 data at input byte"),
    ]
    for body, status, message in cases:
        assert message in refused(api, "POST", f"/{kind}s/create", body, status)
    assert names(api, kind) == before
    create(api, kind, fresh("largest"), b"x" * (MAX[kind] - 1))


@pytest.mark.parametrize("kind", KINDS)
def test_only_labels_can_change(api: Api, kind: str) -> None:
    name = fresh("upd")
    object_id = create(api, kind, name, b"one", Labels={"a": "1"})
    current = api.ok("GET", f"/{kind}s/{object_id}")
    version = current["Version"]["Index"]
    for spec in ({"Name": name + "x", "Labels": {}}, {"Name": name, "Labels": {}, "Data": b64(b"two")}):
        message = refused(api, "POST", f"/{kind}s/{object_id}/update?version={version}", spec, 400)
        assert message == "rpc error: code = InvalidArgument desc = only updates to Labels are allowed"
    assert api.ok("GET", f"/{kind}s/{object_id}") == current
    spec = {**current["Spec"], "Labels": {"b": "2"}}  # a config's inspect carries its data back: allowed
    api.ok("POST", f"/{kind}s/{object_id}/update?version={version}", spec)
    updated = api.ok("GET", f"/{kind}s/{object_id}")
    assert updated["Spec"]["Labels"] == {"b": "2"}
    assert updated["Version"]["Index"] > version
    stale = refused(api, "POST", f"/{kind}s/{object_id}/update?version={version}", spec, 500)
    assert stale == "rpc error: code = Unknown desc = update out of sequence"
    if kind == "config":
        assert base64.b64decode(updated["Spec"]["Data"]) == b"one"


def service_spec(name: str, kind: str, object_id: str, object_name: str) -> dict[str, Any]:
    label = kind.capitalize()
    ref = {f"{label}ID": object_id, f"{label}Name": object_name,
           "File": {"Name": f"/etc/{object_name}" if kind == "config" else object_name,
                    "UID": "0", "GID": "0", "Mode": 0o444}}
    return {"Name": name, "Mode": {"Replicated": {"Replicas": 0}},
            "TaskTemplate": {"ContainerSpec": {"Image": "busybox", "Args": ["sleep", "60"], f"{label}s": [ref]}}}


@pytest.mark.parametrize("kind", KINDS)
def test_remove_is_refused_while_a_service_uses_it(api: Api, kind: str) -> None:
    name, service = fresh("used"), fresh("svc")
    object_id = create(api, kind, name)
    service_id = api.ok("POST", "/services/create", service_spec(service, kind, object_id, name))["ID"]
    message = refused(api, "DELETE", f"/{kind}s/{name}", None, 400)
    assert message == (f"rpc error: code = InvalidArgument desc = {kind} '{name}' is in use by the following "
                       f"service: {service}")
    assert api.ok("GET", f"/{kind}s/{name}")["ID"] == object_id
    api.ok("DELETE", f"/services/{service_id}")
    status, _ = api.call("DELETE", f"/{kind}s/{name}")
    assert status == 204
    assert refused(api, "GET", f"/{kind}s/{name}", None, 404) == f"{kind} {name} not found"
    assert refused(api, "DELETE", f"/{kind}s/{name}", None, 404) == f"{kind} {name} not found"


@pytest.mark.parametrize("kind", KINDS)
def test_base64_with_line_breaks_is_accepted_as_go_decodes_it(api: Api, kind: str) -> None:
    name = fresh("wrapped")
    reply = api.ok("POST", f"/{kind}s/create", {"Name": name, "Data": "aGVs\nbG8=\r\n"})
    if kind == "config":
        assert base64.b64decode(api.ok("GET", f"/configs/{reply['ID']}")["Spec"]["Data"]) == b"hello"


@pytest.mark.parametrize("kind", KINDS)
def test_templating_is_kept_as_docker_shows_it(api: Api, kind: str) -> None:
    name = fresh("tpl")
    object_id = create(api, kind, name, b"{{.Service.Name}}", Templating={"Name": "golang"})
    assert api.ok("GET", f"/{kind}s/{object_id}")["Spec"]["Templating"] == {"Name": "golang"}
    # Go matches field names case-insensitively, as docker-py's lower-case dicts rely on
    lower = api.ok("POST", f"/{kind}s/create",
                   {"name": fresh("tpl"), "data": b64(b"x"), "templating": {"name": "golang"}})
    assert api.ok("GET", f"/{kind}s/{lower['ID']}")["Spec"]["Templating"] == {"Name": "golang"}
    body = {"Name": fresh("jinja"), "Data": b64(b"x"), "Templating": {"Name": "jinja"}}
    assert "unrecognized template type 'jinja'" in refused(api, "POST", f"/{kind}s/create", body, 400)


@pytest.mark.parametrize("kind", KINDS)
def test_services_must_reference_existing_objects(api: Api, kind: str) -> None:
    label = kind.capitalize()
    name, service = fresh("ref"), fresh("refsvc")
    object_id = create(api, kind, name)
    missing = service_spec(service, kind, "nosuchid0000000000000000", "nope")
    message = refused(api, "POST", "/services/create", missing, 400)
    assert message == f"rpc error: code = InvalidArgument desc = {kind} not found: nope"
    renamed = service_spec(service, kind, object_id, "other-name")  # the id must carry its current name
    assert refused(api, "POST", "/services/create", renamed, 400).endswith(f"{kind} not found: other-name")
    malformed = service_spec(service, kind, object_id, name)
    del malformed["TaskTemplate"]["ContainerSpec"][f"{label}s"][0][f"{label}Name"]
    assert refused(api, "POST", "/services/create", malformed, 400).endswith(f"malformed {kind} reference")
    twice = service_spec(service, kind, object_id, name)
    refs = twice["TaskTemplate"]["ContainerSpec"][f"{label}s"]
    refs.append(dict(refs[0]))
    target = refs[0]["File"]["Name"]
    assert refused(api, "POST", "/services/create", twice, 400).endswith(
        f"{kind} references '{name}' and '{name}' have a conflicting target: '{target}'")
    assert service not in {s["Spec"]["Name"] for s in api.ok("GET", "/services")}

    created = api.ok("POST", "/services/create", service_spec(service, kind, object_id, name))
    current = api.ok("GET", f"/services/{created['ID']}")
    spec = current["Spec"]
    spec["TaskTemplate"]["ContainerSpec"][f"{label}s"][0].update({f"{label}ID": "gone0000000000000000000000",
                                                                  f"{label}Name": "gone"})
    version = current["Version"]["Index"]
    assert refused(api, "POST", f"/services/{created['ID']}/update?version={version}", spec, 400).endswith(
        f"{kind} not found: gone")
    assert api.ok("GET", f"/services/{created['ID']}")["Version"]["Index"] == version
    api.ok("DELETE", f"/services/{created['ID']}")
