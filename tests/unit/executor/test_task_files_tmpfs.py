"""executor.taskfiles on the real kernel: the files land on a tmpfs of the task's own (never the disk
under it) with their owners and modes, the oci bundle binds each read-only onto its target, the
process executor places them where it can and refuses the rest, and unmounting leaves nothing."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from shoal.executor.base import Resources, TaskFile
from shoal.executor.errors import InvalidTaskSpec
from shoal.executor.oci.bundle import BundleInputs, runtime_config
from shoal.executor.oci.passwd import ContainerUser
from shoal.executor.process.mounts import check_task_files, task_file_specs
from shoal.executor.taskfiles import check_targets, mount_files, unmount_files
from shoal.executor.taskoptions import TaskOptions

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")

FILES = (
    TaskFile("/run/secrets/db", b"hunter2", uid=1000, gid=1001, mode=0o400, secret=True),
    TaskFile("/etc/app.conf", b"k=v\n", mode=0o640),
)


def fs_type(path: Path) -> str:
    """The filesystem type of the mount holding `path` (the longest mount point that contains it)."""
    best, kind = "", ""
    for line in Path("/proc/self/mounts").read_text().splitlines():
        _, point, fstype, *_ = line.split()
        if (str(path) == point or str(path).startswith(point.rstrip("/") + "/")) and len(point) > len(best):
            best, kind = point, fstype
    return kind


async def test_files_live_on_a_tmpfs_and_go_with_it(tmp_path: Path) -> None:
    directory = tmp_path / "task" / "files"
    pairs = await mount_files(FILES, directory)
    try:
        assert fs_type(directory) == "tmpfs"
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
        assert [target for target, _ in pairs] == ["/run/secrets/db", "/etc/app.conf"]
        first = pairs[0][1].stat()
        assert (first.st_uid, first.st_gid, stat.S_IMODE(first.st_mode)) == (1000, 1001, 0o400)
        assert pairs[0][1].read_bytes() == b"hunter2"
        assert fs_type(pairs[1][1]) == "tmpfs"
    finally:
        await unmount_files(directory)
    assert not directory.exists()
    assert list((tmp_path / "task").iterdir()) == []  # nothing was written to the disk underneath
    await unmount_files(directory)  # idempotent


async def test_no_files_mounts_nothing(tmp_path: Path) -> None:
    assert await mount_files((), tmp_path / "files") == ()
    assert not (tmp_path / "files").exists()


def test_bad_targets_are_refused() -> None:
    for files in ((TaskFile("relative", b"x"),), (TaskFile("/a", b"x"), TaskFile("/b/../a", b"y"))):
        with pytest.raises(InvalidTaskSpec):
            check_targets(files)


def test_the_bundle_binds_each_file_read_only() -> None:
    inputs = BundleInputs(
        argv=["true"], env=[], cwd="/", user=ContainerUser(0, 0, (), "/root"), hostname="h", tty=False,
        options=TaskOptions(), resources=Resources(), etc_files={}, mount_sources=[], cgroups_path="/x",
        all_capabilities=[], seccomp=None, network_hook=None, init_binary=None,
        task_files=[("/run/secrets/db", Path("/state/files/0"))],
    )
    mounts = runtime_config(inputs)["mounts"]
    assert mounts[-1] == {"destination": "/run/secrets/db", "type": "bind", "source": "/state/files/0",
                          "options": ["rbind", "ro", "nosuid", "nodev", "noexec", "rprivate"]}


def test_the_process_executor_places_what_it_can_and_refuses_the_rest_saying_why(tmp_path: Path) -> None:
    check_task_files((), isolated=False)
    with pytest.raises(InvalidTaskSpec, match="cannot deliver configs and secrets to a task without its own mount"):
        check_task_files(FILES, isolated=False)
    with pytest.raises(InvalidTaskSpec, match=r"cannot place a config at /etc/app\.conf: no such file on this host"):
        check_task_files(FILES, isolated=True)
    existing = tmp_path / "app.conf"
    existing.write_text("")
    placeable = (FILES[0], TaskFile(str(existing), b"x"))
    check_task_files(placeable, isolated=True)
    specs = task_file_specs([("/run/secrets/db", tmp_path / "run-secrets" / "db"), (str(existing), tmp_path / "1")])
    assert specs == [f"bind,ro,{tmp_path}/run-secrets,/run/secrets", f"bind,ro,{tmp_path}/1,{existing}"]
