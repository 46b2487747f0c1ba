"""Layer unpacking: overlayfs whiteouts, diff ids, and layers that try to climb out."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from shoal.images.unpack import OPAQUE_XATTR, LayerFormatError, unpack_layer
from shoal.testing.oci_images import make_layer


def write(tmp_path: Path, blob: bytes) -> Path:
    path = tmp_path / "layer.tar.gz"
    path.write_bytes(blob)
    (tmp_path / "fs").mkdir()
    return path


def test_files_symlinks_and_modes_and_the_diff_id(tmp_path: Path) -> None:
    layer = make_layer({"bin/run": "#!/bin/sh\n", "etc/conf": "x"}, symlinks={"bin/sh": "/bin/run"},
                       modes={"bin/run": 0o4755})
    seen: list[int] = []
    diff_id, size = unpack_layer(write(tmp_path, layer.blob), tmp_path / "fs", seen.append)
    assert diff_id == layer.diff_id
    assert size == len(layer.tar)
    assert seen and seen[-1] == len(layer.blob)
    assert (tmp_path / "fs/etc/conf").read_text() == "x"
    assert os.readlink(tmp_path / "fs/bin/sh") == "/bin/run"
    assert stat.S_IMODE(os.lstat(tmp_path / "fs/bin/run").st_mode) == 0o4755


def test_an_uncompressed_layer_unpacks_too(tmp_path: Path) -> None:
    layer = make_layer({"a": "1"})
    diff_id, _ = unpack_layer(write(tmp_path, layer.tar), tmp_path / "fs")
    assert diff_id == layer.diff_id and (tmp_path / "fs/a").read_text() == "1"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: whiteouts are 0/0 char devices and trusted xattrs")
def test_whiteouts_become_overlayfs_whiteouts(tmp_path: Path) -> None:
    layer = make_layer({"etc/.wh.passwd": b"", "var/.wh..wh..opq": b"", "var/new": "n"})
    unpack_layer(write(tmp_path, layer.blob), tmp_path / "fs")
    whiteout = os.lstat(tmp_path / "fs/etc/passwd")
    assert stat.S_ISCHR(whiteout.st_mode) and whiteout.st_rdev == os.makedev(0, 0)
    assert not (tmp_path / "fs/etc/.wh.passwd").exists()
    assert os.getxattr(tmp_path / "fs/var", OPAQUE_XATTR) == b"y"
    assert not (tmp_path / "fs/var/.wh..wh..opq").exists()
    assert (tmp_path / "fs/var/new").read_text() == "n"


@pytest.mark.parametrize(("files", "symlinks"), [
    ({"../escape": "x"}, {}),
    ({"a/../../escape": "x"}, {}),
    ({"link/escape": "x"}, {"link": "/tmp"}),
])
def test_entries_that_leave_the_layer_are_refused(tmp_path: Path, files: dict[str, str],
                                                  symlinks: dict[str, str]) -> None:
    combined = make_layer(files, symlinks=symlinks)
    with pytest.raises(LayerFormatError):
        unpack_layer(write(tmp_path, combined.blob), tmp_path / "fs")
    assert not (tmp_path / "escape").exists()


def test_a_truncated_layer_is_a_format_error(tmp_path: Path) -> None:
    layer = make_layer({"big": os.urandom(100_000).hex()})
    with pytest.raises(LayerFormatError):
        unpack_layer(write(tmp_path, layer.blob[: len(layer.blob) // 2]), tmp_path / "fs")


def test_hard_links_and_entries_replacing_earlier_ones(tmp_path: Path) -> None:
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in (("a/file", b"first"), ("a/file", b"second")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("a/hard")
        link.type = tarfile.LNKTYPE
        link.linkname = "a/file"
        archive.addfile(link)
        escape = tarfile.TarInfo("b")
        escape.type = tarfile.LNKTYPE
        escape.linkname = "../outside"
        archive.addfile(escape)
    (tmp_path / "layer.tar").write_bytes(buffer.getvalue())
    (tmp_path / "fs").mkdir()
    with pytest.raises(LayerFormatError, match="climbs out"):
        unpack_layer(tmp_path / "layer.tar", tmp_path / "fs")
    assert (tmp_path / "fs/a/file").read_bytes() == b"second"
    assert os.stat(tmp_path / "fs/a/hard").st_ino == os.stat(tmp_path / "fs/a/file").st_ino
