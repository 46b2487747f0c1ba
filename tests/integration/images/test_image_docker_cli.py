"""The real docker CLI and docker-py against the image calls (served by a stand-in Engine API over
ImageService until engineapi/ wires them): what they print and return is what dockerd's answers give."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import docker
import pytest
from aiohttp import web
from image_fixtures import PASSWORD, USER, Registries

from shoal.images.service import ImageService
from shoal.testing.daemon import DOCKER_CLI
from shoal.testing.image_api import ImageAPI


@pytest.fixture
async def socket(service: ImageService, tmp_path: Path) -> AsyncIterator[str]:
    runner = web.AppRunner(ImageAPI(service).app())
    await runner.setup()
    path = tmp_path / "images.sock"
    await web.UnixSite(runner, str(path)).start()
    yield f"unix://{path}"
    await runner.cleanup()


async def docker_cli(socket: str, *args: str) -> tuple[int, str, str]:
    if DOCKER_CLI is None:
        pytest.skip("needs the docker CLI")
    process = await asyncio.create_subprocess_exec(DOCKER_CLI, "-H", socket, *args, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_docker_pull_images_inspect_tag_history_save_rmi_load(socket: str, registries: Registries,
                                                                     tmp_path: Path) -> None:
    ref = f"{registries.open.host}/test/app:v1"
    image = registries.images.app_v1
    code, out, err = await docker_cli(socket, "pull", ref)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "v1: Pulling from test/app"
    assert sum(line.endswith(": Pull complete") for line in lines) == 2
    assert f"Digest: {image.digest}" in lines
    assert f"Status: Downloaded newer image for {ref}" in lines
    assert lines[-1] == ref

    code, out, _ = await docker_cli(socket, "images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")
    assert out.split() == [ref, image.id[7:19]]
    code, out, _ = await docker_cli(socket, "image", "inspect", "--format", "{{.Id}} {{.Config.WorkingDir}}", ref)
    assert out.strip() == f"{image.id} /app"
    assert (await docker_cli(socket, "tag", ref, "mine:copy"))[0] == 0
    code, out, _ = await docker_cli(socket, "history", "--format", "{{.CreatedBy}}", "mine:copy")
    assert out.split("\n")[:2] == ["layer 1", "layer 0"]
    archive = tmp_path / "saved.tar"
    assert (await docker_cli(socket, "save", "-o", str(archive), "mine:copy"))[0] == 0
    code, out, _ = await docker_cli(socket, "rmi", "mine:copy", ref)
    assert out.splitlines()[:2] == ["Untagged: mine:copy", f"Untagged: {ref}"]
    assert f"Deleted: {image.id}" in out.splitlines()
    code, out, err = await docker_cli(socket, "image", "inspect", ref)
    assert code == 1 and f"No such image: {ref}" in err
    code, out, _ = await docker_cli(socket, "load", "-i", str(archive))
    assert out.strip() == "Loaded image: mine:copy"


async def test_docker_pull_errors_read_as_dockerd_s(socket: str, registries: Registries) -> None:
    code, _, err = await docker_cli(socket, "pull", "Not/A Ref")
    assert code != 0 and "invalid reference format" in err
    code, _, err = await docker_cli(socket, "pull", f"{registries.open.host}/test/armonly")
    assert code == 1 and "no matching manifest for linux/amd64 in the manifest list entries" in err


async def test_docker_login(socket: str, registries: Registries, tmp_path: Path) -> None:
    config = ["--config", str(tmp_path / "docker-config")]
    code, out, err = await docker_cli(socket, *config, "login", "-u", USER, "-p", PASSWORD, registries.basic.host)
    assert code == 0 and "Login Succeeded" in out, err
    code, _, err = await docker_cli(socket, *config, "login", "-u", USER, "-p", "wrong", registries.basic.host)
    assert code == 1 and "401 Unauthorized" in err


async def test_docker_py_gets_then_pulls(socket: str, registries: Registries) -> None:
    client = docker.DockerClient(base_url=socket, version="1.41")
    ref = f"{registries.open.host}/test/app:v2"

    def get_or_pull() -> str:
        try:
            return str(client.images.get(ref).id)
        except docker.errors.ImageNotFound:
            return str(client.images.pull(ref).id)

    assert await asyncio.to_thread(get_or_pull) == registries.images.app_v2.id
    assert await asyncio.to_thread(lambda: client.images.get(ref).tags) == [ref]
    client.close()
