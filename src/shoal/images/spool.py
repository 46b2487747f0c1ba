"""Request bodies that need random access (tar archives) written to a file in the store's ingest
directory first, removed again whatever happens."""

from __future__ import annotations

import contextlib
import errno
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from shoal.images.errors import StoreFull


async def spool(chunks: AsyncIterator[bytes], directory: Path) -> Path:
    path = directory / f"{uuid.uuid4().hex}.spool"
    try:
        with open(path, "wb") as out:
            async for chunk in chunks:
                out.write(chunk)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            path.unlink()
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            raise StoreFull("archive") from exc
        raise
    return path


async def stream_file(path: Path, chunk: int = 1 << 16) -> AsyncIterator[bytes]:
    """Yield a file's bytes and delete it afterwards (a save archive built in the ingest directory)."""
    try:
        with open(path, "rb") as source:
            while data := source.read(chunk):
                yield data
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
