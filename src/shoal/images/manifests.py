"""Manifests, indexes and platforms: Docker schema 2 and OCI media types, and picking the manifest
for a platform out of a manifest list or OCI index the way containerd's platform matcher does."""

from __future__ import annotations

import json
import platform as host
from dataclasses import dataclass
from typing import Any

from shoal.api.errors import InvalidArgument
from shoal.images.errors import NoMatchingManifest, UnsupportedMediaType

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"

MANIFESTS = (DOCKER_MANIFEST, OCI_MANIFEST)
INDEXES = (DOCKER_LIST, OCI_INDEX)
LAYERS = (
    DOCKER_LAYER,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
)
ACCEPT = ", ".join((*MANIFESTS, *INDEXES))

_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "armv6l": "arm", "i686": "386", "i386": "386",
         "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        text = f"{self.os}/{self.architecture}"
        return f"{text}/{self.variant}" if self.variant else text

    def as_json(self) -> dict[str, str]:
        body = {"os": self.os, "architecture": self.architecture}
        if self.variant:
            body["variant"] = self.variant
        return body


def host_platform() -> Platform:
    machine = host.machine()
    arch = _ARCH.get(machine, machine)
    variant = {"armv7l": "v7", "armv6l": "v6", "aarch64": "v8"}.get(machine, "")
    return Platform("linux", arch, variant)


def parse_platform(text: str) -> Platform:
    """`linux/amd64`, `linux/arm/v7`, `linux` (the host's architecture), as `docker pull --platform`."""
    parts = text.lower().split("/")
    if not parts[0] or len(parts) > 3 or any(not p for p in parts):
        raise InvalidArgument(f'"{text}": unknown operating system or architecture: invalid argument')
    if len(parts) == 1:
        return Platform(parts[0], host_platform().architecture, host_platform().variant)
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(parts[1], parts[1])
    return Platform(parts[0], arch, parts[2] if len(parts) == 3 else "")


def _matches(want: Platform, entry: dict[str, Any]) -> bool:
    if entry.get("os") != want.os or entry.get("architecture") != want.architecture:
        return False
    variant = entry.get("variant", "")
    # arm64 manifests often omit v8; a wanted variant must otherwise be what the entry says.
    return not (want.variant and variant and variant != want.variant)


def decode(data: bytes, what: str) -> dict[str, Any]:
    try:
        body = json.loads(data)
    except ValueError as exc:
        raise InvalidArgument(f"invalid {what}: {exc}") from exc
    if not isinstance(body, dict):
        raise InvalidArgument(f"invalid {what}: not a JSON object")
    return body


def media_type_of(body: dict[str, Any], declared: str = "") -> str:
    """The manifest's media type: its own field, else what the server said, else its shape."""
    media = body.get("mediaType") or declared
    if not media:
        media = OCI_INDEX if "manifests" in body else OCI_MANIFEST
    if body.get("schemaVersion") == 1 or "signed" in media:
        raise UnsupportedMediaType(
            "Docker Image manifest version 2, schema 1 is no longer supported; push the image again as schema 2 or OCI"
        )
    if media not in MANIFESTS and media not in INDEXES:
        raise UnsupportedMediaType(f"unsupported manifest media type {media!r}")
    return str(media)


def select(index: dict[str, Any], want: Platform) -> dict[str, Any]:
    """The descriptor in an index for `want`; Docker's message when there is none."""
    for entry in index.get("manifests", []):
        plat = entry.get("platform") or {}
        if _matches(want, plat):
            return dict(entry)
    raise NoMatchingManifest(str(Platform(want.os, want.architecture, want.variant)))


def platforms(index: dict[str, Any]) -> list[dict[str, Any]]:
    return [dict(entry["platform"]) for entry in index.get("manifests", []) if entry.get("platform")]


def layer_descriptors(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    layers = manifest.get("layers")
    if not isinstance(layers, list):
        raise InvalidArgument("invalid manifest: no layers")
    for layer in layers:
        media = layer.get("mediaType", "")
        if media not in LAYERS:
            raise UnsupportedMediaType(f"unsupported layer media type {media!r}")
    return [dict(layer) for layer in layers]
