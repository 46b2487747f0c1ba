"""The stack deploy/rm flow against an in-memory Engine API: order of calls, what an update sends, pruning,
image resolution, and that a stack refused on the client writes nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shoal.api.errors import FailedPrecondition, InvalidArgument, NotFound, ShoalError
from shoal.compose import deploy as stack
from shoal.compose.loader import load

DIGEST = "sha256:" + "ab" * 32


class FakeEngine:
    """Objects by kind; records every call. `registry` maps images to the digest /distribution reports."""

    def __init__(self, manager: bool = True) -> None:
        self.manager = manager
        self.objects: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in ("services", "networks", "secrets",
                                                                               "configs")}
        self.calls: list[tuple[str, str, Any, dict[str, Any] | None]] = []
        self.headers: list[tuple[str, dict[str, str] | None]] = []
        self.registry: dict[str, str] = {}
        self.refuse_secret_update = False
        self._next = 0

    def _by_name(self, kind: str, name: str) -> dict[str, Any]:
        for obj in self.objects[kind].values():
            if obj["Spec"]["Name"] == name or obj["ID"] == name:
                return obj
        raise NotFound(f"Error response from daemon: {kind[:-1]} {name} not found")

    def get(self, path: str, params: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> Any:
        self.calls.append(("GET", path, None, params))
        self.headers.append((path, headers))
        parts = path.strip("/").split("/")
        if path == "/info":
            return {"Swarm": {"ControlAvailable": self.manager}}
        if parts[0] == "distribution":
            image = "/".join(parts[1:-1])
            if image not in self.registry:
                raise ShoalError("Error response from daemon: no such image in any registry")
            return {"Descriptor": {"digest": self.registry[image]}, "Platforms": [{"architecture": "amd64",
                                                                                   "os": "linux"}]}
        if len(parts) == 2:
            return self._by_name(parts[0], parts[1])
        filters = json.loads((params or {}).get("filters", "{}"))
        found = list(self.objects[parts[0]].values())
        for label in filters.get("label", {}):
            key, _, value = label.partition("=")
            found = [o for o in found
                     if key in o["Spec"]["Labels"] and (not value or o["Spec"]["Labels"][key] == value)]
        if "name" in filters:
            found = [o for o in found if o["Spec"]["Name"] in filters["name"]]
        return found

    def post(self, path: str, body: Any, params: dict[str, Any] | None = None,
             headers: dict[str, str] | None = None) -> Any:
        self.calls.append(("POST", path, body, params))
        self.headers.append((path, headers))
        parts = path.strip("/").split("/")
        if parts[1] == "create":
            self._next += 1
            ident = f"{parts[0][:3]}{self._next}"
            self.objects[parts[0]][ident] = {"ID": ident, "Version": {"Index": self._next}, "Spec": body}
            return {"ID": ident}
        current = self.objects[parts[0]][parts[1]]
        assert params and params["version"] == current["Version"]["Index"], "update out of sequence"
        if parts[0] == "secrets" and self.refuse_secret_update:
            raise ShoalError("Error response from daemon: rpc error: code = InvalidArgument desc = only updates to "
                             "Labels are allowed")
        self._next += 1
        current.update({"Version": {"Index": self._next}, "Spec": body})
        return {"Warnings": None}

    def delete(self, path: str) -> None:
        self.calls.append(("DELETE", path, None, None))
        kind, ident = path.strip("/").split("/")
        del self.objects[kind][ident]

    def writes(self) -> list[tuple[str, str]]:
        return [(method, path) for method, path, _, _ in self.calls if method != "GET"]


STACK = """
services:
  web:
    image: web:1
    environment: [MODE=a]
    secrets: [token]
    configs: [settings]
    networks: [front]
  worker:
    image: worker
networks:
  front: {}
secrets:
  token: {file: ./token.txt}
configs:
  settings: {file: ./settings.ini}
"""


def _stack(tmp_path: Path, text: str = STACK) -> Any:
    (tmp_path / "token.txt").write_text("t0ken")
    (tmp_path / "settings.ini").write_text("a=1\n")
    (tmp_path / "compose.yml").write_text(text)
    return load([str(tmp_path / "compose.yml")], environ={})


def _deploy(engine: FakeEngine, compose: Any, **options: Any) -> list[str]:
    out: list[str] = []
    stack.deploy(engine, compose, "st", stack.DeployOptions(**options), out.append, out.append)
    return out


def test_first_deploy_creates_networks_secrets_configs_then_services(tmp_path: Path) -> None:
    engine = FakeEngine()
    out = _deploy(engine, _stack(tmp_path), resolve_image="never")
    assert out == ["Creating network st_default", "Creating network st_front", "Creating secret st_token",
                   "Creating config st_settings", "Creating service st_web", "Creating service st_worker"]
    assert engine.writes() == [("POST", "/networks/create")] * 2 + [("POST", "/secrets/create"),
                                                                   ("POST", "/configs/create")] + [
        ("POST", "/services/create")] * 2
    web = engine._by_name("services", "st_web")["Spec"]
    secret = engine._by_name("secrets", "st_token")
    assert web["TaskTemplate"]["ContainerSpec"]["Secrets"][0]["SecretID"] == secret["ID"]
    assert engine._by_name("services", "st_worker")["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] == "worker:latest"


def test_redeploy_updates_with_the_version_read_and_keeps_force_update(tmp_path: Path) -> None:
    engine = FakeEngine()
    _deploy(engine, _stack(tmp_path), resolve_image="never")
    web = engine._by_name("services", "st_web")
    web["Spec"]["TaskTemplate"]["ForceUpdate"] = 3
    read_version = web["Version"]["Index"]
    engine.calls.clear()
    out = _deploy(engine, _stack(tmp_path, STACK.replace("MODE=a", "MODE=b")), resolve_image="never")
    assert f"Updating service st_web (id: {web['ID']})" in out
    update = next(c for c in engine.calls if c[1] == f"/services/{web['ID']}/update")
    assert update[3] == {"version": read_version}
    assert update[2]["TaskTemplate"]["ForceUpdate"] == 3
    assert update[2]["TaskTemplate"]["ContainerSpec"]["Env"] == ["MODE=b"]
    assert ("POST", "/networks/create") not in engine.writes()  # the stack's networks exist already


def test_secret_with_changed_data_fails_with_the_daemons_reason(tmp_path: Path) -> None:
    engine = FakeEngine()
    _deploy(engine, _stack(tmp_path), resolve_image="never")
    engine.refuse_secret_update = True
    with pytest.raises(ShoalError) as caught:
        _deploy(engine, _stack(tmp_path), resolve_image="never")
    assert str(caught.value) == ("failed to update secret st_token: Error response from daemon: rpc error: code = "
                                 "InvalidArgument desc = only updates to Labels are allowed")


def test_prune_removes_the_services_the_files_no_longer_name(tmp_path: Path) -> None:
    engine = FakeEngine()
    _deploy(engine, _stack(tmp_path), resolve_image="never")
    smaller = STACK.replace("  worker:\n    image: worker\n", "")
    out = _deploy(engine, _stack(tmp_path, smaller), resolve_image="never")
    assert "Removing service st_worker" not in out  # without --prune nothing is removed
    out = _deploy(engine, _stack(tmp_path, smaller), resolve_image="never", prune=True)
    assert out[0] == "Removing service st_worker"
    assert sorted(s["Spec"]["Name"] for s in engine.objects["services"].values()) == ["st_web"]


def test_resolve_image_pins_digests_and_keeps_them_while_the_image_is_unchanged(tmp_path: Path) -> None:
    engine = FakeEngine()
    engine.registry = {"web:1": DIGEST}
    out = _deploy(engine, _stack(tmp_path))
    web = engine._by_name("services", "st_web")["Spec"]
    assert web["TaskTemplate"]["ContainerSpec"]["Image"] == f"web:1@{DIGEST}"
    assert web["TaskTemplate"]["Placement"]["Platforms"] == [{"Architecture": "amd64", "OS": "linux"}]
    assert web["Labels"]["com.docker.stack.image"] == "web:1"
    assert not any("could not be accessed" in line for line in out)  # create prints no digest warning
    engine.registry = {}
    out = _deploy(engine, _stack(tmp_path), resolve_image="changed")
    assert engine._by_name("services", "st_web")["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] == f"web:1@{DIGEST}"
    assert not any(c[1].startswith("/distribution/web") for c in engine.calls[-12:])
    out = _deploy(engine, _stack(tmp_path))  # always: asked again, and warned when the registry cannot answer
    assert "image web:1 could not be accessed on a registry to record" in "\n".join(out)


@pytest.mark.parametrize(("text", "engine", "error", "message"), [
    (STACK, FakeEngine(manager=False), FailedPrecondition, stack.NOT_A_MANAGER),
    (STACK.replace("networks: [front]", "networks: [nope]"), FakeEngine(), InvalidArgument,
     'service web: undefined network "nope"'),
    (STACK.replace("secrets: [token]", "secrets: [nope]"), FakeEngine(), InvalidArgument,
     'service web: undefined secret "nope"'),
    (STACK.replace("./token.txt", "./missing.txt"), FakeEngine(), InvalidArgument, "no such file or directory"),
    (STACK.replace("  front: {}", "  front: {external: true}"), FakeEngine(), NotFound,
     'network "front" is declared as external, but could not be found. You need to create a swarm-scoped '
     "network before the stack is deployed"),
    (STACK.replace("{file: ./token.txt}", "{external: true, name: shared-token}"), FakeEngine(), NotFound,
     "service web: secret not found: shared-token"),
])
def test_a_refused_stack_writes_nothing(tmp_path: Path, text: str, engine: FakeEngine, error: type[Exception],
                                        message: str) -> None:
    engine.objects["services"]["old"] = {"ID": "old", "Version": {"Index": 1},  # what --prune would remove
                                         "Spec": {"Name": "st_old", "Labels": {"com.docker.stack.namespace": "st"}}}
    with pytest.raises(error) as caught:
        _deploy(engine, _stack(tmp_path, text), resolve_image="never", prune=True)
    assert message in str(caught.value)
    assert engine.writes() == []


def test_rm_removes_services_then_secrets_configs_and_networks(tmp_path: Path) -> None:
    engine = FakeEngine()
    _deploy(engine, _stack(tmp_path), resolve_image="never")
    out: list[str] = []
    assert stack.list_stacks(engine) == [("st", 2)]
    assert stack.remove(engine, ["st", "other"], out.append, out.append) == []
    assert out == ["Removing service st_web", "Removing service st_worker", "Removing secret st_token",
                   "Removing config st_settings", "Removing network st_default", "Removing network st_front",
                   "Nothing found in stack: other"]
    assert not any(engine.objects.values())
    assert stack.list_stacks(engine) == []


def test_with_registry_auth_sends_the_credentials_of_each_image(tmp_path: Path) -> None:
    engine = FakeEngine()
    engine.registry = {"web:1": DIGEST}

    def auth(image: str) -> str | None:
        return f"token-for-{image}" if image.startswith("web") else None

    _deploy(engine, _stack(tmp_path), registry_auth=auth)
    sent = dict(engine.headers)
    assert sent["/distribution/web:1/json"] == {"X-Registry-Auth": "token-for-web:1"}
    creates = [h for path, h in engine.headers if path == "/services/create"]
    assert creates == [{"X-Registry-Auth": "token-for-web:1"}, None]
    _deploy(engine, _stack(tmp_path), registry_auth=auth)
    web_id = engine._by_name("services", "st_web")["ID"]
    assert sent != dict(engine.headers) and dict(engine.headers)[f"/services/{web_id}/update"] == {
        "X-Registry-Auth": "token-for-web:1"}
