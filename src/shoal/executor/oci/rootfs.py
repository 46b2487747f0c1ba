"""A minimal root filesystem from Debian's busybox-static: /bin/busybox, a link per applet, and the
/etc files a container expects. The tests' images and the seed's web image are built on it."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from shoal.images.resolved import ResolvedImage

BUSYBOX = Path("/bin/busybox")
_ETC = {
    "passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    "group": "root:x:0:\nnogroup:x:65534:\n",
}


def busybox_missing_reason(busybox: Path = BUSYBOX) -> str | None:
    if not busybox.exists():
        return f"{busybox} missing (apt-get install busybox-static)"
    if b"libc.so" in busybox.read_bytes()[:65536]:
        return f"{busybox} is dynamically linked (install busybox-static)"
    return None


def build_busybox_rootfs(dest: Path, busybox: Path = BUSYBOX) -> Path:
    """Fill `dest` with busybox and its applet links (idempotent); returns `dest`."""
    bin_dir = dest / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    target = bin_dir / "busybox"
    if not target.exists():
        shutil.copy2(busybox, target)
    applets = subprocess.run([str(busybox), "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        link = bin_dir / applet
        if applet != "busybox" and not os.path.lexists(link):
            link.symlink_to("busybox")
    for name in ("etc", "tmp", "root", "proc", "sys", "dev", "var/www", "usr/bin", "sbin"):
        (dest / name).mkdir(parents=True, exist_ok=True)
    (dest / "tmp").chmod(0o1777)
    for name, text in _ETC.items():
        path = dest / "etc" / name
        if not path.exists():
            path.write_text(text)
    return dest


def directory_image(
    rootfs: Path,
    *,
    cmd: Sequence[str] = ("sh",),
    entrypoint: Sequence[str] = (),
    env: Sequence[str] = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",),
    extra: Mapping[str, Any] | None = None,
) -> ResolvedImage:
    """An image whose one layer is `rootfs` (config as an image's: Cmd, Entrypoint, Env, ...)."""
    config: dict[str, Any] = {"Cmd": list(cmd), "Env": list(env)}
    if entrypoint:
        config["Entrypoint"] = list(entrypoint)
    config.update(extra or {})
    digest = "sha256:" + os.urandom(32).hex()
    return ResolvedImage(id=digest, config={"architecture": "amd64", "os": "linux", "config": config},
                         layers=[rootfs])
