"""The image routes over HTTP, one contract for both backends: the fake the front-door tests use and
shoald's NodeBackend (on a FakeExecutor), each on a real image store, so the fake cannot pass what
the product fails. Pulls, registry lookups and logins go to a docker-registry on loopback."""

from __future__ import annotations

import base64
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shoal.base.clock import SystemClock
from shoal.executor.base import TaskRuntime
from shoal.images.service import ImageService
from shoal.node.backend import NodeBackend
from shoal.node.config import DaemonConfig
from shoal.node.node import Node
from shoal.testing import registry as registry_support
from shoal.testing.fake_backend import FakeBackend
from shoal.testing.fake_executor import FakeExecutor
from shoal.testing.oci_images import Image, Pusher, make_image, make_layer
from shoal.testing.registry import Registry

from .conftest import EngineServer, RawResponse, request

USER, PASSWORD = "alice", "s3cret-pw"


class Backends:
    """Builds an engine on either backend and puts a task container on it that uses an image."""

    def __init__(self, kind: str, root: Path) -> None:
        self.kind = kind
        images = ImageService(root / "images")
        if kind == "fake":
            self.fake = FakeBackend(images)
            self.engine = EngineServer(self.fake)
        else:
            self.executor = FakeExecutor()
            node = Node(DaemonConfig(data_root=root / "data"), SystemClock(), self.executor, None)
            self.engine = EngineServer(NodeBackend(node, images))  # type: ignore[arg-type]

    def run_task_of(self, image: str, *, running: bool = True) -> str:
        """A task container from `image`; returns its id."""
        if self.kind == "fake":
            container_id = self.fake.add_container("web.1.t1")
            self.fake.containers[container_id].update(Image=image, State="running" if running else "exited")
            return container_id
        runtime = TaskRuntime(task_id="t1", service_id="s1", service_name="web", node_id="n1", slot=1, image=image,
                              command=("httpd",))
        controller = self.executor.controller(runtime)
        self.engine.run(controller.prepare())
        if running:
            self.engine.run(controller.start())
        return self.executor.containers_by_task["t1"].status.container_id


@pytest.fixture(params=["fake", "node"])
def backends(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backends]:
    made = Backends(request.param, tmp_path)
    try:
        yield made
    finally:
        made.engine.close()


def messages(response: RawResponse) -> list[dict[str, Any]]:
    return [json.loads(line) for line in response.body.splitlines() if line.strip()]


def rootfs_tar(files: dict[str, str]) -> bytes:
    return make_layer(files).tar


def import_image(engine: EngineServer, query: str, files: dict[str, str] | None = None) -> str:
    answer = request(engine, "POST", f"/v1.41/images/create?fromSrc=-&{query}",
                     data=rootfs_tar(files or {"srv/index.html": "hello\n"}))
    assert answer.status == 200, answer.body
    image_id = messages(answer)[-1]["status"]
    assert image_id.startswith("sha256:")
    return str(image_id)


def test_import_list_inspect_history_tag_save_remove_load(backends: Backends) -> None:
    engine = backends.engine
    image_id = import_image(engine, "repo=web&tag=v1&changes=CMD%20%5B%22httpd%22%5D&message=first")
    rows = json.loads(request(engine, "GET", "/v1.41/images/json").body)
    assert [(row["Id"], row["RepoTags"]) for row in rows] == [(image_id, ["web:v1"])]
    inspected = json.loads(request(engine, "GET", "/v1.41/images/web:v1/json").body)
    assert (inspected["Id"], inspected["Config"]["Cmd"]) == (image_id, ["httpd"])
    history = json.loads(request(engine, "GET", "/v1.41/images/web:v1/history").body)
    assert history[0]["Comment"] == "first"

    tagged = request(engine, "POST", "/v1.41/images/web:v1/tag?repo=registry.test/team/web&tag=v2")
    assert (tagged.status, tagged.body) == (201, b"")
    assert json.loads(request(engine, "GET", "/v1.41/images/registry.test/team/web:v2/json").body)["Id"] == image_id

    saved = request(engine, "GET", "/v1.41/images/get?names=web:v1&names=registry.test/team/web:v2")
    assert saved.status == 200 and saved.headers["Content-Type"] == "application/x-tar"
    with tarfile.open(fileobj=io.BytesIO(saved.body)) as archive:
        manifest = json.load(archive.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert sorted(tag for entry in manifest for tag in entry["RepoTags"]) == ["registry.test/team/web:v2", "web:v1"]
    assert request(engine, "GET", "/v1.41/images/web:v1/get").status == 200

    untagged = request(engine, "DELETE", "/v1.41/images/registry.test/team/web:v2")
    assert json.loads(untagged.body) == [{"Untagged": "registry.test/team/web:v2"}]
    removed = json.loads(request(engine, "DELETE", "/v1.41/images/web:v1").body)
    assert removed[:2] == [{"Untagged": "web:v1"}, {"Deleted": image_id}]
    assert request(engine, "GET", "/v1.41/images/web:v1/json").status == 404

    loaded = request(engine, "POST", "/v1.41/images/load?quiet=1", data=saved.body)
    assert loaded.status == 200
    assert {m["stream"] for m in messages(loaded)} == {"Loaded image: web:v1\n",
                                                        "Loaded image: registry.test/team/web:v2\n"}
    assert json.loads(request(engine, "GET", "/v1.41/images/web:v1/json").body)["Id"] == image_id


def test_bad_input_gets_docker_s_errors_and_changes_nothing(backends: Backends) -> None:
    engine = backends.engine
    missing = request(engine, "GET", "/v1.41/images/nothere:1/json")
    assert (missing.status, json.loads(missing.body)["message"]) == (404, "No such image: nothere:1")
    assert request(engine, "GET", "/v1.41/images/nothere:1/history").status == 404
    assert request(engine, "GET", "/v1.41/images/nothere:1/get").status == 404
    assert request(engine, "DELETE", "/v1.41/images/nothere:1").status == 404
    assert request(engine, "POST", "/v1.41/images/nothere:1/tag?repo=x").status == 404
    garbage = request(engine, "POST", "/v1.41/images/create?fromSrc=-&repo=web", data=b"not a tarball" * 100)
    assert garbage.status == 400
    bad_change = request(engine, "POST", "/v1.41/images/create?fromSrc=-&repo=web&changes=BOGUS%20x",
                         data=rootfs_tar({"a": "b"}))
    assert bad_change.status == 400
    bad_name = request(engine, "POST", "/v1.41/images/create?fromSrc=-&repo=Not%20A%20Ref", data=rootfs_tar({"a": "b"}))
    assert bad_name.status == 400
    bad_pull = request(engine, "POST", "/v1.41/images/create?fromImage=Not%20A%20Ref&tag=latest")
    assert (bad_pull.status, "invalid reference format" in json.loads(bad_pull.body)["message"]) == (400, True)
    bad_filter = request(engine, "GET", "/v1.41/images/json?filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D")
    assert bad_filter.status == 400
    bad_login = request(engine, "POST", "/v1.41/auth", data=b"[1]")
    assert bad_login.status == 400
    assert json.loads(request(engine, "GET", "/v1.41/images/json").body) == []

    import_image(engine, "repo=web&tag=v1")
    by_digest_tag = request(engine, "POST", "/v1.41/images/web:v1/tag?repo=web@sha256:" + "0" * 64)
    assert by_digest_tag.status == 400
    assert [row["RepoTags"] for row in json.loads(request(engine, "GET", "/v1.41/images/json").body)] == [["web:v1"]]


def test_remove_refused_while_a_task_uses_the_image_unless_forced(backends: Backends) -> None:
    engine = backends.engine
    image_id = import_image(engine, "repo=web&tag=v1")
    container_id = backends.run_task_of("web:v1")
    refused = request(engine, "DELETE", "/v1.41/images/web:v1")
    assert refused.status == 409
    assert json.loads(refused.body)["message"] == (
        f'conflict: unable to remove repository reference "web:v1" (must force) - container '
        f"{container_id[:12]} is using its referenced image {image_id[7:19]}")
    forced_running = request(engine, "DELETE", "/v1.41/images/web:v1?force=1")
    assert forced_running.status == 409 and "cannot be forced" in json.loads(forced_running.body)["message"]
    assert request(engine, "GET", "/v1.41/images/web:v1/json").status == 200

    pruned = request(engine, "POST", "/v1.41/images/prune?filters=%7B%22dangling%22%3A%5B%22false%22%5D%7D")
    assert json.loads(pruned.body)["ImagesDeleted"] is None  # in use: kept
    assert request(engine, "GET", "/v1.41/images/web:v1/json").status == 200


def test_remove_forced_for_a_stopped_task_and_prune_of_dangling(backends: Backends) -> None:
    engine = backends.engine
    image_id = import_image(engine, "repo=web&tag=v1")
    backends.run_task_of("web:v1", running=False)
    assert request(engine, "DELETE", "/v1.41/images/web:v1").status == 409
    forced = request(engine, "DELETE", "/v1.41/images/web:v1?force=1&noprune=1")
    assert forced.status == 200 and {"Deleted": image_id} in json.loads(forced.body)

    dangling = import_image(engine, "", {"other": "file\n"})
    pruned = json.loads(request(engine, "POST", "/v1.41/images/prune").body)
    assert pruned["ImagesDeleted"] == [{"Deleted": dangling}]
    assert pruned["SpaceReclaimed"] > 0


# -- against a registry ---------------------------------------------------------------------------

class Remote:
    def __init__(self, open_registry: Registry, basic: Registry, image: Image) -> None:
        self.open = open_registry
        self.basic = basic
        self.image = image


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Remote]:
    why_not = registry_support.available()
    if why_not:
        pytest.skip(why_not)
    work = tmp_path_factory.mktemp("registry")
    storage = work / "storage"
    open_registry = Registry(work, storage)
    basic_dir = work / "basic"
    basic_dir.mkdir()
    basic = Registry(basic_dir, storage, htpasswd={USER: PASSWORD})
    open_registry.start()
    try:
        basic.start()
        image = make_image([make_layer({"bin/app": "#!/bin/sh\n"}), make_layer({"etc/app": "v1\n"})],
                           config={"Cmd": ["/bin/app"]})
        Pusher(open_registry.base_url).image("team/app", "v1", image)
        yield Remote(open_registry, basic, image)
    finally:
        basic.stop()
        open_registry.stop()


def registry_auth(username: str, password: str, server: str) -> str:
    body = json.dumps({"username": username, "password": password, "serveraddress": server}).encode()
    return base64.urlsafe_b64encode(body).decode()


def test_pull_streams_progress_then_the_image_is_there(backends: Backends, remote: Remote) -> None:
    engine = backends.engine
    ref = f"{remote.open.host}/team/app"
    pulled = request(engine, "POST", f"/v1.41/images/create?fromImage={ref}&tag=v1")
    assert pulled.status == 200
    lines = messages(pulled)
    assert lines[0]["status"] == "Pulling from team/app"
    assert {"status": f"Digest: {remote.image.digest}"} in lines
    assert lines[-1] == {"status": f"Status: Downloaded newer image for {ref}:v1"}
    assert json.loads(request(engine, "GET", f"/v1.41/images/{ref}:v1/json").body)["Id"] == remote.image.id

    by_digest = request(engine, "POST", f"/v1.41/images/create?fromImage={ref}&tag={remote.image.digest}")
    assert messages(by_digest)[-1]["status"].startswith("Status: Image is up to date")

    # a failure before the first message is the answer's status, as dockerd's
    missing = request(engine, "POST", f"/v1.41/images/create?fromImage={ref}&tag=nope")
    assert missing.status == 404
    assert json.loads(missing.body)["message"] == (
        f"manifest for {ref}:nope not found: manifest unknown: manifest unknown")


def test_pull_with_registry_auth_and_login(backends: Backends, remote: Remote) -> None:
    engine = backends.engine
    ref = f"{remote.basic.host}/team/app"
    refused = request(engine, "POST", f"/v1.41/images/create?fromImage={ref}&tag=v1")
    assert refused.status == 404  # as dockerd: a 401 would make the docker CLI prompt for a login
    assert json.loads(refused.body)["message"].startswith(f"pull access denied for {ref}")
    good = {"X-Registry-Auth": registry_auth(USER, PASSWORD, remote.basic.host)}
    pulled = messages(request(engine, "POST", f"/v1.41/images/create?fromImage={ref}&tag=v1", headers=good))
    assert pulled[-1] == {"status": f"Status: Downloaded newer image for {ref}:v1"}

    login = {"username": USER, "password": PASSWORD, "serveraddress": remote.basic.host}
    accepted = request(engine, "POST", "/v1.41/auth", data=json.dumps(login).encode())
    assert (accepted.status, json.loads(accepted.body)["Status"]) == (200, "Login Succeeded")
    wrong = request(engine, "POST", "/v1.41/auth", data=json.dumps({**login, "password": "wrong"}).encode())
    assert wrong.status == 401


def test_distribution_names_the_registry_s_digest(backends: Backends, remote: Remote) -> None:
    engine = backends.engine
    found = request(engine, "GET", f"/v1.41/distribution/{remote.open.host}/team/app:v1/json")
    assert found.status == 200
    body = json.loads(found.body)
    assert body["Descriptor"]["digest"] == remote.image.digest
    assert body["Platforms"] == [{"architecture": "amd64", "os": "linux"}]
    unknown = request(engine, "GET", f"/v1.41/distribution/{remote.open.host}/team/nothere:v1/json")
    assert unknown.status == 404
    need_auth = request(engine, "GET", f"/v1.41/distribution/{remote.basic.host}/team/app:v1/json")
    assert need_auth.status == 401
    with_auth = request(engine, "GET", f"/v1.41/distribution/{remote.basic.host}/team/app:v1/json",
                        headers={"X-Registry-Auth": registry_auth(USER, PASSWORD, remote.basic.host)})
    assert json.loads(with_auth.body)["Descriptor"]["digest"] == remote.image.digest
