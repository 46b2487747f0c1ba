"""Docker's default seccomp profile, read from the installed file (Debian's
golang-github-containers-common ships it as /usr/share/containers/seccomp.json) and turned into the
OCI runtime form for this architecture and the container's capabilities, as dockerd does."""

from __future__ import annotations

import json
import platform
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

PROFILE = Path("/usr/share/containers/seccomp.json")
# platform.machine() → the profile's arch names (Go's GOARCH)
_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}


def _kernel_at_least(minimum: str, release: str) -> bool:
    def parts(text: str) -> tuple[int, ...]:
        return tuple(int("".join(ch for ch in p if ch.isdigit()) or 0) for p in text.split("-")[0].split(".")[:2])

    return parts(release) >= parts(minimum)


def oci_seccomp(
    profile: Mapping[str, Any], capabilities: Iterable[str], *, machine: str | None = None, kernel: str | None = None
) -> dict[str, Any]:
    """The profile's rules that apply here: an entry is kept when its includes (caps, arches,
    minKernel) all hold and its excludes do not."""
    arch = _GOARCH.get(machine or platform.machine(), machine or platform.machine())
    release = kernel or platform.release()
    caps = set(capabilities)
    architectures: list[str] = []
    for entry in profile.get("archMap") or ():
        if entry.get("architecture", "").lower().endswith(_scmp_suffix(arch)):
            architectures = [entry["architecture"], *entry.get("subArchitectures", [])]
    syscalls = []
    for rule in profile.get("syscalls") or ():
        inc, exc = rule.get("includes") or {}, rule.get("excludes") or {}
        if inc.get("arches") and arch not in inc["arches"]:
            continue
        if inc.get("caps") and not set(inc["caps"]) <= caps:
            continue
        if inc.get("minKernel") and not _kernel_at_least(inc["minKernel"], release):
            continue
        if exc.get("arches") and arch in exc["arches"]:
            continue
        if exc.get("caps") and set(exc["caps"]) & caps:
            continue
        out: dict[str, Any] = {"names": list(rule.get("names") or [rule.get("name")]), "action": rule["action"]}
        if rule.get("args"):
            out["args"] = [{k: a[k] for k in ("index", "value", "valueTwo", "op") if k in a} for a in rule["args"]]
        if rule.get("errnoRet") is not None:
            out["errnoRet"] = rule["errnoRet"]
        syscalls.append(out)
    result: dict[str, Any] = {"defaultAction": profile["defaultAction"], "architectures": architectures,
                              "syscalls": syscalls}
    if profile.get("defaultErrnoRet") is not None:
        result["defaultErrnoRet"] = profile["defaultErrnoRet"]
    return result


def _scmp_suffix(arch: str) -> str:
    return {"amd64": "x86_64", "arm64": "aarch64", "arm": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}.get(arch, arch)


def load_profile(path: Path = PROFILE) -> dict[str, Any] | None:
    """The installed profile, or None when the package is missing."""
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data
