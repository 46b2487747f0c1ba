"""ImageService without a registry: import, tag, list and its filters, inspect, history, rmi with
Docker's conflicts, prune, and save/load round trips in both archive formats."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shoal.api.errors import Conflict, InvalidArgument
from shoal.images.errors import ImageNotFound
from shoal.images.removal import ImageUser
from shoal.images.service import ImageService
from shoal.testing.oci_images import make_layer


async def chunks(data: bytes, size: int = 4096) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]


async def collect(stream: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in stream])


def files(root: Path) -> set[str]:
    return {p.name for d in ("blobs/sha256", "snapshots", "ingest", "snapshots.tmp") for p in (root / d).iterdir()}


@pytest.fixture
def service(tmp_path: Path) -> ImageService:
    return ImageService(tmp_path / "images")


async def imported(service: ImageService, repo: str, tag: str, content: str, changes: list[str] | None = None) -> str:
    layer = make_layer({"etc/content": content, "bin/app": "#!/bin/sh\n"})
    [answer] = await service.import_tar(chunks(layer.blob), repo, tag, changes or [])
    return answer["status"]


async def test_import_makes_a_one_layer_image_with_the_changes(service: ImageService) -> None:
    image_id = await imported(service, "me/app", "v1", "one", ["CMD [\"/bin/app\"]", "ENV A=1 B=2",
                                                              "EXPOSE 80", "WORKDIR /srv", "USER nobody"])
    assert image_id.startswith("sha256:")
    body = await service.inspect("me/app:v1")
    assert body["Id"] == image_id and body["RepoTags"] == ["me/app:v1"]
    assert body["Config"] == {"Cmd": ["/bin/app"], "Env": ["A=1", "B=2"], "ExposedPorts": {"80/tcp": {}},
                              "WorkingDir": "/srv", "User": "nobody"}
    resolved = await service.resolve("me/app:v1")
    assert (resolved.layers[0] / "etc/content").read_text() == "one"
    [row] = await service.list()
    assert row["RepoTags"] == ["me/app:v1"] and row["Size"] > 0 and row["Id"] == image_id
    [history] = await service.history(image_id)
    assert history["Id"] == image_id and history["Tags"] == ["me/app:v1"] and history["Size"] > 0


async def test_bad_changes_and_bad_tarballs_are_refused_leaving_nothing(service: ImageService) -> None:
    with pytest.raises(InvalidArgument, match=r"^FROM is not a valid change command$"):
        await service.import_tar(chunks(make_layer({"a": "b"}).blob), "me/app", "v1", ["FROM busybox"])
    with pytest.raises(InvalidArgument):
        await service.import_tar(chunks(make_layer({"a": "b"}).blob[:40]), "me/app", "v1")
    with pytest.raises(InvalidArgument, match="invalid archive"):
        await service.load(chunks(b"not a tar at all" * 100))
    assert files(service.store.root) == set()
    assert await service.list() == []


async def test_tag_and_rmi_untag_then_delete(service: ImageService) -> None:
    image_id = await imported(service, "me/app", "v1", "x")
    await service.tag("me/app:v1", "me/app", "v2")
    await service.tag(image_id[7:19], "other/name", "")
    assert (await service.inspect("other/name"))["RepoTags"] == ["me/app:v1", "me/app:v2", "other/name:latest"]
    assert await service.remove("me/app:v2") == [{"Untagged": "me/app:v2"}]
    with pytest.raises(Conflict, match=r"^conflict: unable to delete [0-9a-f]{12} \(must be forced\) - image is "
                                       r"referenced in multiple repositories$"):
        await service.remove(image_id)
    assert await service.remove("other/name") == [{"Untagged": "other/name:latest"}]
    answer = await service.remove("me/app:v1")
    assert answer[:2] == [{"Untagged": "me/app:v1"}, {"Deleted": image_id}]
    assert files(service.store.root) == set()
    with pytest.raises(ImageNotFound, match=r"^No such image: me/app:v1$"):
        await service.inspect("me/app:v1")


async def test_rmi_of_an_image_a_task_uses(service: ImageService) -> None:
    image_id = await imported(service, "me/app", "v1", "x")
    running = [ImageUser("0123456789abcdef", running=True)]
    stopped = [ImageUser("fedcba9876543210", running=False)]
    with pytest.raises(Conflict, match=r'^conflict: unable to remove repository reference "me/app:v1" \(must '
                                       r"force\) - container fedcba987654 is using its referenced image "):
        await service.remove("me/app:v1", in_use=lambda _id: stopped)
    with pytest.raises(Conflict, match=r"\(cannot be forced\) - image is being used by running container 0123456789ab"):
        await service.remove("me/app:v1", force=True, in_use=lambda _id: running)
    assert (await service.inspect("me/app:v1"))["Id"] == image_id
    answer = await service.remove("me/app:v1", force=True, in_use=lambda _id: stopped)
    assert {"Deleted": image_id} in answer


async def test_retagging_leaves_the_old_image_dangling_and_prune_removes_it(service: ImageService) -> None:
    old = await imported(service, "me/app", "latest", "old")
    new = await imported(service, "me/app", "latest", "new")
    rows = {row["Id"]: row for row in await service.list()}
    assert rows[old]["RepoTags"] == ["<none>:<none>"] and rows[new]["RepoTags"] == ["me/app:latest"]
    assert [r["Id"] for r in await service.list({"dangling": ["true"]})] == [old]
    assert [r["Id"] for r in await service.list({"reference": ["me/*"]})] == [new]
    with pytest.raises(InvalidArgument, match=r"^invalid filter 'bogus'$"):
        await service.list({"bogus": ["1"]})
    pruned = await service.prune()
    assert pruned["ImagesDeleted"] == [{"Deleted": old}] and pruned["SpaceReclaimed"] > 0
    assert [r["Id"] for r in await service.list()] == [new]
    everything = await service.prune({"dangling": ["false"]})
    assert {"Deleted": new} in everything["ImagesDeleted"]
    assert files(service.store.root) == set()


async def test_save_then_load_into_another_store(service: ImageService, tmp_path: Path) -> None:
    image_id = await imported(service, "me/app", "v1", "saved", ["CMD [\"/bin/app\"]"])
    archive = await collect(await service.save(["me/app:v1"]))
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        names = set(tar.getnames())
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert {"manifest.json", "index.json", "oci-layout"} <= names
    assert manifest[0]["RepoTags"] == ["me/app:v1"]

    other = ImageService(tmp_path / "other")
    assert await other.load(chunks(archive)) == [{"stream": "Loaded image: me/app:v1\n"}]
    resolved = await other.resolve("me/app:v1")
    assert resolved.id == image_id
    assert (resolved.layers[0] / "etc/content").read_text() == "saved"
    assert not list((other.store.root / "ingest").iterdir())


async def test_an_oci_layout_archive_loads(service: ImageService, tmp_path: Path) -> None:
    image_id = await imported(service, "me/app", "v1", "oci")
    archive = await collect(await service.save(["me/app:v1"]))
    source = io.BytesIO(archive)
    out = io.BytesIO()
    with tarfile.open(fileobj=source) as tar, tarfile.open(fileobj=out, mode="w") as oci_only:
        for member in tar.getmembers():
            if member.name != "manifest.json":
                oci_only.addfile(member, tar.extractfile(member))
    other = ImageService(tmp_path / "other")
    assert await other.load(chunks(out.getvalue())) == [{"stream": "Loaded image: me/app:v1\n"}]
    assert (await other.resolve("me/app:v1")).id == image_id


async def test_saving_a_missing_image_is_refused_before_streaming(service: ImageService) -> None:
    with pytest.raises(ImageNotFound):
        await service.save(["nope:latest"])


async def test_a_restarted_service_finds_its_images_and_drops_partial_writes(service: ImageService) -> None:
    image_id = await imported(service, "me/app", "v1", "kept")
    root = service.store.root
    (root / "ingest" / "half-written-blob").write_bytes(b"partial")
    (root / "snapshots.tmp" / "interrupted-unpack" / "fs").mkdir(parents=True)
    restarted = ImageService(root)
    assert (await restarted.resolve("me/app:v1")).id == image_id
    assert not list((root / "ingest").iterdir()) and not list((root / "snapshots.tmp").iterdir())
    index = json.loads((root / "index.json").read_text())
    assert index["manifests"][0]["annotations"] == {"io.containerd.image.name": "docker.io/me/app:v1",
                                                    "org.opencontainers.image.ref.name": "docker.io/me/app:v1"}


@pytest.mark.skipif(shutil.which("skopeo") is None, reason="needs skopeo")
async def test_the_store_is_an_oci_layout_other_tools_read(service: ImageService) -> None:
    image_id = await imported(service, "me/app", "v1", "layout")
    await imported(service, "other/app", "v1", "second")  # same tag in another repository: no ambiguity
    root = service.store.root
    result = subprocess.run(["skopeo", "inspect", "--config", f"oci:{root}:docker.io/me/app:v1"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    assert config["rootfs"]["diff_ids"] == (await service.resolve("me/app:v1")).config["rootfs"]["diff_ids"]
    assert image_id.startswith("sha256:")
