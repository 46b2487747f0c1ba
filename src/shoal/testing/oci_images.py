"""Test images made in Python: layer tars built in memory (files, symlinks, whiteouts), Docker
schema 2 or OCI manifests, indexes over several platforms, and a pusher speaking the distribution
API's monolithic upload to an open registry."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import urllib.request
from dataclasses import dataclass, field
from typing import Any

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Layer:
    tar: bytes  # uncompressed
    blob: bytes  # gzip

    @property
    def diff_id(self) -> str:
        return digest_of(self.tar)

    @property
    def digest(self) -> str:
        return digest_of(self.blob)


def make_layer(files: dict[str, bytes | str], *, symlinks: dict[str, str] | None = None,
               dirs: list[str] | None = None, modes: dict[str, int] | None = None) -> Layer:
    """A layer from {path: content}, written after the directories and symlinks (so a file can sit
    under a symlink, as a hostile layer would). Whiteouts are entries named .wh.<name> or .wh..wh..opq."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for path in dirs or []:
            info = tarfile.TarInfo(path)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            archive.addfile(info)
        for path, target in (symlinks or {}).items():
            info = tarfile.TarInfo(path)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            archive.addfile(info)
        for path, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mode = (modes or {}).get(path, 0o644)
            archive.addfile(info, io.BytesIO(data))
    tar = buffer.getvalue()
    return Layer(tar, gzip.compress(tar, compresslevel=1, mtime=0))


@dataclass
class Image:
    layers: list[Layer]
    config: bytes
    manifest: bytes
    media_type: str
    platform: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return digest_of(self.config)

    @property
    def digest(self) -> str:
        return digest_of(self.manifest)


def make_image(layers: list[Layer], *, oci: bool = False, os: str = "linux", architecture: str = "amd64",
               variant: str = "", config: dict[str, Any] | None = None,
               history: list[dict[str, Any]] | None = None) -> Image:
    body: dict[str, Any] = {
        "architecture": architecture, "os": os, "created": "2026-01-02T03:04:05Z",
        "config": config or {"Cmd": ["/bin/sh"], "Env": [DEFAULT_PATH]},
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": history or [{"created": "2026-01-02T03:04:05Z", "created_by": f"layer {i}"}
                               for i in range(len(layers))],
    }
    if variant:
        body["variant"] = variant
    config_bytes = json.dumps(body, sort_keys=True).encode()
    media_type = OCI_MANIFEST if oci else DOCKER_MANIFEST
    manifest = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {"mediaType": OCI_CONFIG if oci else DOCKER_CONFIG, "size": len(config_bytes),
                   "digest": digest_of(config_bytes)},
        "layers": [{"mediaType": OCI_LAYER_GZIP if oci else DOCKER_LAYER, "size": len(layer.blob),
                    "digest": layer.digest} for layer in layers],
    }
    platform = {"os": os, "architecture": architecture}
    if variant:
        platform["variant"] = variant
    return Image(layers, config_bytes, json.dumps(manifest).encode(), media_type, platform)


def make_index(images: list[Image], *, oci: bool = True) -> bytes:
    return json.dumps({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX if oci else DOCKER_LIST,
        "manifests": [{"mediaType": image.media_type, "size": len(image.manifest), "digest": image.digest,
                       "platform": image.platform} for image in images],
    }).encode()


class Pusher:
    """Pushes blobs and manifests to an open (no auth, plain HTTP) registry."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def _request(self, method: str, url: str, data: bytes | None = None,
                 headers: dict[str, str] | None = None) -> urllib.response.addinfourl:
        request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
        return urllib.request.urlopen(request, timeout=30)  # type: ignore[no-any-return]

    def blob(self, repo: str, data: bytes) -> str:
        digest = digest_of(data)
        with self._request("POST", f"{self.base_url}/v2/{repo}/blobs/uploads/") as answer:
            location = answer.headers["Location"]
        if location.startswith("/"):
            location = self.base_url + location
        separator = "&" if "?" in location else "?"
        self._request("PUT", f"{location}{separator}digest={digest}", data,
                      {"Content-Type": "application/octet-stream"}).close()
        return digest

    def manifest(self, repo: str, reference: str, body: bytes, media_type: str) -> str:
        self._request("PUT", f"{self.base_url}/v2/{repo}/manifests/{reference}", body,
                      {"Content-Type": media_type}).close()
        return digest_of(body)

    def image(self, repo: str, tag: str | None, image: Image) -> str:
        for layer in image.layers:
            self.blob(repo, layer.blob)
        self.blob(repo, image.config)
        return self.manifest(repo, tag or image.digest, image.manifest, image.media_type)

    def index(self, repo: str, tag: str, images: list[Image], *, oci: bool = True) -> str:
        for image in images:
            self.image(repo, None, image)
        body = make_index(images, oci=oci)
        return self.manifest(repo, tag, body, OCI_INDEX if oci else DOCKER_LIST)
