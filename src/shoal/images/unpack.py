"""Unpack one layer tar (plain or gzip) into a directory in overlayfs form, computing its diff id
(the sha256 of the uncompressed tar) on the way.

OCI whiteouts become overlayfs's own: `.wh.NAME` a 0/0 character device NAME, `.wh..wh..opq` the
trusted.overlay.opaque=y xattr on its directory. Paths that climb out of the layer ('..', through a
symlinked parent) are refused: a layer is untrusted input."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
import zlib
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import IO

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
GZIP_MAGIC = b"\x1f\x8b"


class LayerFormatError(Exception):
    """The layer is not a readable tar, or holds an entry that escapes it."""


class _HashingReader(io.RawIOBase):
    """Passes bytes through while hashing them, so the diff id needs no second pass."""

    def __init__(self, inner: IO[bytes]) -> None:
        self.inner = inner
        self.hasher = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.inner.read(len(buffer))
        self.hasher.update(data)
        self.size += len(data)
        buffer[: len(data)] = data
        return len(data)

    def drain(self) -> None:
        """Hash what follows the tar's end-of-archive blocks too: the diff id covers every byte."""
        while data := self.inner.read(1 << 16):
            self.hasher.update(data)
            self.size += len(data)

    def hexdigest(self) -> str:
        return self.hasher.hexdigest()


def _relative(name: str) -> PurePosixPath:
    parts = [p for p in PurePosixPath(name.lstrip("/")).parts if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise LayerFormatError(f"entry {name!r} climbs out of the layer")
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


def _safe_parent(root: Path, rel: PurePosixPath) -> Path:
    """The entry's parent directory under root, created as needed; refused if any part is a symlink."""
    current = root
    for part in rel.parts[:-1]:
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            os.mkdir(current, 0o755)
            continue
        if stat.S_ISLNK(mode):
            raise LayerFormatError(f"entry {rel} goes through the symlink {part}")
        if not stat.S_ISDIR(mode):
            raise LayerFormatError(f"entry {rel} is under the non-directory {part}")
    return current


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        for child in path.iterdir():
            _remove(child)
        path.rmdir()
    elif os.path.lexists(path):
        path.unlink()


def _whiteout(parent: Path, name: str) -> None:
    target = parent / name
    if os.path.lexists(target):
        _remove(target)
    os.mknod(target, 0o600 | stat.S_IFCHR, os.makedev(0, 0))


def _opaque(directory: Path) -> None:
    os.setxattr(directory, OPAQUE_XATTR, b"y")


def _extract_entries(archive: tarfile.TarFile, root: Path) -> None:
    directories: list[tuple[tarfile.TarInfo, Path]] = []
    for member in archive:
        rel = _relative(member.name)
        if rel == PurePosixPath("."):
            continue
        parent = _safe_parent(root, rel)
        base = rel.name
        if base == OPAQUE_MARKER:
            _opaque(parent)
            continue
        if base.startswith(WHITEOUT_PREFIX):
            _whiteout(parent, base[len(WHITEOUT_PREFIX):])
            continue
        if member.islnk():
            link = _relative(member.linkname)
            _safe_parent(root, link)
            member.linkname = str(link)
        member.name = str(rel)
        target = root / rel
        if os.path.lexists(target) and not (member.isdir() and target.is_dir() and not target.is_symlink()):
            _remove(target)
        if member.isdir():
            os.makedirs(target, exist_ok=True)
            directories.append((member, target))
            continue
        archive.extract(member, root, set_attrs=True, numeric_owner=True, filter="fully_trusted")
    # Directory modes and times last, so adding their contents does not undo them.
    for member, target in reversed(directories):
        os.chown(target, member.uid, member.gid)
        os.chmod(target, member.mode & 0o7777)
        os.utime(target, (member.mtime, member.mtime))


class _CountingReader(io.RawIOBase):
    """Reports how far into the (compressed) blob the unpack has read: the Extracting bar."""

    def __init__(self, inner: IO[bytes], report: Callable[[int], None]) -> None:
        self.inner = inner
        self.report = report
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.inner.read(len(buffer))
        buffer[: len(data)] = data
        self.count += len(data)
        self.report(self.count)
        return len(data)


def unpack_layer(blob: Path, target: Path, on_progress: Callable[[int], None] | None = None) -> tuple[str, int]:
    """Extract the layer blob into `target` (an existing empty directory); returns its diff id and
    its uncompressed size (what `docker images` adds up as SIZE)."""
    with open(blob, "rb") as file:
        raw = io.BufferedReader(_CountingReader(file, on_progress)) if on_progress else file
        compressed = raw.peek(2)[:2] == GZIP_MAGIC
        stream: IO[bytes] = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw  # type: ignore[assignment]
        reader = _HashingReader(stream)
        try:
            with tarfile.open(fileobj=io.BufferedReader(reader, 1 << 16), mode="r|") as archive:
                _extract_entries(archive, target)
            reader.drain()
        except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise LayerFormatError(str(exc) or type(exc).__name__) from exc
    return "sha256:" + reader.hexdigest(), reader.size
