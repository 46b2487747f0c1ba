"""A task's secrets and configs (TaskRuntime.files) as files it can see, without their data touching
the host's disk: a tmpfs of the task's own, mounted under its state directory (mode 0700, root only),
holds one file per TaskFile with its uid, gid and mode; the executor bind-mounts each of them read-only
onto its target inside the task's mount namespace. Removing the task unmounts the tmpfs, so nothing
remains. (dockerd does the same under /var/lib/docker/containers/<id>/mounts.)

Chosen over writing the files into the container after its namespaces exist: that needs a helper
binary inside every image or a runtime-specific hook, while a bind mount from the host side works with
runc and crun alike, and the mount outlives shoald, so a re-adopted task keeps its files."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from shoal.executor.base import TaskFile
from shoal.executor.errors import ExecutorError, InvalidTaskSpec

SECRETS_DIR = "/run/secrets"
SECRETS_SUBDIR = "run-secrets"
TMPFS_OPTIONS = "mode=0700,nosuid,nodev,noexec,size=64m"
BIND_OPTIONS = ("rbind", "ro", "nosuid", "nodev", "noexec", "rprivate")


def check_targets(files: Sequence[TaskFile]) -> None:
    """Targets must be absolute and distinct: two files on one path would hide one of them."""
    seen: set[str] = set()
    for file in files:
        target = os.path.normpath(file.target)
        if not os.path.isabs(target) or target == "/":
            raise InvalidTaskSpec(f"invalid target for a secret or config: {file.target!r}")
        if target in seen:
            raise InvalidTaskSpec(f"two secrets or configs have the same target: {target}")
        seen.add(target)


async def mount_files(files: Sequence[TaskFile], directory: Path) -> tuple[tuple[str, Path], ...]:
    """Write `files` into a fresh tmpfs at `directory`; returns (target, source) pairs to bind. With no
    files nothing is mounted."""
    if not files:
        return ()
    check_targets(files)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not os.path.ismount(directory):
        await _run("mount", "-t", "tmpfs", "-o", TMPFS_OPTIONS, "shoal-task-files", str(directory))
    if not os.path.ismount(directory):  # never write a secret anywhere but onto the tmpfs
        raise ExecutorError(f"no tmpfs at {directory} for the task's secrets and configs")
    pairs = []
    for index, file in enumerate(files):
        target = os.path.normpath(file.target)
        # /run/secrets/* together in one directory, so an executor can bind that whole directory
        if os.path.dirname(target) == SECRETS_DIR:
            (directory / SECRETS_SUBDIR).mkdir(mode=0o755, exist_ok=True)
            source = directory / SECRETS_SUBDIR / os.path.basename(target)
        else:
            source = directory / str(index)
        # O_EXCL on a fresh name: never follow a link someone left in the directory
        source.unlink(missing_ok=True)
        fd = os.open(source, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, file.data)
            os.fchown(fd, file.uid, file.gid)
            os.fchmod(fd, file.mode)
        finally:
            os.close(fd)
        pairs.append((target, source))
    return tuple(pairs)


async def unmount_files(directory: Path) -> None:
    """Drop the task's tmpfs (lazily: an exec still holding a file lets go on its own) and its mount
    point."""
    if os.path.ismount(directory):
        await _run("umount", "-l", str(directory))
    if directory.is_dir():
        shutil.rmtree(directory)  # only if a mount failed half-way: nothing was written to it


async def _run(*argv: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise ExecutorError(f"{argv[0]} failed: {out.decode(errors='replace').strip()}")
