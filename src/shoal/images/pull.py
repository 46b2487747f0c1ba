"""Pulling an image from a registry into the store, reporting progress as dockerd does.

Layers download concurrently (three at a time, dockerd's default) and each is unpacked as soon as it
is verified; a layer another pull is already fetching is waited for, not fetched twice. Nothing
becomes visible until the image is committed: a failed pull leaves no name and no blob behind."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from shoal.base.clock import Clock, SystemClock, rfc3339
from shoal.images import digests, manifests, progress
from shoal.images.auth import ANONYMOUS, Credentials
from shoal.images.errors import CorruptLayer, DigestMismatch, LayerVerificationFailed, RegistryError, SizeMismatch
from shoal.images.manifests import Platform
from shoal.images.metadata import ImageRecord
from shoal.images.once import Once
from shoal.images.reference import Reference
from shoal.images.registry import RETRIES, RegistryClient, is_insecure
from shoal.images.store import ImageStore, Lease

Emit = Callable[[progress.Message], None]
MAX_CONCURRENT_DOWNLOADS = 3


@dataclass
class PullResult:
    image_id: str
    target: str  # digest of the manifest or index the reference named
    fresh: bool  # False: the image was already complete ("Image is up to date")


@dataclass
class RegistryOptions:
    insecure: list[str] = field(default_factory=list)  # dockerd's --insecure-registry entries
    certs_dir: Path | None = None  # certs.d/<host>/ca.crt, as /etc/docker/certs.d
    # dockerd always counts 127.0.0.0/8 as insecure; tests of certificate checks turn that off.
    loopback_insecure: bool = True


@dataclass(frozen=True)
class Resolved:
    """What a reference names at the registry: the top-level descriptor and the platform manifest."""

    target: str
    target_media_type: str
    target_size: int
    target_body: bytes
    manifest: str
    manifest_media_type: str
    manifest_body: bytes
    platforms: list[dict[str, Any]]


class Puller:
    def __init__(self, store: ImageStore, options: RegistryOptions, clock: Clock | None = None) -> None:
        self.store = store
        self.options = options
        self.clock = clock or SystemClock()
        self._downloads: Once[None] = Once()
        self._semaphore = asyncio.Semaphore(MAX_CONCURRENT_DOWNLOADS)

    def client(self, session: aiohttp.ClientSession, ref: Reference, creds: Credentials) -> RegistryClient:
        return RegistryClient(session, ref, creds, insecure=is_insecure(ref.registry_host, self.options.insecure,
                                                              self.options.loopback_insecure),
                              certs_dir=self.options.certs_dir, sleep=self.clock.sleep)

    async def describe(self, client: RegistryClient, ref: Reference, want: Platform | None,
                       found: Callable[[], None] = lambda: None) -> Resolved:
        """Fetch and verify the manifest (and, for an index, the `want` platform's manifest).
        `found` runs once the tag's manifest is there, before the platform is chosen: where dockerd
        says "Pulling from", so a missing platform fails inside the stream as dockerd's does."""
        top = await client.manifest(ref.pull_target)
        top_digest = digests.sha256_of(top.body)
        expected = ref.digest or top.digest
        if expected and expected != top_digest:
            raise DigestMismatch(expected, top_digest)
        top_media = manifests.media_type_of(manifests.decode(top.body, "manifest"), top.media_type)
        found()
        if top_media not in manifests.INDEXES:
            return Resolved(top_digest, top_media, len(top.body), top.body, top_digest, top_media, top.body, [])
        index = manifests.decode(top.body, "manifest list")
        plats = manifests.platforms(index)
        if want is None:
            return Resolved(top_digest, top_media, len(top.body), top.body, "", "", b"", plats)
        entry = manifests.select(index, want)
        child = await client.manifest(entry["digest"])
        child_digest = digests.sha256_of(child.body)
        if child_digest != entry["digest"]:
            raise DigestMismatch(entry["digest"], child_digest)
        child_media = manifests.media_type_of(manifests.decode(child.body, "manifest"), entry.get("mediaType", ""))
        return Resolved(top_digest, top_media, len(top.body), top.body, child_digest, child_media, child.body, plats)

    async def pull(self, ref: Reference, want: Platform, creds: Credentials = ANONYMOUS,
                   emit: Emit = lambda _m: None) -> PullResult:
        async with aiohttp.ClientSession() as session:
            client = self.client(session, ref, creds)
            try:
                with self.store.lease() as lease:
                    return await self._pull(client, ref, want, emit, lease)
            except BaseException:
                async with self.store.lock:
                    self.store.collect()  # what this pull wrote and nothing else needs
                raise

    async def _pull(self, client: RegistryClient, ref: Reference, want: Platform, emit: Emit,
                    lease: Lease) -> PullResult:
        described = await self.describe(
            client, ref, want, lambda: emit(progress.pulling_from(ref.path, ref.digest or ref.tag or "latest")))
        manifest = manifests.decode(described.manifest_body, "manifest")
        layers = manifests.layer_descriptors(manifest)
        config_desc = manifest.get("config") or {}
        config_digest = str(config_desc.get("digest", ""))
        digests.check(config_digest)
        lease.blobs.update({config_digest, described.manifest, described.target})
        if not self.store.content.has(config_digest):
            await self._download(client, config_digest, config_desc.get("size"), None, emit)
        config = self.store.json_blob(config_digest)
        diff_ids = list(config.get("rootfs", {}).get("diff_ids", []))
        if len(diff_ids) != len(layers):
            raise CorruptLayer(config_digest, f"the config lists {len(diff_ids)} layers, the manifest {len(layers)}")
        fresh = not (self.store.complete(config_digest) and self.store.meta.refs.get(str(ref)) == config_digest)
        lease.snapshots.update(diff_ids)
        for layer in layers:
            lease.blobs.add(layer["digest"])
        for layer, diff_id in zip(layers, diff_ids, strict=True):
            shown = progress.short_id(layer["digest"])
            emit(progress.status("Already exists" if self.store.snapshots.has(diff_id) else "Pulling fs layer", shown))
        try:
            # A TaskGroup, not gather: when one layer fails the others are stopped before this pull
            # cleans up after itself.
            async with asyncio.TaskGroup() as group:
                for layer, diff_id in zip(layers, diff_ids, strict=True):
                    group.create_task(self._layer(client, layer, diff_id, emit))
        except BaseExceptionGroup as failed:
            raise failed.exceptions[0] from None
        self.store.content.put(described.manifest_body, described.manifest)
        self.store.content.put(described.target_body, described.target)
        await self._commit(ref, described, config_digest)
        emit(progress.status(f"Digest: {described.target}"))
        verdict = "Downloaded newer image for" if fresh else "Image is up to date for"
        emit(progress.status(f"Status: {verdict} {ref.familiar}"))
        return PullResult(config_digest, described.target, fresh)

    async def _commit(self, ref: Reference, described: Resolved, config_digest: str) -> None:
        now = rfc3339(self.clock.now())
        repo_digest = f"{ref.repository}@{described.target}"
        record = ImageRecord(
            id=config_digest, manifest=described.manifest, manifest_media_type=described.manifest_media_type,
            target=described.target, target_media_type=described.target_media_type,
            target_size=described.target_size, created=now, last_tag_time=now if ref.tag else "",
            repo_digests=[repo_digest],
        )
        async with self.store.lock:
            names = [ref.with_digest(described.target)]
            if ref.tag and not ref.digest:
                names.append(ref)
            self.store.add_image(record, names)

    async def _layer(self, client: RegistryClient, layer: dict[str, Any], diff_id: str, emit: Emit) -> None:
        if self.store.snapshots.has(diff_id):
            return
        digest = str(layer["digest"])
        shown = progress.short_id(digest)
        size = int(layer.get("size", 0)) or None
        if not self.store.content.has(digest):
            await self._download(client, digest, size, shown, emit)
        blob = self.store.content.path(digest)
        total = blob.stat().st_size
        loop = asyncio.get_running_loop()
        throttle = progress.Throttle(total)

        def extracting(current: int) -> None:
            if throttle.due(current):
                loop.call_soon_threadsafe(emit, progress.advancing("Extracting", shown, current, total))

        await self.store.snapshots.ensure(diff_id, blob, digest, extracting)
        emit(progress.status("Pull complete", shown))

    async def _download(self, client: RegistryClient, digest: str, size: int | None, shown: str | None,
                        emit: Emit) -> None:
        """Fetch one blob into the store, once even when several pulls want it at the same time."""
        waited = self._downloads.running(digest)
        if waited and shown:
            emit(progress.status("Waiting", shown))
        await self._downloads.run(digest, lambda: self._fetch(client, digest, size, shown, emit))
        if waited and shown:
            emit(progress.status("Download complete", shown))

    async def _fetch(self, client: RegistryClient, digest: str, size: int | None, shown: str | None,
                     emit: Emit) -> None:
        throttle = progress.Throttle(size or 0)

        def downloading(current: int) -> None:
            if shown and size and throttle.due(current):
                emit(progress.advancing("Downloading", shown, current, size))

        async with self._semaphore:
            for attempt in range(RETRIES):
                try:
                    await self.store.content.ingest(digest, size, client.blob(digest), downloading)
                    break
                except (DigestMismatch, SizeMismatch) as exc:
                    if shown is None:
                        raise
                    raise LayerVerificationFailed(digest) from exc
                except RegistryError:
                    # A dropped connection or a 5xx mid-blob: fetch it again from the start.
                    if attempt == RETRIES - 1:
                        raise
                    await self.clock.sleep(0.2 * 2**attempt)
        if shown:
            emit(progress.status("Verifying Checksum", shown))
            emit(progress.status("Download complete", shown))

