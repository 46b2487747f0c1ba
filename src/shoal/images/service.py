"""ImageService: the node's image calls, one method per Engine API image route, each returning the
JSON dockerd returns, so wiring a route is one line. The oci executor uses resolve() and ensure()."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from shoal.api.errors import InvalidArgument, NotFound, ShoalError, Unknown
from shoal.base.clock import Clock, SystemClock, rfc3339
from shoal.images import filters as image_filters
from shoal.images import manifests, progress, shapes
from shoal.images.archives import load as load_archive
from shoal.images.archives import write_save_archive
from shoal.images.auth import Auth, credentials_from
from shoal.images.changes import apply_changes
from shoal.images.errors import ImageNotFound, RegistryUnauthorized
from shoal.images.importer import import_rootfs
from shoal.images.manifests import Platform, host_platform, parse_platform
from shoal.images.pull import Puller, RegistryOptions
from shoal.images.reference import DOCKER_HUB_HOST, Reference, is_image_id, parse
from shoal.images.removal import InUse, check_delete_by_id, check_untag_last, no_users
from shoal.images.resolved import ResolvedImage
from shoal.images.spool import spool, stream_file
from shoal.images.store import ImageStore

log = logging.getLogger(__name__)


class ImageService:
    def __init__(self, root: Path, *, insecure_registries: list[str] | None = None,
                 certs_dir: Path | None = None, loopback_insecure: bool = True,
                 clock: Clock | None = None) -> None:
        self.store = ImageStore(root)
        self.clock = clock or SystemClock()
        self.options = RegistryOptions(list(insecure_registries or []), certs_dir, loopback_insecure)
        self.puller = Puller(self.store, self.options, self.clock)

    # -- for the executors ---------------------------------------------------------------------

    async def resolve(self, ref: str) -> ResolvedImage:
        """The image by name or id, as present in the store (ImageNotFound otherwise)."""
        resolved = self.store.resolve(ref)
        if not self.store.complete(resolved.id):
            raise ImageNotFound(ref)
        return resolved

    async def ensure(self, ref: str, auth: Auth = None) -> ResolvedImage:
        """The image, pulled first when missing (a task's PREPARING step). `auth`: Credentials, the
        X-Registry-Auth JSON as a dict, its base64 text, or None."""
        with contextlib.suppress(ImageNotFound):
            return await self.resolve(ref)
        parsed = parse(ref)
        await self.puller.pull(parsed, host_platform(), credentials_from(auth))
        return await self.resolve(str(parsed))

    # -- Engine API ----------------------------------------------------------------------------

    async def list(self, filters: image_filters.Filters | None = None) -> builtins.list[dict[str, Any]]:
        wanted = image_filters.normalise(filters, image_filters.LIST_FILTERS)
        dangling = image_filters.dangling_wanted(wanted)
        bounds = {key: self.store.find(wanted[key][0]).id for key in ("before", "since") if wanted.get(key)}
        rows = []
        for record in self.store.meta.images.values():
            row = shapes.summary(self.store, record)
            tagged = row["RepoTags"] != [shapes.NONE_TAG]
            if dangling is not None and dangling == tagged:
                continue
            if wanted.get("reference") and not image_filters.reference_matches(wanted["reference"], row["RepoTags"]):
                continue
            if wanted.get("label") and not image_filters.labels_match(wanted["label"], row["Labels"]):
                continue
            rows.append(row)
        for key, image_id in bounds.items():
            pivot = shapes.summary(self.store, self.store.meta.images[image_id])["Created"]
            rows = [r for r in rows if (r["Created"] < pivot if key == "before" else r["Created"] > pivot)]
        return sorted(rows, key=lambda r: (-r["Created"], r["Id"]))

    async def inspect(self, ref: str) -> dict[str, Any]:
        return shapes.inspect(self.store, self.store.find(ref))

    async def history(self, ref: str) -> builtins.list[dict[str, Any]]:
        return shapes.history(self.store, self.store.find(ref))

    async def pull(self, ref: str, platform: str | None = None, auth: Auth = None) -> AsyncIterator[dict[str, Any]]:
        """POST /images/create?fromImage=: dockerd's progress messages. A failure before the first
        message (a bad reference, an unknown repository, refused credentials) raises here, so the
        client gets dockerd's status (400, 404, 401); a later one is the stream's last message
        ({"errorDetail": …, "error": …}), as the stream has already begun with a 200."""
        parsed = parse(ref)
        want = parse_platform(platform) if platform else host_platform()
        creds = credentials_from(auth)
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        early: list[ShoalError] = []  # the failure that came before any message
        emitted = 0

        def emit(message: dict[str, Any]) -> None:
            nonlocal emitted
            emitted += 1
            queue.put_nowait(message)

        async def run() -> None:
            try:
                await self.puller.pull(parsed, want, creds, emit)
            except ShoalError as exc:
                if not emitted:
                    early.append(exc)
                else:
                    queue.put_nowait(progress.error(str(exc)))
            except Exception as exc:
                log.exception("pull of %s failed", parsed)
                if not emitted:
                    early.append(Unknown(str(exc) or type(exc).__name__))
                else:  # the stream has begun: a failure can only be told inside it
                    queue.put_nowait(progress.error(str(exc) or type(exc).__name__))
            finally:
                queue.put_nowait(None)

        task = asyncio.create_task(run())
        first = await queue.get()
        if early:
            raise _as_dockerd_answers(early[0])
        return _drain(task, queue, first)

    async def import_tar(self, source: AsyncIterator[bytes], repo: str = "", tag: str = "",
                         changes: builtins.list[str] | None = None, message: str = "") -> builtins.list[dict[str, str]]:
        """POST /images/create?fromSrc=-: a root filesystem tarball as a one-layer image. The answer is
        dockerd's: [{"status": "sha256:…"}]."""
        name = parse(f"{repo}:{tag}" if repo and tag else repo) if repo else None
        apply_changes({}, list(changes or []))  # refuse bad changes before reading the body
        path = await spool(source, self.store.content.ingest_dir)
        try:
            async with self._cleanup_on_failure():
                image_id = await import_rootfs(self.store, path, name, list(changes or []),
                                               rfc3339(self.clock.now()), message)
        finally:
            path.unlink(missing_ok=True)
        return [{"status": image_id}]

    async def load(self, archive: AsyncIterator[bytes]) -> builtins.list[dict[str, str]]:
        """POST /images/load: docker save archives and OCI layout archives. The messages dockerd
        streams ({"stream": "Loaded image: busybox:latest\n"})."""
        path = await spool(archive, self.store.content.ingest_dir)
        try:
            async with self._cleanup_on_failure():
                return await load_archive(self.store, path, rfc3339(self.clock.now()))
        finally:
            path.unlink(missing_ok=True)

    async def save(self, refs: builtins.list[str]) -> AsyncIterator[bytes]:
        """GET /images/get?names=… (and /images/{name}/get): the tar stream `docker save` writes."""
        for ref in refs:
            self.store.find(ref)  # a missing image is refused before any byte is sent
        target = self.store.content.ingest_dir / f"{uuid.uuid4().hex}.save"
        try:
            await asyncio.to_thread(write_save_archive, self.store, list(refs), target)
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        return stream_file(target)

    @contextlib.asynccontextmanager
    async def _cleanup_on_failure(self) -> AsyncIterator[None]:
        try:
            yield
        except BaseException:
            async with self.store.lock:
                self.store.collect()
            raise

    async def tag(self, ref: str, repo: str, tag: str | None = None) -> None:
        """POST /images/{name}/tag."""
        record = self.store.find(ref)
        target = parse(f"{repo}:{tag}" if tag else repo)
        if target.digest:
            raise InvalidArgument("refusing to create a tag with a digest reference")
        async with self.store.lock:
            self.store.meta.refs[str(target)] = record.id
            record.last_tag_time = rfc3339(self.clock.now())
            self.store.save()

    async def remove(self, ref: str, force: bool = False, in_use: InUse = no_users) -> builtins.list[dict[str, str]]:
        """DELETE /images/{name}: [{"Untagged": …}, {"Deleted": …}] as dockerd answers."""
        async with self.store.lock:
            record = self.store.find(ref)
            names = self.store.meta.names_of(record.id)
            users = in_use(record.id)
            by_id = is_image_id(ref) and not any(self._named(ref, n) for n in names)
            answer: builtins.list[dict[str, str]] = []
            if by_id:
                check_delete_by_id(record.id, names, users, force)
            else:
                name = str(parse(ref))
                if any("@" not in n for n in names if n != name):
                    # Other tags keep the image: only this name goes.
                    del self.store.meta.refs[name]
                    self.store.save()
                    return [{"Untagged": parse(name).familiar}]
                check_untag_last(parse(ref).familiar, record.id, users, force)
            for name in names:
                answer.append({"Untagged": parse(name).familiar})
                del self.store.meta.refs[name]
            del self.store.meta.images[record.id]
            self.store.save()
            answer.append({"Deleted": record.id})
            _, snapshots = self.store.collect()
            answer.extend({"Deleted": d} for d in sorted(snapshots))
            return answer

    @staticmethod
    def _named(ref: str, name: str) -> bool:
        with contextlib.suppress(ShoalError):
            return str(parse(ref)) == name
        return False

    async def prune(self, filters: image_filters.Filters | None = None,
                    in_use: InUse = no_users) -> dict[str, Any]:
        """POST /images/prune: dangling images by default, every unused image with dangling=false."""
        wanted = image_filters.normalise(filters, image_filters.PRUNE_FILTERS)
        only_dangling = image_filters.dangling_wanted(wanted) is not False
        deleted: builtins.list[dict[str, str]] = []
        reclaimed = 0
        async with self.store.lock:
            for image_id, record in list(self.store.meta.images.items()):
                names = self.store.meta.names_of(image_id)
                if only_dangling and any("@" not in n for n in names):
                    continue
                if in_use(image_id):
                    continue
                config = self.store.config(record)
                labels = (config.get("config") or {}).get("Labels")
                if wanted.get("label") and not image_filters.labels_match(wanted["label"], labels):
                    continue
                if wanted.get("label!") and image_filters.labels_match(wanted["label!"], labels):
                    continue
                reclaimed += shapes.image_size(self.store, config)
                for name in names:
                    deleted.append({"Untagged": parse(name).familiar})
                    del self.store.meta.refs[name]
                del self.store.meta.images[image_id]
                deleted.append({"Deleted": image_id})
            self.store.save()
            self.store.collect()
        return {"ImagesDeleted": deleted or None, "SpaceReclaimed": reclaimed}

    async def login(self, server: str, auth: Auth) -> dict[str, str]:
        """POST /auth: the credentials checked against the registry, as `docker login` has dockerd do."""
        host = server.removeprefix("https://").removeprefix("http://").split("/", 1)[0] or DOCKER_HUB_HOST
        if host in ("docker.io", "index.docker.io"):
            host = DOCKER_HUB_HOST
        async with aiohttp.ClientSession() as session:
            await self.puller.client(session, Reference(host, ""), credentials_from(auth)).login()
        return {"Status": "Login Succeeded", "IdentityToken": ""}

    async def distribution_inspect(self, ref: str, auth: Auth = None) -> dict[str, Any]:
        """GET /distribution/{name}/json: what the registry holds for the name (the CLI pins services
        to Descriptor.digest)."""
        parsed = parse(ref)
        async with aiohttp.ClientSession() as session:
            client = self.puller.client(session, parsed, credentials_from(auth))
            described = await self.puller.describe(client, parsed, None)
            platforms = described.platforms
            if not platforms:
                manifest = manifests.decode(described.target_body, "manifest")
                config_digest = str((manifest.get("config") or {}).get("digest", ""))
                body = b"".join([chunk async for chunk in client.blob(config_digest)])
                config = manifests.decode(body, "image config")
                plat = Platform(str(config.get("os", "")), str(config.get("architecture", "")),
                                str(config.get("variant", "")))
                platforms = [plat.as_json()]
        return {
            "Descriptor": {"mediaType": described.target_media_type, "digest": described.target,
                           "size": described.target_size},
            "Platforms": platforms,
        }


def _as_dockerd_answers(failure: ShoalError) -> ShoalError:
    """A refused pull as dockerd answers it: 404 for `pull access denied` (no credentials, or no such
    repository), 500 for credentials the registry turned down. Never 401: on a 401 the docker CLI asks
    for credentials on the terminal and retries, as if dockerd wanted a login."""
    if isinstance(failure, RegistryUnauthorized):
        if failure.message.startswith("pull access denied"):
            return NotFound(failure.message)
        return Unknown(failure.message)
    return failure


async def _drain(task: asyncio.Task[None], queue: asyncio.Queue[dict[str, Any] | None],
                 first: dict[str, Any] | None) -> AsyncIterator[dict[str, Any]]:
    try:
        if first is None:
            return
        yield first
        while (message := await queue.get()) is not None:
            yield message
    finally:
        if not task.done():
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

