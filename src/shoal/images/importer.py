"""`docker import`: a root filesystem tarball (plain or gzip) becomes a one-layer image."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import zlib
from pathlib import Path
from typing import IO

from shoal.api.errors import InvalidArgument
from shoal.images.changes import apply_changes
from shoal.images.local import LayerBlob, commit_local
from shoal.images.manifests import OCI_LAYER, OCI_LAYER_GZIP, host_platform
from shoal.images.reference import Reference
from shoal.images.store import ImageStore


def _diff_id(path: Path) -> tuple[str, bool]:
    """The sha256 of the uncompressed tar, and whether the file is gzip."""
    hasher = hashlib.sha256()
    with open(path, "rb") as raw:
        compressed = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        source: IO[bytes] = gzip.GzipFile(fileobj=raw) if compressed else raw  # type: ignore[assignment]
        try:
            while chunk := source.read(1 << 20):
                hasher.update(chunk)
        except (OSError, EOFError, zlib.error) as exc:
            raise InvalidArgument(f"invalid tar archive: {exc}") from exc
    return "sha256:" + hasher.hexdigest(), compressed


async def import_rootfs(store: ImageStore, tarball: Path, name: Reference | None, changes: list[str],
                        now: str, message: str = "") -> str:
    """Returns the new image's id."""
    run_config = apply_changes({}, changes)
    diff_id, compressed = await asyncio.to_thread(_diff_id, tarball)
    platform = host_platform()
    config = {
        "architecture": platform.architecture,
        "os": platform.os,
        "created": now,
        "config": run_config,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": now, "comment": message or "Imported from -"}],
    }
    with store.lease() as lease:
        with open(tarball, "rb") as source:
            digest, size = store.content.put_file(source)
        lease.blobs.add(digest)
        layer = LayerBlob(digest, size, OCI_LAYER_GZIP if compressed else OCI_LAYER)
        body = json.dumps(config, sort_keys=True).encode()
        return await commit_local(store, lease, body, [layer], [name] if name else [], now)
