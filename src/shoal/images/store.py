"""The image store on one node: blobs, snapshots and the names that keep them alive, with garbage
collection of whatever no image needs. Work in progress (a pull that has not committed yet) holds a
lease on what it wrote so a collection running meanwhile leaves it alone."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from shoal.images import manifests
from shoal.images.content import ContentStore
from shoal.images.errors import ImageNotFound
from shoal.images.metadata import ImageRecord, Metadata, MetadataFile
from shoal.images.reference import InvalidReference, Reference, parse
from shoal.images.resolved import ResolvedImage
from shoal.images.snapshots import SnapshotStore


class Lease:
    """Blobs and snapshots a running operation wrote but no image references yet."""

    def __init__(self) -> None:
        self.blobs: set[str] = set()
        self.snapshots: set[str] = set()


class ImageStore:
    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.content = ContentStore(root)
        self.snapshots = SnapshotStore(root)
        self._file = MetadataFile(root)
        self.meta: Metadata = self._file.load()
        self.lock = asyncio.Lock()  # serialises metadata changes and collections
        self._leases: list[Lease] = []

    # -- reading -----------------------------------------------------------------------------

    def find(self, name_or_id: str) -> ImageRecord:
        """An image by reference, full id, or unambiguous id prefix, as dockerd's GetImage looks."""
        record = self._find(name_or_id)
        if record is None:
            raise ImageNotFound(name_or_id)
        return record

    def _find(self, text: str) -> ImageRecord | None:
        if text.startswith("sha256:") and text in self.meta.images:
            return self.meta.images[text]
        try:
            ref = parse(text)
        except InvalidReference:
            ref = None
        if ref is not None:
            if ref.digest and ref.tag:  # name:tag@digest names the digest; dockerd ignores the tag
                ref = ref.with_digest(ref.digest)
            image_id = self.meta.refs.get(str(ref))
            if image_id is not None:
                return self.meta.images.get(image_id)
        hexpart = text.removeprefix("sha256:")
        if len(hexpart) >= 4 and all(c in "0123456789abcdef" for c in hexpart):
            found = [r for key, r in self.meta.images.items() if key[7:].startswith(hexpart)]
            if len(found) == 1:
                return found[0]
        if ref is None:
            raise InvalidReference()
        return None

    def json_blob(self, digest: str) -> dict[str, Any]:
        body = json.loads(self.content.read(digest))
        assert isinstance(body, dict)
        return body

    def config(self, record: ImageRecord) -> dict[str, Any]:
        return self.json_blob(record.id)

    def manifest(self, record: ImageRecord) -> dict[str, Any]:
        return self.json_blob(record.manifest)

    def resolve(self, name_or_id: str) -> ResolvedImage:
        record = self.find(name_or_id)
        config = self.config(record)
        diff_ids = list(config.get("rootfs", {}).get("diff_ids", []))
        layers = [self.snapshots.path(diff_id) for diff_id in diff_ids]
        names = self.meta.names_of(record.id)
        return ResolvedImage(
            id=record.id,
            config=config,
            layers=layers,
            reference=next((n for n in names if "@" not in n), names[0] if names else ""),
            manifest_digest=record.target,
        )

    def complete(self, image_id: str) -> bool:
        """The image and every layer snapshot it needs are here."""
        record = self.meta.images.get(image_id)
        if record is None or not self.content.has(record.id):
            return False
        diff_ids = self.config(record).get("rootfs", {}).get("diff_ids", [])
        return all(self.snapshots.has(d) for d in diff_ids)

    # -- changing ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def lease(self) -> Iterator[Lease]:
        lease = Lease()
        self._leases.append(lease)
        try:
            yield lease
        finally:
            self._leases.remove(lease)

    def save(self) -> None:
        self._file.save(self.meta)

    def add_image(self, record: ImageRecord, names: list[Reference]) -> None:
        """Record an image and point `names` at it (caller holds the lock). Names moved off another
        image leave it dangling (<none>:<none>), as dockerd does."""
        existing = self.meta.images.get(record.id)
        if existing is not None:
            record.repo_digests = sorted(set(existing.repo_digests) | set(record.repo_digests))
        self.meta.images[record.id] = record
        for ref in names:
            self.meta.refs[str(ref)] = record.id
        self.save()

    def collect(self) -> tuple[set[str], set[str]]:
        """Delete blobs and snapshots no image (and no running operation) needs; returns what went.
        Caller holds the lock."""
        keep_blobs: set[str] = set()
        keep_snapshots: set[str] = set()
        for record in self.meta.images.values():
            keep_blobs.update({record.id, record.manifest, record.target})
            try:
                keep_blobs.update(d["digest"] for d in manifests.layer_descriptors(self.manifest(record)))
                keep_snapshots.update(self.config(record).get("rootfs", {}).get("diff_ids", []))
            except (OSError, ValueError):
                continue
        for lease in self._leases:
            keep_blobs |= lease.blobs
            keep_snapshots |= lease.snapshots
        gone_blobs = self.content.digests() - keep_blobs
        gone_snapshots = self.snapshots.diff_ids() - keep_snapshots
        for digest in gone_blobs:
            self.content.delete(digest)
        for diff_id in gone_snapshots:
            self.snapshots.delete(diff_id)
        return gone_blobs, gone_snapshots
