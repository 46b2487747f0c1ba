"""docker-py (docker.DockerClient) through swarm, nodes, services and tasks against a real shoald."""

from __future__ import annotations

from collections.abc import Iterator

import docker
import pytest
from docker.errors import APIError, NotFound

from shoal.testing.daemon import ShoalDaemon, wait_until


@pytest.fixture(scope="module")
def client(daemon: ShoalDaemon) -> Iterator[docker.DockerClient]:
    handle = docker.DockerClient(base_url=daemon.docker_host, version="auto", timeout=30)
    try:
        yield handle
    finally:
        handle.close()


def test_ping_and_version(client: docker.DockerClient) -> None:
    assert client.ping() is True
    assert client.version()["ApiVersion"] == "1.41"


def test_swarm_init_and_inspect(client: docker.DockerClient) -> None:
    node_id = client.swarm.init(advertise_addr="127.0.0.1", listen_addr="0.0.0.0:4567")
    assert len(node_id) == 25
    client.swarm.reload()
    assert client.swarm.attrs["JoinTokens"]["Worker"].startswith("SWMTKN-1-")
    assert client.swarm.attrs["DefaultAddrPool"] == ["10.0.0.0/8"]
    assert client.swarm.attrs["SubnetSize"] == 24
    with pytest.raises(APIError) as caught:
        client.swarm.init(advertise_addr="127.0.0.1")
    assert caught.value.status_code == 503


def test_rotate_worker_token(client: docker.DockerClient) -> None:
    client.swarm.reload()
    before = dict(client.swarm.attrs["JoinTokens"])
    client.swarm.update(rotate_worker_token=True)
    client.swarm.reload()
    after = client.swarm.attrs["JoinTokens"]
    assert after["Worker"] != before["Worker"] and after["Manager"] == before["Manager"]


def test_nodes_list_and_update(client: docker.DockerClient) -> None:
    nodes = client.nodes.list()
    assert len(nodes) == 1
    node = nodes[0]
    assert node.attrs["Spec"]["Role"] == "manager"
    assert node.attrs["ManagerStatus"]["Leader"] is True
    wait_until(lambda: client.nodes.get(node.id).attrs["Status"]["State"] == "ready", 10, "node never ready")
    node = client.nodes.get(node.id)
    spec = {**node.attrs["Spec"], "Labels": {"zone": "a"}}
    assert node.update(spec) is True
    assert client.nodes.get(node.id).attrs["Spec"]["Labels"] == {"zone": "a"}
    assert client.nodes.list(filters={"role": "manager"})[0].id == node.id
    with pytest.raises(APIError) as caught:
        client.api.remove_node(node.id, force=False)
    assert caught.value.status_code >= 400


def test_service_lifecycle(client: docker.DockerClient) -> None:
    service = client.services.create(
        "my-apache2:latest", command=["sh", "-c", "echo hello; sleep 3600"], name="dockerpy-svc",
        mode=docker.types.ServiceMode("replicated", replicas=2), labels={"team": "x"},
        # docker-py's scale sends back the spec read with Swarm's defaults filled in, which differs from
        # the stored one, so Swarm (and shoal) replaces every task; sleep ignores SIGTERM as pid 1
        stop_grace_period=1_000_000_000,
    )
    assert service.name == "dockerpy-svc"

    def running() -> int:
        return sum(1 for t in service.tasks(filters={"desired-state": "running"}) if t["Status"]["State"] == "running")

    wait_until(lambda: running() == 2, 30, "two tasks never ran")
    assert [s.name for s in client.services.list(filters={"label": "team=x"})] == ["dockerpy-svc"]
    service.reload()
    assert service.scale(3) == {"Warnings": None}
    wait_until(lambda: running() == 3, 30, "scale to 3 never converged")
    logs = b"".join(service.logs(stdout=True, stderr=True))
    assert logs.count(b"hello") >= 3
    tasks = client.api.tasks(filters={"service": "dockerpy-svc"})
    assert {t["Slot"] for t in tasks} >= {1, 2, 3}
    assert client.api.inspect_task(tasks[0]["ID"])["ServiceID"] == service.id
    defaults = client.api.inspect_service(service.id, insert_defaults=True)
    assert defaults["Spec"]["RollbackConfig"]["FailureAction"] == "pause"
    service.remove()
    with pytest.raises(NotFound):
        client.services.get(service.id)


def test_exec_into_task(client: docker.DockerClient) -> None:
    service = client.services.create("my-apache2:latest", command=["sleep", "3600"], name="execsvc")
    wait_until(lambda: len(client.containers.list(filters={"name": "execsvc"})) == 1, 30, "no container")
    container = client.containers.list(filters={"name": "execsvc"})[0]
    code, output = container.exec_run(["sh", "-c", "echo from-exec; exit 3"])
    assert code == 3 and output.strip() == b"from-exec"
    service.remove()
