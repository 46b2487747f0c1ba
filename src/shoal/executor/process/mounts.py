"""--mount for isolated process tasks: bind, volume and tmpfs mounts made in the task's own mount
namespace over the host's filesystem, which the task otherwise sees. A target must therefore exist on
the host; the task is rejected saying so when it does not."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from shoal.executor.base import TaskFile
from shoal.executor.errors import InvalidTaskSpec
from shoal.executor.taskfiles import SECRETS_DIR
from shoal.executor.taskoptions import MountSpec

_SEPARATOR = ","  # the shim's -x field separator


def check_targets(mounts: tuple[MountSpec, ...]) -> None:
    for mount in mounts:
        if not os.path.isdir(mount.target):
            raise InvalidTaskSpec(
                f"process executor cannot apply --mount: target {mount.target} is not a directory on this host "
                "(tasks see the host's filesystem; use the oci executor)"
            )
        for text in (mount.source, mount.target):
            if _SEPARATOR in text or any(ch.isspace() for ch in text):
                raise InvalidTaskSpec(f"process executor cannot mount a path with ',' or spaces: {text}")


def shim_specs(mounts: tuple[MountSpec, ...], volume_dir: Path, task_dir: Path) -> list[str]:
    """The shim's -x entries ("KIND,MODE,SRC,DST"); named volumes made on first use under
    `volume_dir`, anonymous ones in the task's directory (removed with it)."""
    specs = []
    for index, mount in enumerate(mounts):
        mode = "ro" if mount.read_only else "rw"
        if mount.type == "tmpfs":
            options = [f"mode={oct(mount.tmpfs_mode or 0o1777)[2:]}"]
            if mount.tmpfs_size:
                options.append(f"size={mount.tmpfs_size}")
            specs.append(f"tmpfs,{mode},{';'.join(options)},{mount.target}")
            continue
        if mount.type == "volume":
            source = volume_dir / mount.source / "_data" if mount.source else task_dir / "volumes" / str(index)
            source.mkdir(parents=True, exist_ok=True)
        else:
            source = Path(mount.source)
        specs.append(f"bind,{mode},{source},{mount.target}")
    return specs


def check_task_files(files: Sequence[TaskFile], isolated: bool) -> None:
    """Secrets and configs of a process task. It sees the host's filesystem, so they are bound over it
    inside the task's own mount namespace only: /run/secrets/* as one directory from the task's tmpfs
    (an empty /run/secrets on the host is the mount point), any other target over a file that already
    exists on the host. A task without its own mount namespace, or a target that cannot be placed so,
    is rejected saying why: a secret is never written to the host's filesystem."""
    if not files:
        return
    kinds = " and ".join(sorted({"secrets" if f.secret else "configs" for f in files}))
    if not isolated:
        raise InvalidTaskSpec(
            f"process executor cannot deliver {kinds} to a task without its own mount namespace (they would land "
            "on the host's filesystem): run shoald as root or use the oci executor"
        )
    for file in files:
        target = os.path.normpath(file.target)
        if _SEPARATOR in target or any(ch.isspace() for ch in target):
            raise InvalidTaskSpec(f"process executor cannot mount a path with ',' or spaces: {target}")
        if os.path.dirname(target) != SECRETS_DIR and not os.path.isfile(target):
            raise InvalidTaskSpec(
                f"process executor cannot place {'a secret' if file.secret else 'a config'} at {target}: no such "
                "file on this host to mount it over (tasks see the host's filesystem; use the oci executor)"
            )


def task_file_specs(pairs: Sequence[tuple[str, Path]]) -> list[str]:
    """The shim's -x entries binding the task's files (executor.taskfiles.mount_files) read-only."""
    specs: list[str] = []
    secrets = sorted({str(source.parent) for target, source in pairs if os.path.dirname(target) == SECRETS_DIR})
    if secrets:
        os.makedirs(SECRETS_DIR, mode=0o755, exist_ok=True)  # an empty mount point; nothing is written in it
        specs += [f"bind,ro,{directory},{SECRETS_DIR}" for directory in secrets]
    specs += [f"bind,ro,{source},{target}" for target, source in pairs if os.path.dirname(target) != SECRETS_DIR]
    return specs


def refuse_task_files(files: Sequence[TaskFile]) -> None:
    """What the process executor did before it could deliver them (kept for request A-3's callers)."""
    check_task_files(files, isolated=False)
