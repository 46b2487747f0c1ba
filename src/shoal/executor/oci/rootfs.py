"""A minimal root filesystem from Debian's busybox-static: /bin/busybox, a link per applet, and the
/etc files a container expects. The tests' images and the seed's web image are built on it.

`python3 -m shoal.executor.oci.rootfs web OUT.tar` writes the seed's web image as a `docker import`
archive (busybox httpd; a CGI page answers with the task's hostname, so replicas can be told apart)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
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


WEB_COMMAND = ("httpd", "-f", "-v", "-p", "80", "-h", "/var/www")
_CGI = """#!/bin/sh
printf 'Content-Type: text/plain\\r\\n\\r\\n'
echo "hello from $(hostname)"
"""


def build_web_rootfs(dest: Path, busybox: Path = BUSYBOX) -> Path:
    """busybox plus a web root whose index is a CGI page printing the serving task's hostname (busybox
    httpd runs /cgi-bin/index.cgi for a directory without index.html)."""
    build_busybox_rootfs(dest, busybox)
    cgi = dest / "var" / "www" / "cgi-bin" / "index.cgi"
    cgi.parent.mkdir(parents=True, exist_ok=True)
    cgi.write_text(_CGI)
    cgi.chmod(0o755)
    return dest


def web_image(rootfs: Path) -> ResolvedImage:
    return directory_image(rootfs, cmd=WEB_COMMAND, extra={"ExposedPorts": {"80/tcp": {}}})


def write_archive(rootfs: Path, out: Path) -> Path:
    """A tar of the root filesystem, for `docker import --change 'CMD [...]'`."""
    with tarfile.open(out, "w") as tar:
        for entry in sorted(rootfs.iterdir()):
            tar.add(entry, arcname=entry.name)
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] != "web":
        print("usage: python3 -m shoal.executor.oci.rootfs web OUT.tar", file=sys.stderr)
        return 2
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        write_archive(build_web_rootfs(Path(tmp) / "rootfs"), Path(argv[2]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
