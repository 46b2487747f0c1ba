"""User and group names resolved against the container's own /etc/passwd and /etc/group, as runc's
libcontainer/user does for dockerd (pure: takes the files' text)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from shoal.executor.errors import InvalidTaskSpec


@dataclass(frozen=True)
class ContainerUser:
    uid: int
    gid: int
    additional_gids: tuple[int, ...]
    home: str


def _entries(text: str) -> list[list[str]]:
    return [line.split(":") for line in text.splitlines() if line and not line.startswith("#")]


def resolve(spec: str, passwd: str, group: str, extra_groups: tuple[str, ...] = ()) -> ContainerUser:
    """`user`, `uid`, `user:group`, `uid:gid`; empty means root. Numeric ids need no entry."""
    users = _entries(passwd)
    groups = _entries(group)
    user_part, _, group_part = (spec or "0").partition(":")
    entry = next((u for u in users if len(u) >= 7 and (u[0] == user_part or u[2] == user_part)), None)
    if entry is None and not user_part.isdigit():
        raise InvalidTaskSpec(f"unable to find user {user_part}: no matching entries in passwd file")
    uid = int(entry[2]) if entry else int(user_part)
    gid = int(entry[3]) if entry else 0
    home = entry[5] if entry else "/"
    if group_part:
        gid = _group_id(group_part, groups)
    additional: list[int] = []
    if entry is not None and not group_part:
        additional = [int(g[2]) for g in groups if len(g) >= 4 and entry[0] in g[3].split(",")]
    additional += [_group_id(g, groups) for g in extra_groups]
    return ContainerUser(uid, gid, tuple(dict.fromkeys(g for g in additional if g != gid)), home)


def _group_id(name: str, groups: list[list[str]]) -> int:
    for g in groups:
        if len(g) >= 3 and (g[0] == name or g[2] == name):
            return int(g[2])
    if name.isdigit():
        return int(name)
    raise InvalidTaskSpec(f"unable to find group {name}: no matching entries in group file")


def container_user(rootfs: Path, spec: str, extra_groups: tuple[str, ...] = ()) -> ContainerUser:
    """resolve() against the files of a mounted root filesystem (missing files: numeric ids only)."""

    def read(name: str) -> str:
        try:
            return (rootfs / "etc" / name).read_text()
        except OSError:
            return ""

    return resolve(spec, read("passwd"), read("group"), extra_groups)
