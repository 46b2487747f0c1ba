"""A task's root filesystem: the image's layers (read-only, shared) under an overlay with a writable
layer of the task's own, so a replacement task starts from the image again."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path

from shoal.executor.errors import ExecutorError


def overlay_options(layers: Sequence[Path], upper: Path, work: Path) -> str:
    """overlayfs lists lowerdirs top-most first; the image gives them lowest first."""
    lower = ":".join(str(p) for p in reversed(layers))
    return f"lowerdir={lower},upperdir={upper},workdir={work}"


def is_mounted(path: Path) -> bool:
    return os.path.ismount(path)


async def mount_rootfs(layers: Sequence[Path], upper: Path, work: Path, target: Path) -> None:
    if is_mounted(target):
        return
    for directory in (upper, work, target):
        directory.mkdir(parents=True, exist_ok=True)
    await _run("mount", "-t", "overlay", "overlay", "-o", overlay_options(layers, upper, work), str(target))


async def unmount(target: Path) -> None:
    """Detach the task's root (lazily: an exec still holding it lets go on its own)."""
    if is_mounted(target):
        await _run("umount", "-l", str(target))


async def _run(*argv: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise ExecutorError(f"{argv[0]} failed: {out.decode(errors='replace').strip()}")
