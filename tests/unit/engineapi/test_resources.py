"""Swarm, nodes, services, tasks, secrets, configs, networks: status codes, bodies, and the clients'
view of them (docker-py and the docker CLI)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import docker
import pytest

from .conftest import EngineServer, needs_cli, request


@pytest.fixture
def client(engine: EngineServer) -> Iterator[docker.DockerClient]:
    docker_client = docker.DockerClient(base_url=engine.base_url, version="auto")
    try:
        yield docker_client
    finally:
        docker_client.close()


def test_swarm_init_returns_node_id_as_json_string(engine: EngineServer) -> None:
    response = request(engine, "POST", "/v1.41/swarm/init", data=b'{"ListenAddr":"0.0.0.0:2377"}')
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/json"
    assert json.loads(response.body) == engine.backend.node_id
    assert response.body.startswith(b'"')


def test_swarm_lifecycle_through_docker_py(engine: EngineServer, client: docker.DockerClient) -> None:
    node_id = client.swarm.init(advertise_addr="127.0.0.1")
    assert node_id == engine.backend.node_id
    client.swarm.reload()
    worker_token = client.swarm.attrs["JoinTokens"]["Worker"]
    client.swarm.update(rotate_worker_token=True)
    client.swarm.reload()
    assert client.swarm.attrs["JoinTokens"]["Worker"] != worker_token
    with pytest.raises(docker.errors.APIError) as not_locked:
        client.swarm.unlock("SWMKEY-1-x")
    assert not_locked.value.status_code == 409
    assert client.swarm.leave(force=True) is True
    with pytest.raises(docker.errors.APIError) as gone:
        client.swarm.reload()
    assert gone.value.status_code == 503


LOCKED = ('Swarm is encrypted and needs to be unlocked before it can be used. Please use "docker swarm unlock" '
          "to unlock it.")


def test_a_locked_manager_serves_only_unlock_info_and_ping(engine: EngineServer, client: docker.DockerClient) -> None:
    client.swarm.init(advertise_addr="127.0.0.1", autolock_managers=True)
    key = client.api.get_unlock_key()["UnlockKey"]
    assert key.startswith("SWMKEY-1-")
    engine.backend.restart_locked()
    for method, path in (("GET", "/v1.41/swarm"), ("GET", "/v1.41/services"), ("GET", "/v1.41/nodes"),
                         ("GET", "/v1.41/tasks"), ("GET", "/v1.41/swarm/unlockkey")):
        response = request(engine, method, path)
        assert (response.status, json.loads(response.body)) == (503, {"message": LOCKED}), path
    assert client.info()["Swarm"]["LocalNodeState"] == "locked"
    assert request(engine, "GET", "/_ping").body == b"OK"
    wrong = request(engine, "POST", "/v1.41/swarm/unlock", data=b'{"UnlockKey":"SWMKEY-1-AAAA"}')
    assert (wrong.status, json.loads(wrong.body)) == (
        401, {"message": "swarm could not be unlocked: invalid key provided"})
    malformed = request(engine, "POST", "/v1.41/swarm/unlock", data=b'{"UnlockKey":"nope"}')
    assert (malformed.status, json.loads(malformed.body)) == (400, {"message": "invalid key string"})
    with pytest.raises(docker.errors.APIError) as still_locked:
        client.services.list()
    assert still_locked.value.status_code == 503
    assert client.swarm.unlock(key) is True
    assert client.services.list() == []
    with pytest.raises(docker.errors.APIError) as not_locked:
        client.swarm.unlock(key)
    assert not_locked.value.status_code == 409


def test_swarm_update_with_stale_version_is_500_out_of_sequence(swarm_engine: EngineServer) -> None:
    response = request(swarm_engine, "POST", "/v1.41/swarm/update?version=1", data=b"{}")
    assert response.status == 500
    assert json.loads(response.body) == {"message": "rpc error: code = Unknown desc = update out of sequence"}


def test_node_update_and_remove(swarm_engine: EngineServer, client: docker.DockerClient) -> None:
    node = client.nodes.get(swarm_engine.backend.node_id)
    spec = {"Role": "manager", "Availability": "drain", "Labels": {"zone": "a"}, "Name": "n1"}
    assert node.update(spec) is True
    node.reload()
    assert node.attrs["Spec"] == spec
    update = request(
        swarm_engine, "POST", f"/v1.41/nodes/{node.id}/update?version={node.version}", data=json.dumps(spec).encode()
    )
    assert (update.status, update.body, "Content-Type" in update.headers) == (200, b"", False)
    with pytest.raises(docker.errors.APIError) as manager:
        client.api.remove_node(node.id, force=False)
    assert manager.value.status_code == 400
    with pytest.raises(docker.errors.NotFound):
        client.api.remove_node("nosuchnode", force=True)


def test_service_lifecycle_through_docker_py(swarm_engine: EngineServer, client: docker.DockerClient) -> None:
    service = client.services.create("busybox", ["sleep", "1d"], name="web", labels={"tier": "front"})
    assert service.name == "web"
    inspected = client.api.inspect_service("web", insert_defaults=True)
    assert inspected["Spec"]["RollbackConfig"]["FailureAction"] == "pause"
    listed = client.services.list(filters={"label": "tier=front"})
    assert [s.id for s in listed] == [service.id]
    assert client.services.list(filters={"label": "tier=back"}) == []

    stale = service.version
    service.update(labels={"tier": "back"})
    with pytest.raises(docker.errors.APIError) as out_of_sequence:
        client.api.update_service(service.id, stale, task_template={"ContainerSpec": {"Image": "busybox"}})
    assert out_of_sequence.value.status_code == 500
    assert str(out_of_sequence.value.explanation).endswith("update out of sequence")

    with pytest.raises(docker.errors.APIError) as duplicate:
        client.services.create("busybox", name="web")
    assert duplicate.value.status_code == 409
    service.remove()
    assert client.services.list() == []


def test_service_create_is_201_and_delete_is_empty_200(swarm_engine: EngineServer) -> None:
    spec = {"Name": "api", "TaskTemplate": {"ContainerSpec": {"Image": "img"}}}
    created = request(swarm_engine, "POST", "/v1.41/services/create", data=json.dumps(spec).encode())
    assert created.status == 201
    assert json.loads(created.body)["ID"] in swarm_engine.backend.services
    removed = request(swarm_engine, "DELETE", "/v1.41/services/api")
    assert (removed.status, removed.body) == (200, b"")
    assert "Content-Type" not in removed.headers


def test_service_update_without_version_is_400(swarm_engine: EngineServer) -> None:
    spec = {"Name": "api", "TaskTemplate": {"ContainerSpec": {"Image": "img"}}}
    swarm_engine.run(swarm_engine.backend.service_create(spec, None))
    response = request(swarm_engine, "POST", "/v1.41/services/api/update", data=json.dumps(spec).encode())
    assert response.status == 400
    assert json.loads(response.body)["message"].startswith("invalid service version '': ")


def test_tasks_list_and_inspect(swarm_engine: EngineServer, client: docker.DockerClient) -> None:
    task = {"ID": "t1", "ServiceID": "s1", "Status": {"State": "running"}, "Version": {"Index": 3}}
    swarm_engine.backend.tasks["t1"] = task
    assert request(swarm_engine, "GET", "/v1.41/tasks/t1").status == 200
    assert client.api.tasks(filters={"service": "s1"}) == [task]
    assert client.api.tasks(filters={"service": "other"}) == []
    missing = request(swarm_engine, "GET", "/v1.41/tasks/zz")
    assert (missing.status, json.loads(missing.body)) == (404, {"message": "task zz not found"})


def test_secret_and_config_status_codes(swarm_engine: EngineServer, client: docker.DockerClient) -> None:
    secret = client.secrets.create(name="s1", data=b"shh")
    assert "Data" not in client.api.inspect_secret(secret.id)["Spec"]
    with pytest.raises(docker.errors.APIError) as duplicate:
        client.secrets.create(name="s1", data=b"again")
    assert duplicate.value.status_code == 409
    assert request(swarm_engine, "DELETE", "/v1.41/secrets/s1").status == 204
    assert request(swarm_engine, "DELETE", "/v1.41/secrets/s1").status == 404
    config = client.configs.create(name="c1", data=b"cfg")
    assert [c.id for c in client.configs.list(filters={"name": "c"})] == [config.id]
    assert request(swarm_engine, "DELETE", f"/v1.41/configs/{config.id}").status == 204


def test_network_status_codes(swarm_engine: EngineServer, client: docker.DockerClient) -> None:
    network = client.networks.create("n1", driver="overlay")
    with pytest.raises(docker.errors.APIError) as duplicate:
        client.networks.create("n1", driver="overlay", check_duplicate=True)
    assert duplicate.value.status_code == 409
    removed = request(swarm_engine, "DELETE", f"/v1.41/networks/{network.id}")
    assert (removed.status, removed.body) == (204, b"")


@needs_cli
def test_cli_swarm_init_and_service_commands(engine: EngineServer) -> None:
    init = engine.cli("swarm", "init")
    assert init.returncode == 0, init.stderr
    assert "docker swarm join --token SWMTKN-1-fake-worker 127.0.0.1:2377" in init.stdout
    create = engine.cli("service", "create", "--detach", "--name", "web", "--replicas", "2", "busybox:latest")
    assert create.returncode == 0, create.stderr
    service_id = create.stdout.strip()
    assert service_id in engine.backend.services
    assert "could not be accessed on a registry" in create.stderr
    listing = engine.cli("service", "ls")
    assert listing.returncode == 0, listing.stderr
    assert "web" in listing.stdout and "0/2" in listing.stdout
    inspect = engine.cli("service", "inspect", "web")
    assert json.loads(inspect.stdout)[0]["ID"] == service_id
    missing = engine.cli("service", "inspect", "nope")
    assert missing.returncode == 1
    assert missing.stdout.strip() == "[]"
    scale = engine.cli("service", "scale", "--detach", "web=3")
    assert scale.returncode == 0, scale.stderr
    assert engine.backend.services[service_id]["Spec"]["Mode"]["Replicated"]["Replicas"] == 3
    assert engine.cli("service", "rm", "web").returncode == 0
    assert engine.backend.services == {}
