"""Layer snapshots: each layer unpacked once, under snapshots/<diff id hex>/fs, and shared by every
image that has it. A snapshot is built in a staging directory and renamed into place only once its
diff id is verified, so a failed unpack leaves nothing behind."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from shoal.images import digests
from shoal.images.errors import CorruptLayer, StoreFull
from shoal.images.once import Once
from shoal.images.unpack import LayerFormatError, unpack_layer


class SnapshotStore:
    def __init__(self, root: Path) -> None:
        self.dir = root / "snapshots"
        self.staging = root / "snapshots.tmp"
        self.dir.mkdir(parents=True, exist_ok=True)
        self._unpacks: Once[Path] = Once()
        # Unpacks a crash interrupted: never renamed into place, so nothing refers to them.
        shutil.rmtree(self.staging, ignore_errors=True)
        self.staging.mkdir(parents=True, exist_ok=True)

    def path(self, diff_id: str) -> Path:
        return self.dir / digests.check(diff_id) / "fs"

    def has(self, diff_id: str) -> bool:
        return self.path(diff_id).is_dir()

    def size(self, diff_id: str) -> int:
        try:
            return int((self.dir / digests.check(diff_id) / "size").read_text())
        except (OSError, ValueError):
            return 0

    def diff_ids(self) -> set[str]:
        return {"sha256:" + p.name for p in self.dir.iterdir()}

    def delete(self, diff_id: str) -> None:
        shutil.rmtree(self.dir / digests.check(diff_id), ignore_errors=True)

    async def ensure(self, diff_id: str, blob: Path, blob_digest: str,
                     on_progress: Callable[[int], None] | None = None) -> Path:
        """The snapshot for `diff_id`, unpacking `blob` if it is missing; concurrent callers for one
        layer share one unpack."""
        if self.has(diff_id):
            return self.path(diff_id)
        return await self._unpacks.run(diff_id, lambda: self._unpack_in_thread(diff_id, blob, blob_digest, on_progress))

    async def _unpack_in_thread(self, diff_id: str, blob: Path, blob_digest: str,
                                on_progress: Callable[[int], None] | None) -> Path:
        work = asyncio.ensure_future(asyncio.to_thread(self._unpack, diff_id, blob, blob_digest, on_progress))
        try:
            return await asyncio.shield(work)
        except asyncio.CancelledError:
            # A thread cannot be stopped: wait for it, so nothing lands in snapshots/ after the caller
            # has given up and cleaned the store.
            with contextlib.suppress(BaseException):
                await work
            raise

    def _unpack(self, diff_id: str, blob: Path, blob_digest: str,
                on_progress: Callable[[int], None] | None) -> Path:
        stage = self.staging / uuid.uuid4().hex
        (stage / "fs").mkdir(parents=True)
        try:
            actual, size = unpack_layer(blob, stage / "fs", on_progress)
            (stage / "size").write_text(str(size))
            if actual != diff_id:
                raise CorruptLayer(blob_digest, f"layer content hashes to {actual}, the image config says {diff_id}")
            final = self.dir / digests.check(diff_id)
            if not final.exists():
                stage.rename(final)
            return final / "fs"
        except LayerFormatError as exc:
            raise CorruptLayer(blob_digest, str(exc)) from exc
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise StoreFull(f"layer {blob_digest}") from exc
            raise
        finally:
            with contextlib.suppress(OSError):
                shutil.rmtree(stage)
