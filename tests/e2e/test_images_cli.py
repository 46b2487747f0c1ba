"""Images on a shoald with the oci executor and no Docker engine, through the real docker CLI and
docker-py: pull from a registry on loopback, load, save, import, images, inspect, tag, rmi (refused
while a service's task uses the image), then the seed scenario served by the image's own httpd."""

from __future__ import annotations

import re
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from shoal.executor.oci.rootfs import busybox_missing_reason
from shoal.executor.selection import default_executor
from shoal.testing import registry as registry_support
from shoal.testing.daemon import ShoalDaemon, cli_requirement, wait_until
from shoal.testing.oci_images import Image, Pusher, make_image, make_layer
from shoal.testing.registry import Registry, free_port

pytestmark = pytest.mark.skipif(**cli_requirement())

WEB_CMD = 'CMD ["httpd","-f","-v","-p","80","-h","/var/www"]'


def _oci_missing() -> str | None:
    executor, why = default_executor()
    if executor != "oci":
        return f"the oci executor cannot run here: {why}"
    return busybox_missing_reason() or registry_support.available()


@pytest.fixture(scope="module")
def oci_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShoalDaemon]:
    why_not = _oci_missing()
    if why_not:
        pytest.skip(why_not)
    shoald = ShoalDaemon(Path(tmp_path_factory.mktemp("shoald-oci")), executor="oci")
    shoald.start()
    try:
        shoald.docker("swarm", "init", "--advertise-addr", "127.0.0.1")
        yield shoald
    finally:
        shoald.leave_and_stop()


USER, PASSWORD = "alice", "s3cret-pw"


@dataclass
class Registries:
    open: Registry
    basic: Registry  # the same storage behind basic auth
    image: Image


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registries]:
    work = tmp_path_factory.mktemp("registry")
    (work / "basic").mkdir()
    running = Registry(work, work / "storage")
    basic = Registry(work / "basic", work / "storage", htpasswd={USER: PASSWORD})
    running.start()
    try:
        basic.start()
        image = make_image([make_layer({"bin/app": "#!/bin/sh\n"}), make_layer({"app/version": "1\n"})],
                           config={"Cmd": ["/bin/app"], "WorkingDir": "/app"})
        pusher = Pusher(running.base_url)
        pusher.image("team/app", "v1", image)
        pusher.image("team/app", "v2", make_image([make_layer({"app/version": "2\n"})]))
        arm = make_image([make_layer({"arch": "arm64\n"})], architecture="arm64", variant="v8")
        pusher.index("team/armonly", "latest", [arm], oci=False)
        yield Registries(running, basic, image)
    finally:
        basic.stop()
        running.stop()


def test_pull_images_inspect_tag_save_rmi_load(oci_daemon: ShoalDaemon, registry: Registries,
                                               tmp_path: Path) -> None:
    running, image = registry.open, registry.image
    ref = f"{running.host}/team/app:v1"
    out = oci_daemon.docker("pull", ref).stdout.splitlines()
    assert out[0] == "v1: Pulling from team/app"
    assert f"Digest: {image.digest}" in out and f"Status: Downloaded newer image for {ref}" in out
    listed = oci_daemon.docker("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}").stdout.splitlines()
    assert f"{ref} {image.id[7:19]}" in listed
    inspected = oci_daemon.docker("image", "inspect", "--format", "{{.Id}} {{.Config.WorkingDir}}", ref)
    assert inspected.stdout.strip() == f"{image.id} /app"

    oci_daemon.docker("tag", ref, "mine:copy")
    history = oci_daemon.docker("history", "--format", "{{.CreatedBy}}", "mine:copy").stdout
    assert history.split("\n")[:2] == ["layer 1", "layer 0"]
    archive = tmp_path / "saved.tar"
    oci_daemon.docker("save", "-o", str(archive), "mine:copy")
    removed = oci_daemon.docker("rmi", "mine:copy").stdout
    assert removed.strip() == "Untagged: mine:copy"  # the registry name still holds the image
    assert oci_daemon.docker("load", "-i", str(archive)).stdout.strip() == "Loaded image: mine:copy"
    assert oci_daemon.docker("image", "inspect", "--format", "{{.Id}}", "mine:copy").stdout.strip() == image.id

    missing = oci_daemon.docker("image", "inspect", "nothere:1", check=False)
    assert missing.returncode == 1 and "No such image: nothere:1" in missing.stderr
    bad = oci_daemon.docker("pull", f"{running.host}/team/app:nope", check=False)
    assert bad.returncode == 1
    bad = oci_daemon.docker("pull", "Not/A Ref", check=False)
    assert bad.returncode != 0 and "invalid reference format" in bad.stderr
    bad = oci_daemon.docker("pull", f"{running.host}/team/armonly", check=False)
    assert bad.returncode == 1 and "no matching manifest for linux/amd64 in the manifest list entries" in bad.stderr


def test_docker_login_and_pull_with_the_credentials(oci_daemon: ShoalDaemon, registry: Registries,
                                                    tmp_path: Path) -> None:
    config = ["--config", str(tmp_path / "docker-config")]
    host = registry.basic.host
    refused = oci_daemon.docker(*config, "pull", f"{host}/team/app:v1", check=False)
    assert refused.returncode == 1
    wrong = oci_daemon.docker(*config, "login", "-u", USER, "-p", "wrong", host, check=False)
    assert wrong.returncode == 1 and "401 Unauthorized" in wrong.stderr
    login = oci_daemon.docker(*config, "login", "-u", USER, "-p", PASSWORD, host)
    assert "Login Succeeded" in login.stdout
    pulled = oci_daemon.docker(*config, "pull", f"{host}/team/app:v1").stdout
    assert f"Status: Downloaded newer image for {host}/team/app:v1" in pulled


def test_docker_py_gets_then_pulls_when_missing(oci_daemon: ShoalDaemon, registry: Registries) -> None:
    running = registry.open
    ref = f"{running.host}/team/app:v2"
    client = docker.DockerClient(base_url=oci_daemon.docker_host, version="1.41")
    try:
        with pytest.raises(docker.errors.ImageNotFound):
            client.images.get(ref)
        pulled = client.images.pull(f"{running.host}/team/app", tag="v2")
        assert client.images.get(ref).id == pulled.id
        assert ref in pulled.tags
    finally:
        client.close()


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode().strip())


def test_seed_scenario_from_an_imported_image(oci_daemon: ShoalDaemon, tmp_path: Path) -> None:
    web_tar = tmp_path / "web.tar"
    subprocess.run([sys.executable, "-m", "shoal.executor.oci.rootfs", "web", str(web_tar)], check=True, timeout=60)
    imported = oci_daemon.docker("import", "--change", WEB_CMD, "--change", "EXPOSE 80/tcp", str(web_tar),
                                 "my-apache2:latest").stdout.strip()
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", imported)

    port = free_port()  # the seed publishes 8080; a free port keeps this test apart from others on the host
    oci_daemon.docker("service", "create", "--detach", "--name", "frontend", "--replicas", "5",
                      "-p", f"{port}:80/tcp", "my-apache2:latest")
    seen: set[str] = set()

    def all_answered() -> bool:
        try:
            seen.add(fetch(f"http://127.0.0.1:{port}/"))
        except OSError:
            return False
        return len(seen) == 5

    wait_until(all_answered, 90, f"replicas answering through the mesh: {seen}", interval=0.05)
    assert all(re.fullmatch(r"hello from [0-9a-f]{12}", page) for page in seen), seen

    refused = oci_daemon.docker("rmi", "my-apache2:latest", check=False)
    assert refused.returncode == 1
    assert "must force" in refused.stderr and "is using its referenced image" in refused.stderr
    forced = oci_daemon.docker("rmi", "-f", "my-apache2:latest", check=False)
    assert forced.returncode == 1 and "cannot be forced" in forced.stderr
    oci_daemon.docker("image", "prune", "--all", "--force")  # unused images go; this one is in use
    assert oci_daemon.docker("image", "inspect", "--format", "{{.Id}}", "my-apache2:latest").stdout.strip() == imported

    oci_daemon.docker("service", "rm", "frontend")
    wait_until(lambda: oci_daemon.docker("ps", "-aq").stdout.strip() == "", 60, "task containers still there")
    removed = oci_daemon.docker("rmi", "my-apache2:latest").stdout
    assert f"Deleted: {imported}" in removed


# -- the docker executor: image calls reach the local Docker Engine, whose store its tasks run from --

DOCKERD = "unix:///var/run/docker.sock"


def dockerd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", "-H", DOCKERD, *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def docker_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShoalDaemon]:
    if dockerd("version").returncode != 0:
        pytest.skip(f"no Docker Engine at {DOCKERD}")
    shoald = ShoalDaemon(Path(tmp_path_factory.mktemp("shoald-docker")), executor="docker")
    shoald.start()
    try:
        yield shoald
    finally:
        shoald.stop()


def test_docker_executor_image_calls_reach_the_engine(docker_daemon: ShoalDaemon, tmp_path: Path) -> None:
    name = f"shoal-images-test-{uuid.uuid4().hex[:8]}"
    rootfs = tmp_path / "rootfs.tar"
    rootfs.write_bytes(make_layer({"srv/page": "hi\n"}).tar)
    try:
        image_id = docker_daemon.docker("import", "--change", 'CMD ["/srv/page"]', str(rootfs),
                                        f"{name}:v1").stdout.strip()
        assert dockerd("image", "inspect", "--format", "{{.Id}}", f"{name}:v1").stdout.strip() == image_id
        listed = docker_daemon.docker("images", "--format", "{{.Repository}}:{{.Tag}}", name).stdout.split()
        assert listed == [f"{name}:v1"]
        docker_daemon.docker("tag", f"{name}:v1", f"{name}:v2")
        archive = tmp_path / "saved.tar"
        docker_daemon.docker("save", "-o", str(archive), f"{name}:v2")
        assert "Untagged" in docker_daemon.docker("rmi", f"{name}:v2").stdout
        assert dockerd("image", "inspect", f"{name}:v2").returncode == 1
        assert docker_daemon.docker("load", "-i", str(archive)).stdout.strip() == f"Loaded image: {name}:v2"
        missing = docker_daemon.docker("image", "inspect", f"{name}:nothere", check=False)
        assert missing.returncode == 1 and f"No such image: {name}:nothere" in missing.stderr
    finally:
        dockerd("rmi", "-f", f"{name}:v1", f"{name}:v2")


def test_service_create_pins_the_image_to_the_registry_s_digest(oci_daemon: ShoalDaemon,
                                                                registry: Registries) -> None:
    ref = f"{registry.open.host}/team/app:v1"
    oci_daemon.docker("service", "create", "--detach", "--name", "pinned", "--restart-condition", "none", ref)
    try:
        image = oci_daemon.docker("service", "inspect", "--format", "{{.Spec.TaskTemplate.ContainerSpec.Image}}",
                                  "pinned").stdout.strip()
        assert image == f"{ref}@{registry.image.digest}"
    finally:
        oci_daemon.docker("service", "rm", "pinned")
