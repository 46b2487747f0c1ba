"""Bad input leaves a clear error, nothing half-written in the store, and a store that still works:
unparsable references, corrupt and truncated layers, a manifest that is not what its digest says,
and a disk that fills up."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from image_fixtures import Registries, store_files

from shoal.images.errors import CorruptLayer, DigestMismatch, LayerVerificationFailed, StoreFull
from shoal.images.reference import InvalidReference
from shoal.images.service import ImageService


def assert_empty_and_usable_after(service: ImageService) -> None:
    assert service.store.meta.refs == {} and service.store.meta.images == {}
    assert store_files(service.store.root) == {"blobs": set(), "snapshots": set(), "ingest": set(),
                                               "staging": set()}


async def still_pulls(service: ImageService, registries: Registries) -> None:
    resolved = await service.ensure(f"{registries.open.host}/test/app:v1")
    assert resolved.id == registries.images.app_v1.id
    assert all(layer.is_dir() for layer in resolved.layers)


@pytest.mark.parametrize("text", ["Not A Ref", "Busybox", "busybox:", "a/b:c:d", "x@sha256:1234", ""])
async def test_an_unparsable_reference_is_refused_before_anything_starts(service: ImageService, text: str) -> None:
    with pytest.raises(InvalidReference) as caught:
        await service.pull(text)
    assert str(caught.value).startswith("invalid reference format")
    with pytest.raises(InvalidReference):
        await service.ensure(text)
    assert_empty_and_usable_after(service)


async def test_a_corrupt_blob_is_refused(registries: Registries, service: ImageService) -> None:
    layer = registries.images.corrupt.layers[0]
    data = registries.open.blob_path(layer.digest)
    body = bytearray(data.read_bytes())
    body[len(body) // 2] ^= 0xFF  # one flipped byte, same size: only the digest can tell
    data.write_bytes(bytes(body))
    messages = [m async for m in await service.pull(f"{registries.open.host}/test/corrupt")]
    assert messages[-1]["error"] == f"filesystem layer verification failed for digest {layer.digest}"
    with pytest.raises(LayerVerificationFailed):
        await service.ensure(f"{registries.open.host}/test/corrupt")
    assert_empty_and_usable_after(service)
    await still_pulls(service, registries)


async def test_a_corrupt_layer_stops_the_other_layers_of_the_pull(registries: Registries,
                                                                  service: ImageService) -> None:
    """The slow layer's unpack is still running when the corrupt one fails: it is stopped (or waited
    for) before the store is cleaned, so nothing of it lands afterwards."""
    _slow, corrupt = registries.images.mixed.layers
    data = registries.open.blob_path(corrupt.digest)
    body = bytearray(data.read_bytes())
    body[len(body) // 2] ^= 0xFF
    data.write_bytes(bytes(body))
    with pytest.raises(LayerVerificationFailed):
        await service.ensure(f"{registries.open.host}/test/mixed")
    assert_empty_and_usable_after(service)


async def test_a_truncated_layer_is_refused(registries: Registries, service: ImageService) -> None:
    with pytest.raises(CorruptLayer, match="failed to register layer"):
        await service.ensure(f"{registries.open.host}/test/truncated")
    assert_empty_and_usable_after(service)
    await still_pulls(service, registries)


async def test_a_manifest_that_does_not_match_its_digest_is_refused(registries: Registries,
                                                                    service: ImageService) -> None:
    image = registries.images.bad_manifest
    data = registries.open.blob_path(image.digest)
    data.write_bytes(data.read_bytes().replace(b'"schemaVersion": 2', b'"schemaVersion":  2'))
    for ref in (f"{registries.open.host}/test/badmanifest", f"{registries.open.host}/test/badmanifest@{image.digest}"):
        with pytest.raises(DigestMismatch, match=f"expected {image.digest}"):
            await service.ensure(ref)
    assert_empty_and_usable_after(service)
    await still_pulls(service, registries)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs: the store's disk, too small for test/big's 3 MiB layer."""
    if subprocess.run(["id", "-u"], capture_output=True, text=True).stdout.strip() != "0":
        pytest.skip("needs root to mount a tmpfs")
    mount = tmp_path / "small"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {result.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            subprocess.run(["umount", str(mount)], check=True)


@pytest.mark.parametrize(("repo", "what"), [("test/big", "blob"), ("test/zeros", "layer")],
                         ids=["while-downloading", "while-unpacking"])
async def test_a_full_disk_leaves_nothing_half_written(registries: Registries, small_disk: Path, repo: str,
                                                       what: str) -> None:
    service = ImageService(small_disk / "images")
    with pytest.raises(StoreFull, match=rf"^write {what} sha256:[0-9a-f]{{64}}: no space left on device$"):
        await service.ensure(f"{registries.open.host}/{repo}")
    assert_empty_and_usable_after(service)
    await still_pulls(service, registries)
