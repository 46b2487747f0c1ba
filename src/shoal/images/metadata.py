"""Which images the store holds and the names they go by, kept in one JSON file (images.json)
replaced atomically, with index.json (the OCI layout's own index) rewritten from it so other OCI
tools can read the store.

An image is keyed by its id (the config digest) and records the descriptor it was pulled or loaded
as (a manifest, or an index whose host-platform manifest it uses). References map a full name
(docker.io/library/busybox:latest, or repo@sha256:… for digest pulls) to an image id."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from shoal.images.content import atomic_write


@dataclass
class ImageRecord:
    id: str
    manifest: str  # digest of the platform manifest whose config is `id`
    manifest_media_type: str
    target: str  # digest of what the reference pointed at (the manifest, or an index over it)
    target_media_type: str
    target_size: int
    created: str  # when the store got it (Docker's Metadata.LastTagTime is the tag time; we keep both)
    last_tag_time: str = ""
    repo_digests: list[str] = field(default_factory=list)


@dataclass
class Metadata:
    images: dict[str, ImageRecord] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)

    def names_of(self, image_id: str) -> list[str]:
        return sorted(name for name, target in self.refs.items() if target == image_id)


class MetadataFile:
    def __init__(self, root: Path) -> None:
        self.path = root / "images.json"
        self.index_path = root / "index.json"

    def load(self) -> Metadata:
        if not self.path.exists():
            return Metadata()
        raw = json.loads(self.path.read_text())
        images = {key: ImageRecord(**value) for key, value in raw.get("images", {}).items()}
        return Metadata(images, dict(raw.get("refs", {})))

    def save(self, meta: Metadata) -> None:
        body = {"images": {k: asdict(v) for k, v in meta.images.items()}, "refs": meta.refs}
        atomic_write(self.path, json.dumps(body, indent=1, sort_keys=True).encode())
        atomic_write(self.index_path, json.dumps(_oci_index(meta), indent=1).encode())


def _oci_index(meta: Metadata) -> dict[str, Any]:
    manifests = []
    for name, image_id in sorted(meta.refs.items()):
        record = meta.images.get(image_id)
        if record is None:
            continue
        # The full name as ref.name too: tags alone would collide between repositories, and OCI tools
        # (skopeo's oci: transport) then refuse to pick one.
        annotations = {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": name}
        manifests.append({
            "mediaType": record.target_media_type,
            "digest": record.target,
            "size": record.target_size,
            "annotations": annotations,
        })
    return {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests}
