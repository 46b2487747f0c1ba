"""Finds the task supervisor shim, compiling shim.c with the system C compiler on first use.

The binary is cached under a name carrying the source's hash, so an upgraded shim.c gets a fresh
build while tasks started by the old one keep running it. Without a compiler the Python shim
(pyshim.py: same protocol, ~10 MB per task instead of ~1 MB) is used, with a warning.
SHOAL_SHIM overrides: a path to a prebuilt binary (`cc -O2 -static -o shoal-shim shim.c` on another
machine), or `python` to force the Python shim."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import shutil
import sys
from importlib import resources
from pathlib import Path

from shoal.executor.errors import ExecutorError

SHIM_ENV = "SHOAL_SHIM"
log = logging.getLogger(__name__)


class ShimUnavailable(ExecutorError):
    pass


def shim_source() -> bytes:
    return resources.files("shoal.executor.process").joinpath("shim.c").read_bytes()


BUILD_VERSION = b"static-first-1"  # part of the cache key: a change of build flags rebuilds


def shim_binary_name(source: bytes) -> str:
    return f"shoal-shim-{hashlib.sha256(source + BUILD_VERSION).hexdigest()[:16]}"


def find_compiler() -> str | None:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and (path := shutil.which(name)):
            return path
    return None


def python_shim() -> list[str]:
    """The command line of the Python shim: no site packages, nothing of shoal imported."""
    path = resources.files("shoal.executor.process").joinpath("pyshim.py")
    return [sys.executable, "-S", "-E", str(path)]


async def ensure_shim(cache_dir: Path) -> list[str]:
    """The command prefix of a runnable shim: $SHOAL_SHIM, a cached build, a new build into
    cache_dir, or the Python shim when no compiler is found."""
    override = os.environ.get(SHIM_ENV)
    if override == "python":
        return python_shim()
    if override:
        if not os.access(override, os.X_OK):
            raise ShimUnavailable(f"{SHIM_ENV}={override} is not an executable file")
        return [override]
    source = shim_source()
    target = cache_dir / shim_binary_name(source)
    if os.access(target, os.X_OK):
        return [str(target)]
    compiler = find_compiler()
    if compiler is None:
        log.warning(
            "process executor: no C compiler (install gcc) — tasks are held by the Python shim, "
            "~10 MB each instead of ~1 MB; or set %s to a shim built elsewhere",
            SHIM_ENV,
        )
        return python_shim()
    cache_dir.mkdir(parents=True, exist_ok=True)
    src_path = cache_dir / f".{target.name}.{os.getpid()}.c"
    tmp_bin = cache_dir / f".{target.name}.{os.getpid()}.tmp"
    src_path.write_bytes(source)
    try:
        # static first: no dynamic loader and libc mappings per task, so about half the RSS
        output = ""
        for flags in (["-O2", "-static"], ["-O2"]):
            proc = await asyncio.create_subprocess_exec(
                compiler, *flags, "-o", str(tmp_bin), str(src_path),
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
            output = (await proc.communicate())[0].decode(errors="replace")
            if proc.returncode == 0:
                break
        else:
            raise ShimUnavailable(f"building the task supervisor failed: {output}")
        os.replace(tmp_bin, target)  # atomic: concurrent builders all end with a whole binary
    finally:
        src_path.unlink(missing_ok=True)
        tmp_bin.unlink(missing_ok=True)
    return [str(target)]
