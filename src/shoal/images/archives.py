"""docker save / docker load archives. Loading takes both kinds: the docker save format (manifest.json
naming a config and layer files) and OCI image layout archives (index.json, blobs/sha256/…). Saving
writes both at once, as Docker 25+ does, so old and new `docker load` and OCI tools read it."""

from __future__ import annotations

import asyncio
import io
import json
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from shoal.api.errors import InvalidArgument
from shoal.images import digests, manifests
from shoal.images.errors import DigestMismatch
from shoal.images.local import LayerBlob, commit_local
from shoal.images.manifests import host_platform
from shoal.images.reference import InvalidReference, Reference, parse
from shoal.images.store import ImageStore, Lease

IMAGE_NAME = "io.containerd.image.name"
REF_NAME = "org.opencontainers.image.ref.name"


@dataclass
class LoadedImage:
    config: bytes
    layers: list[LayerBlob]
    names: list[Reference]


class _Archive:
    def __init__(self, path: Path) -> None:
        try:
            self.tar = tarfile.open(path, mode="r:*")  # noqa: SIM115 - closed by close()
            self.members = {m.name.removeprefix("./"): m for m in self.tar.getmembers() if m.isfile()}
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise InvalidArgument(f"invalid archive: {exc}") from exc

    def close(self) -> None:
        self.tar.close()

    def open(self, name: str) -> IO[bytes]:
        member = self.members.get(name.removeprefix("./"))
        source = self.tar.extractfile(member) if member is not None else None
        if source is None:
            raise InvalidArgument(f"invalid archive: {name} is missing")
        return source

    def read(self, name: str) -> bytes:
        return self.open(name).read()

    def json(self, name: str) -> Any:
        try:
            return json.loads(self.read(name))
        except ValueError as exc:
            raise InvalidArgument(f"invalid archive: {name}: {exc}") from exc


def _layer_media_type(store: ImageStore, digest: str) -> str:
    with open(store.content.path(digest), "rb") as blob:
        return manifests.OCI_LAYER_GZIP if blob.read(2) == b"\x1f\x8b" else manifests.OCI_LAYER


def _names(texts: list[str]) -> list[Reference]:
    names = []
    for text in texts:
        try:
            names.append(parse(text))
        except InvalidReference:
            continue
    return names


def _read_docker_format(archive: _Archive, store: ImageStore, lease: Lease) -> list[LoadedImage]:
    entries = archive.json("manifest.json")
    if not isinstance(entries, list):
        raise InvalidArgument("invalid archive: manifest.json is not a list")
    loaded = []
    for entry in entries:
        config = archive.read(str(entry.get("Config", "")))
        layers = []
        for path in entry.get("Layers") or []:
            digest, size = store.content.put_file(archive.open(str(path)))
            lease.blobs.add(digest)
            layers.append(LayerBlob(digest, size, _layer_media_type(store, digest)))
        loaded.append(LoadedImage(config, layers, _names([str(t) for t in entry.get("RepoTags") or []])))
    return loaded


def _blob(archive: _Archive, digest: str) -> bytes:
    data = archive.read(f"blobs/sha256/{digests.check(digest)}")
    actual = digests.sha256_of(data)
    if actual != digest:
        raise DigestMismatch(digest, actual)
    return data


def _read_oci_layout(archive: _Archive, store: ImageStore, lease: Lease) -> list[LoadedImage]:
    index = archive.json("index.json")
    loaded = []
    for descriptor in index.get("manifests") or []:
        annotations = descriptor.get("annotations") or {}
        body = manifests.decode(_blob(archive, descriptor["digest"]), "manifest")
        if manifests.media_type_of(body, descriptor.get("mediaType", "")) in manifests.INDEXES:
            child = manifests.select(body, host_platform())
            body = manifests.decode(_blob(archive, child["digest"]), "manifest")
        config = _blob(archive, body["config"]["digest"])
        layers = []
        for layer in manifests.layer_descriptors(body):
            path = f"blobs/sha256/{digests.check(layer['digest'])}"
            digest, size = store.content.put_file(archive.open(path), layer["digest"])
            lease.blobs.add(digest)
            layers.append(LayerBlob(digest, size, layer["mediaType"]))
        name = annotations.get(IMAGE_NAME) or annotations.get(REF_NAME) or ""
        loaded.append(LoadedImage(config, layers, _names([name] if ":" in name or "/" in name else [])))
    return loaded


async def load(store: ImageStore, path: Path, now: str) -> list[dict[str, str]]:
    """Load every image in the archive at `path`; the messages POST /images/load streams."""
    messages = []
    with store.lease() as lease:
        archive = await asyncio.to_thread(_Archive, path)
        try:
            reader = _read_docker_format if "manifest.json" in archive.members else _read_oci_layout
            if reader is _read_oci_layout and "index.json" not in archive.members:
                raise InvalidArgument("invalid archive: no manifest.json (docker save) or index.json (OCI layout)")
            images = await asyncio.to_thread(reader, archive, store, lease)
        finally:
            archive.close()
        for image in images:
            image_id = await commit_local(store, lease, image.config, image.layers, image.names, now)
            if image.names:
                messages += [{"stream": f"Loaded image: {name.familiar}\n"} for name in image.names]
            else:
                messages.append({"stream": f"Loaded image ID: {image_id}\n"})
    return messages


def _add(archive: tarfile.TarFile, name: str, data: bytes | None = None, source: Path | None = None) -> None:
    if source is not None:
        archive.add(str(source), arcname=name)
        return
    assert data is not None
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(time.time())
    archive.addfile(info, io.BytesIO(data))


def write_save_archive(store: ImageStore, names: list[str], target: Path) -> None:
    """The docker save archive for `names` (references or ids) at `target`."""
    records = [(name, store.find(name)) for name in names]
    written: set[str] = set()
    legacy: list[dict[str, Any]] = []
    oci: list[dict[str, Any]] = []
    with tarfile.open(target, mode="w") as archive:
        _add(archive, "oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
        for asked, record in records:
            manifest = store.manifest(record)
            blobs = [record.id, record.manifest] + [d["digest"] for d in manifests.layer_descriptors(manifest)]
            for digest in blobs:
                if digest not in written:
                    _add(archive, f"blobs/sha256/{digests.check(digest)}", source=store.content.path(digest))
                    written.add(digest)
            tags = [parse(n).familiar for n in store.meta.names_of(record.id) if "@" not in n]
            if not asked.startswith("sha256:") and "@" not in asked:
                tags = [parse(asked).familiar]
            legacy.append({"Config": f"blobs/sha256/{digests.check(record.id)}", "RepoTags": tags or None,
                           "Layers": [f"blobs/sha256/{digests.check(d)}" for d in blobs[2:]]})
            descriptor = {"mediaType": record.manifest_media_type, "digest": record.manifest,
                          "size": store.content.size(record.manifest)}
            for tag in tags or [""]:
                entry = dict(descriptor)
                if tag:
                    full = str(parse(tag))
                    entry["annotations"] = {IMAGE_NAME: full, REF_NAME: full.rsplit(":", 1)[1]}
                oci.append(entry)
        _add(archive, "manifest.json", json.dumps(legacy).encode())
        _add(archive, "index.json", json.dumps({"schemaVersion": 2, "mediaType": manifests.OCI_INDEX,
                                                "manifests": oci}).encode())

