"""Content-addressed blobs in the OCI image layout: blobs/sha256/<hex>, each verified against its
digest (and size, when known) before it becomes visible. Writes go to ingest/ first and are renamed
into place, so a failed or interrupted write never leaves a blob that lies about its content."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import IO

from shoal.images import digests
from shoal.images.errors import DigestMismatch, SizeMismatch, StoreFull

OCI_LAYOUT = {"imageLayoutVersion": "1.0.0"}


def atomic_write(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so a crash leaves either the old or the new file, never half of one."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    try:
        with open(tmp, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if exc.errno == errno.ENOSPC:
            raise StoreFull(str(path)) from exc
        raise


class ContentStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = root / "blobs" / "sha256"
        self.ingest_dir = root / "ingest"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.ingest_dir.mkdir(parents=True, exist_ok=True)
        layout = root / "oci-layout"
        if not layout.exists():
            atomic_write(layout, json.dumps(OCI_LAYOUT).encode())
        self.clean_ingest()

    def clean_ingest(self) -> None:
        """Drop partial writes a crash left behind: nothing in ingest/ is ever referenced."""
        for leftover in self.ingest_dir.iterdir():
            with contextlib.suppress(OSError):
                leftover.unlink()

    def path(self, digest: str) -> Path:
        return self.blobs / digests.check(digest)

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def size(self, digest: str) -> int:
        return self.path(digest).stat().st_size

    def read(self, digest: str) -> bytes:
        return self.path(digest).read_bytes()

    def digests(self) -> set[str]:
        return {"sha256:" + p.name for p in self.blobs.iterdir() if not p.name.startswith(".")}

    def delete(self, digest: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(digest).unlink()

    def put(self, data: bytes, expected: str | None = None) -> str:
        """Store bytes held in memory (manifests, configs); returns their digest."""
        actual = digests.sha256_of(data)
        if expected is not None and expected != actual:
            raise DigestMismatch(expected, actual)
        target = self.path(actual)
        if not target.exists():
            self._commit(self._write_temp(data), target, actual)
        return actual

    def _write_temp(self, data: bytes) -> Path:
        tmp = self.ingest_dir / uuid.uuid4().hex
        try:
            with open(tmp, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            if exc.errno == errno.ENOSPC:
                raise StoreFull(str(tmp)) from exc
            raise
        return tmp

    def _commit(self, tmp: Path, target: Path, digest: str) -> None:
        try:
            os.replace(tmp, target)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            if exc.errno == errno.ENOSPC:
                raise StoreFull(digest) from exc
            raise

    def put_file(self, source: IO[bytes], expected: str | None = None) -> tuple[str, int]:
        """Copy a file object in (a layer inside an archive); returns its digest and size."""
        tmp = self.ingest_dir / uuid.uuid4().hex
        hasher = hashlib.sha256()
        size = 0
        try:
            with open(tmp, "wb") as out:
                while chunk := source.read(1 << 20):
                    out.write(chunk)
                    hasher.update(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            actual = "sha256:" + hasher.hexdigest()
            if expected is not None and actual != expected:
                raise DigestMismatch(expected, actual)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
                raise StoreFull("blob") from exc
            raise
        self._commit(tmp, self.path(actual), actual)
        return actual, size

    async def ingest(
        self,
        expected: str,
        size: int | None,
        chunks: AsyncIterator[bytes],
        on_progress: Callable[[int], None] | None = None,
    ) -> None:
        """Stream a blob in, hashing as it arrives; it appears under blobs/ only if digest and size
        match. On any failure the partial file is removed and the error raised."""
        target = self.path(expected)
        tmp = self.ingest_dir / uuid.uuid4().hex
        hasher = hashlib.sha256()
        written = 0
        try:
            with open(tmp, "wb") as out:
                async for chunk in chunks:
                    out.write(chunk)
                    hasher.update(chunk)
                    written += len(chunk)
                    if on_progress is not None:
                        on_progress(written)
                    if size is not None and written > size:
                        raise SizeMismatch(expected, size, written)
                out.flush()
                os.fsync(out.fileno())
            if size is not None and written != size:
                raise SizeMismatch(expected, size, written)
            actual = "sha256:" + hasher.hexdigest()
            if actual != expected:
                raise DigestMismatch(expected, actual)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
                raise StoreFull(f"blob {expected}") from exc
            raise
        self._commit(tmp, target, expected)
