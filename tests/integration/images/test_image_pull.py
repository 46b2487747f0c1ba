"""Pulls from a real docker-registry on loopback: by tag and digest, schema 2 and OCI, indexes with
platform selection, the progress messages the docker CLI draws, and shared layers fetched once."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from image_fixtures import Registries

from shoal.images.errors import ImageNotFound, ManifestUnknown, NoMatchingManifest
from shoal.images.service import ImageService


async def pull_messages(service: ImageService, ref: str, **kwargs: Any) -> list[dict[str, Any]]:
    return [message async for message in await service.pull(ref, **kwargs)]


async def test_pull_by_tag_gives_the_image_its_layers_and_docker_progress(
        registries: Registries, service: ImageService) -> None:
    ref = f"{registries.open.host}/test/app:v1"
    image = registries.images.app_v1
    messages = await pull_messages(service, ref)

    assert messages[0] == {"status": "Pulling from test/app", "id": "v1"}
    statuses = [m["status"] for m in messages]
    assert statuses.count("Pulling fs layer") == 2
    assert statuses.count("Pull complete") == 2
    assert "Download complete" in statuses and "Extracting" in statuses
    downloading = [m for m in messages if m["status"] == "Downloading"]
    assert downloading and all(set(m) == {"status", "progressDetail", "progress", "id"} for m in downloading)
    assert downloading[-1]["progressDetail"]["current"] == downloading[-1]["progressDetail"]["total"]
    assert messages[-2] == {"status": f"Digest: {image.digest}"}
    assert messages[-1] == {"status": f"Status: Downloaded newer image for {ref}"}
    assert not any("error" in m for m in messages)

    resolved = await service.resolve(ref)
    assert resolved.id == image.id
    assert resolved.container_config["Cmd"] == ["/app/run"]
    base, top = resolved.layers
    assert (base / "bin/tool").read_text() == "#!/bin/sh\necho tool\n"
    assert os.readlink(base / "bin/sh") == "/bin/tool"
    whiteout = os.lstat(top / "etc/os-release")
    assert stat.S_ISCHR(whiteout.st_mode) and whiteout.st_rdev == os.makedev(0, 0)

    again = await pull_messages(service, ref)
    assert again[-1] == {"status": f"Status: Image is up to date for {ref}"}
    assert {m["status"] for m in again if "id" in m and m["status"] != "Pulling from test/app"} == {"Already exists"}


async def test_pull_by_digest_names_the_image_by_its_digest_only(registries: Registries,
                                                                  service: ImageService) -> None:
    image = registries.images.app_v2
    ref = f"{registries.open.host}/test/app@{image.digest}"
    messages = await pull_messages(service, ref)
    assert messages[0] == {"status": "Pulling from test/app", "id": image.digest}
    inspect = await service.inspect(ref)
    assert inspect["Id"] == image.id
    assert inspect["RepoTags"] == []
    assert inspect["RepoDigests"] == [ref]
    with pytest.raises(ImageNotFound):
        await service.inspect(f"{registries.open.host}/test/app:v2")


async def test_index_gives_the_host_platform_or_the_one_asked_for(registries: Registries,
                                                                   service: ImageService) -> None:
    images = registries.images
    ref = f"{registries.open.host}/test/multi:latest"
    await pull_messages(service, ref)
    resolved = await service.resolve(ref)
    assert resolved.id == images.multi_amd64.id
    assert (resolved.layers[0] / "arch").read_text() == "amd64\n"
    assert resolved.manifest_digest == images.multi_index

    other = ImageService(service.store.root.parent / "arm-store")
    await pull_messages(other, ref, platform="linux/arm64")
    assert (await other.resolve(ref)).id == images.multi_arm64.id

    described = await service.distribution_inspect(ref)
    assert described["Descriptor"]["digest"] == images.multi_index
    assert {(p["os"], p["architecture"]) for p in described["Platforms"]} == {("linux", "amd64"), ("linux", "arm64")}


async def test_a_manifest_list_without_the_host_platform_is_refused(registries: Registries,
                                                                    service: ImageService) -> None:
    messages = await pull_messages(service, f"{registries.open.host}/test/armonly:latest")
    assert messages[-1] == {
        "errorDetail": {"message": "no matching manifest for linux/amd64 in the manifest list entries"},
        "error": "no matching manifest for linux/amd64 in the manifest list entries",
    }
    with pytest.raises(NoMatchingManifest):
        await service.ensure(f"{registries.open.host}/test/armonly:latest")
    assert service.store.meta.refs == {}


async def test_an_unknown_tag_is_refused_before_the_stream_begins(registries: Registries,
                                                                 service: ImageService) -> None:
    # dockerd answers it with a 404 rather than a 200 whose last message is the error
    with pytest.raises(ManifestUnknown, match=r"manifest for .*/test/app:nope not found: manifest unknown"):
        await service.pull(f"{registries.open.host}/test/app:nope")
    assert service.store.meta.refs == {}


async def test_a_layer_two_images_share_is_fetched_once(registries: Registries, tmp_path: Path) -> None:
    """Two concurrent pulls through one service (as two tasks starting at once) fetch the shared base
    layer once, and both images use the one snapshot."""
    host = registries.open.host
    base = registries.images.base_layer_digest
    service = ImageService(tmp_path / "shared")
    before = registries.open.blob_requests(base)
    first, second = await asyncio.gather(service.ensure(f"{host}/test/app:v1"), service.ensure(f"{host}/test/other"))
    assert registries.open.blob_requests(base) == before + 1
    assert first.layers[0] == second.layers[0]
    assert first.id != second.id


async def test_ensure_pulls_only_when_missing(registries: Registries, service: ImageService) -> None:
    ref = f"{registries.open.host}/test/app:v2"
    with pytest.raises(ImageNotFound):
        await service.resolve(ref)
    pulled = await service.ensure(ref)
    before = registries.open.blob_requests(registries.images.app_v2.id)
    assert (await service.ensure(ref)).id == pulled.id
    assert registries.open.blob_requests(registries.images.app_v2.id) == before


async def test_a_pinned_reference_with_a_tag_and_a_digest_finds_the_digest(registries: Registries,
                                                                            service: ImageService) -> None:
    # what `docker service create` pins a task's image to: name:tag@digest (the tag is ignored)
    digest = registries.images.app_v1.digest
    pinned = f"{registries.open.host}/test/app:v1@{digest}"
    resolved = await service.ensure(pinned)
    assert resolved.id == registries.images.app_v1.id
    assert (await service.resolve(pinned)).id == resolved.id
