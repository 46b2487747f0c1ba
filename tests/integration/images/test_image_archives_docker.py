"""Archive compatibility with a real Docker Engine: what shoal saves, dockerd loads (same image id),
and what dockerd saves, shoal loads."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import docker
import pytest

from shoal.images.service import ImageService
from shoal.testing.oci_images import make_layer

pytestmark = pytest.mark.docker
SOCKET = "unix:///var/run/docker.sock"


@pytest.fixture
def engine() -> Iterator[docker.APIClient]:
    client = docker.APIClient(base_url=SOCKET, version="1.41", timeout=60)
    try:
        client.ping()
    except Exception as exc:  # any failure to reach it: there is no engine to compare with
        pytest.skip(f"needs a dockerd at {SOCKET}: {exc}")
    yield client
    client.close()


async def chunks(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 65536):
        yield data[start:start + 65536]


async def test_shoal_saves_what_dockerd_loads_and_back(engine: docker.APIClient, tmp_path: Path) -> None:
    name = f"shoal-images-test/{uuid.uuid4().hex[:10]}:v1"
    service = ImageService(tmp_path / "shoal")
    layer = make_layer({"etc/message": "from shoal\n"}, dirs=["etc"])
    [answer] = await service.import_tar(chunks(layer.blob), name.split(":")[0], "v1", ['CMD ["/bin/true"]'])
    image_id = answer["status"]
    archive = b"".join([chunk async for chunk in await service.save([name])])
    try:
        engine.load_image(archive)
        inspected = engine.inspect_image(name)
        assert inspected["Id"] == image_id
        assert inspected["Config"]["Cmd"] == ["/bin/true"]
        saved_by_docker = b"".join(engine.get_image(name))
        again = ImageService(tmp_path / "again")
        assert await again.load(chunks(saved_by_docker)) == [{"stream": f"Loaded image: {name}\n"}]
        resolved = await again.resolve(name)
        assert resolved.id == image_id
        assert (resolved.layers[0] / "etc/message").read_text() == "from shoal\n"
    finally:
        engine.remove_image(name, force=True)
