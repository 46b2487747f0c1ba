"""ContainerSpec.User → uid, gid, supplementary groups and home, as Docker resolves it:
`name`, `uid`, `name:group`, `uid:gid` (numeric ids need not exist in /etc/passwd)."""

from __future__ import annotations

import grp
import os
import pwd
from dataclasses import dataclass

from shoal.executor.errors import InvalidTaskSpec


@dataclass(frozen=True)
class Identity:
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str


def current_identity() -> Identity:
    try:
        home = pwd.getpwuid(os.getuid()).pw_dir
    except KeyError:
        home = "/"
    return Identity(os.getuid(), os.getgid(), tuple(os.getgroups()), home)


def resolve_user(spec: str | None) -> Identity | None:
    """None for an empty spec (run as the daemon's own user). Raises InvalidTaskSpec if unknown."""
    if not spec:
        return None
    user_part, _, group_part = spec.partition(":")
    entry: pwd.struct_passwd | None
    if user_part.isdigit():
        uid = int(user_part)
        try:
            entry = pwd.getpwuid(uid)
        except KeyError:
            entry = None
    else:
        try:
            entry = pwd.getpwnam(user_part)
        except KeyError:
            raise InvalidTaskSpec(f"unable to find user {user_part}: no matching entries in passwd file") from None
        uid = entry.pw_uid
    gid = entry.pw_gid if entry else 0
    if group_part:
        gid = _resolve_group(group_part)
    groups: tuple[int, ...] = (gid,)
    if entry is not None and not group_part:
        groups = tuple(sorted({gid, *(g.gr_gid for g in grp.getgrall() if entry.pw_name in g.gr_mem)}))
    return Identity(uid, gid, groups, entry.pw_dir if entry else "/")


def _resolve_group(name: str) -> int:
    if name.isdigit():
        return int(name)
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        raise InvalidTaskSpec(f"unable to find group {name}: no matching entries in group file") from None


def with_groups(identity: Identity | None, groups: tuple[str, ...]) -> Identity | None:
    """The identity plus supplementary groups (--group, by name or gid), as Docker adds them."""
    if not groups:
        return identity
    base = identity or current_identity()
    extra = tuple(_resolve_group(g) for g in groups)
    return Identity(base.uid, base.gid, tuple(dict.fromkeys((*base.groups, *extra))), base.home)
