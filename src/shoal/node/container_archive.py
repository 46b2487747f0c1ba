"""`docker cp`: a path of a task container read or written as a tar stream (HEAD/GET/PUT
/containers/{id}/archive), over the container's filesystem as the executor shows it on the host.

Paths are resolved inside the container's root as dockerd's FollowSymlinkInScope does: an absolute
symlink means the container's root, and `..` never climbs above it, so a container cannot point
a copy at the host's files."""

from __future__ import annotations

import asyncio
import os
import stat
import tarfile
import tempfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import IO, Any

from shoal.api import errors

Json = dict[str, Any]
MAX_LINKS = 255
CHUNK = 64 * 1024

# Go's os.FileMode bits, which the CLI reads from the path stat (`IsDir()` decides how it copies).
_GO_DIR, _GO_SYMLINK, _GO_DEVICE, _GO_PIPE, _GO_SOCKET = 1 << 31, 1 << 27, 1 << 26, 1 << 25, 1 << 24
_GO_SETUID, _GO_SETGID, _GO_CHARDEV, _GO_STICKY = 1 << 23, 1 << 22, 1 << 21, 1 << 20


def go_file_mode(mode: int) -> int:
    bits = mode & 0o777
    kinds = {stat.S_IFDIR: _GO_DIR, stat.S_IFLNK: _GO_SYMLINK, stat.S_IFIFO: _GO_PIPE, stat.S_IFSOCK: _GO_SOCKET,
             stat.S_IFBLK: _GO_DEVICE, stat.S_IFCHR: _GO_DEVICE | _GO_CHARDEV}
    bits |= kinds.get(stat.S_IFMT(mode), 0)
    for flag, go in ((stat.S_ISUID, _GO_SETUID), (stat.S_ISGID, _GO_SETGID), (stat.S_ISVTX, _GO_STICKY)):
        if mode & flag:
            bits |= go
    return bits


def resolve_in_root(root: str, path: str, *, follow_last: bool) -> str:
    """The container path `path` as an absolute path inside the container (symlinks followed within
    the root; the last element only with `follow_last`)."""
    pending = [p for p in PurePosixPath("/", path).parts[1:]]
    resolved: list[str] = []
    links = 0
    while pending:
        part = pending.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        if (pending or follow_last) and os.path.islink(candidate):
            links += 1
            if links > MAX_LINKS:
                raise errors.InvalidArgument(f"too many links in {path}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            pending = [p for p in PurePosixPath(target).parts if p != "/"] + pending
            continue
        resolved.append(part)
    return "/" + "/".join(resolved)


def _host(root: str, inside: str) -> str:
    return os.path.join(root, inside.lstrip("/"))


def _not_found(path: str, container: str) -> errors.NotFound:
    return errors.NotFound(f"Could not find the file {path} in container {container}")


def _rfc3339_nano(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def path_stat(root: str, path: str, container: str) -> Json:
    """The X-Docker-Container-Path-Stat body: name, size, Go mode bits, mtime, link target."""
    inside = resolve_in_root(root, path, follow_last=False)
    try:
        info = os.lstat(_host(root, inside))
    except OSError:
        raise _not_found(path, container) from None
    link = ""
    if stat.S_ISLNK(info.st_mode):
        link = resolve_in_root(root, path, follow_last=True)
    return {"name": PurePosixPath(inside).name or "/", "size": info.st_size, "mode": go_file_mode(info.st_mode),
            "mtime": _rfc3339_nano(info.st_mtime), "linkTarget": link}


def _rebase_name(path: str) -> str:
    """The name the copied resource has in the archive: `dir/.` copies a directory's contents."""
    if path.endswith("/.") or path == ".":
        return "."
    return PurePosixPath("/", path).name or "."


async def read_archive(root: str, path: str, container: str) -> tuple[Json, AsyncIterator[bytes]]:
    """GET /containers/{id}/archive: the path's stat and a tar stream of it."""
    info = path_stat(root, path, container)
    inside = resolve_in_root(root, path, follow_last=path.endswith(("/", "/.")))
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed by the stream
    try:
        await asyncio.to_thread(_write_tar, spool, _host(root, inside), _rebase_name(path))
    except BaseException:
        spool.close()
        raise
    return info, _stream(spool)


def _write_tar(out: IO[bytes], source: str, name: str) -> None:
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        tar.add(source, arcname=name, recursive=True)
    out.seek(0)


async def _stream(spool: IO[bytes]) -> AsyncIterator[bytes]:
    try:
        while chunk := await asyncio.to_thread(spool.read, CHUNK):
            yield chunk
    finally:
        spool.close()


async def write_archive(root: str, path: str, container: str, body: AsyncIterator[bytes],
                        no_overwrite_dir_non_dir: bool) -> None:
    """PUT /containers/{id}/archive: unpack the client's tar into the directory `path`. Members
    that would land outside it (absolute names, `..`, links out) are refused by tarfile's filter."""
    inside = resolve_in_root(root, path, follow_last=True)
    target = _host(root, inside)
    if not os.path.lexists(target):
        raise _not_found(path, container)
    if not os.path.isdir(target):
        raise errors.InvalidArgument("extraction point is not a directory")
    with tempfile.TemporaryFile() as spool:
        async for chunk in body:
            await asyncio.to_thread(spool.write, chunk)
        spool.seek(0)
        await asyncio.to_thread(_extract, spool, target, no_overwrite_dir_non_dir)


def _extract(spool: IO[bytes], target: str, no_overwrite_dir_non_dir: bool) -> None:
    try:
        with tarfile.open(fileobj=spool, mode="r:*") as tar:
            members = tar.getmembers()
            if no_overwrite_dir_non_dir:
                for member in members:
                    existing = Path(target, member.name)
                    if existing.is_dir() and not member.isdir():
                        raise errors.InvalidArgument(
                            f"cannot overwrite directory {existing} with non-directory {member.name}")
                    if existing.exists() and not existing.is_dir() and member.isdir():
                        raise errors.InvalidArgument(
                            f"cannot overwrite non-directory {existing} with directory {member.name}")
            tar.extractall(target, members=members, filter="tar")
    except tarfile.FilterError as exc:
        raise errors.InvalidArgument(f"refusing to extract: {exc}") from None
    except tarfile.TarError as exc:
        raise errors.InvalidArgument(f"Error processing tar file: {exc}") from None
