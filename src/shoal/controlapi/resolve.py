"""Turning what a client typed (full id, name, unique id prefix) into one object, as dockerd does:
exact id first, then exact name, then a unique id prefix."""

from __future__ import annotations

from collections.abc import Callable

from shoal.api import errors
from shoal.api.objects import Obj
from shoal.store.memory import ReadView


def resolve(view: ReadView, table: str, ref: str, kind: str, name_of: Callable[[Obj], str]) -> Obj:
    if not ref:
        raise errors.NotFound(f"{kind} {ref} not found")
    exact = view.get(table, ref)
    if exact is not None:
        return exact
    objects = view.objects(table)
    named = [obj for obj in objects if name_of(obj) == ref]
    if len(named) == 1:
        return named[0]
    if len(named) > 1:
        raise errors.InvalidArgument(f"{kind} {ref} is ambiguous ({len(named)} matches found)")
    prefixed = [obj for obj in objects if obj["ID"].startswith(ref)]
    if len(prefixed) == 1:
        return prefixed[0]
    if len(prefixed) > 1:
        raise errors.InvalidArgument(f"{kind} {ref} is ambiguous ({len(prefixed)} matches found)")
    raise errors.NotFound(f"{kind} {ref} not found")
