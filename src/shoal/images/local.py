"""Adding an image that did not come from a registry (docker load, docker import): its layer blobs
are already in the content store; this writes a manifest for them, unpacks the snapshots and names
the image, in the same all-or-nothing way as a pull."""

from __future__ import annotations

import json
from dataclasses import dataclass

from shoal.images import digests, manifests
from shoal.images.errors import CorruptLayer
from shoal.images.metadata import ImageRecord
from shoal.images.reference import Reference
from shoal.images.store import ImageStore, Lease


@dataclass(frozen=True)
class LayerBlob:
    digest: str
    size: int
    media_type: str


async def commit_local(store: ImageStore, lease: Lease, config: bytes, layers: list[LayerBlob],
                       names: list[Reference], now: str) -> str:
    """Store config and manifest, unpack each layer (checking it against the config's diff ids), and
    point `names` at the image. Returns the image id."""
    config_digest = store.content.put(config)
    lease.blobs.add(config_digest)
    body = manifests.decode(config, "image config")
    diff_ids = list(body.get("rootfs", {}).get("diff_ids", []))
    if len(diff_ids) != len(layers):
        raise CorruptLayer(config_digest, f"the config lists {len(diff_ids)} layers, the archive {len(layers)}")
    lease.snapshots.update(diff_ids)
    for layer, diff_id in zip(layers, diff_ids, strict=True):
        digests.check(diff_id)
        await store.snapshots.ensure(diff_id, store.content.path(layer.digest), layer.digest)
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": manifests.OCI_MANIFEST,
        "config": {"mediaType": manifests.OCI_CONFIG, "digest": config_digest, "size": len(config)},
        "layers": [{"mediaType": layer.media_type, "digest": layer.digest, "size": layer.size} for layer in layers],
    }).encode()
    manifest_digest = store.content.put(manifest)
    lease.blobs.add(manifest_digest)
    record = ImageRecord(
        id=config_digest, manifest=manifest_digest, manifest_media_type=manifests.OCI_MANIFEST,
        target=manifest_digest, target_media_type=manifests.OCI_MANIFEST, target_size=len(manifest),
        created=now, last_tag_time=now if names else "",
    )
    async with store.lock:
        store.add_image(record, names)
    return config_digest

