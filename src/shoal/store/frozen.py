"""Read-only dicts and lists for what the store hands out.

Views and watch events share the stored objects instead of copying them on every read (reading all
tasks is the hot path of every planner pass), so the objects themselves refuse changes: a caller that
mutates what it read gets a TypeError instead of silently changing the store. They are still dict and
list (json encodes them, isinstance and equality work); `clone()` or `dict(obj)` gives a mutable copy.

Objects are frozen once, as the committed payload is decoded (see changes.decode_changes)."""

from __future__ import annotations

from typing import Any, NoReturn

from shoal.api.objects import clone, plain_copy

_MESSAGE = "objects read from the store are shared and read-only: clone() one to change it"


def _refuse(*_args: Any, **_kwargs: Any) -> NoReturn:
    raise TypeError(_MESSAGE)


class FrozenDict(dict[str, Any]):
    __slots__ = ()
    __setitem__ = __delitem__ = __ior__ = _refuse
    setdefault = pop = popitem = clear = update = _refuse

    def __copy__(self) -> dict[str, Any]:
        return dict(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        return clone(self)

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, (dict(self),))


class FrozenList(list[Any]):
    __slots__ = ()
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse
    append = extend = insert = pop = remove = clear = sort = reverse = _refuse

    def __copy__(self) -> list[Any]:
        return list(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> list[Any]:
        copied: list[Any] = plain_copy(self)
        return copied

    def __reduce__(self) -> tuple[Any, ...]:
        return (list, (list(self),))


def freeze(value: Any) -> Any:
    """A read-only deep copy of a JSON-shaped value (frozen parts are shared, not copied)."""
    if type(value) is dict:
        return FrozenDict({key: freeze(item) for key, item in value.items()})
    if type(value) is list:
        return FrozenList([freeze(item) for item in value])
    return value


def freezing_object_hook(obj: dict[str, Any]) -> FrozenDict:
    """json.loads object_hook that freezes while decoding (the hook sees inner objects first, so only
    the lists, which json has no hook for, need a pass of their own)."""
    for key, item in obj.items():
        if type(item) is list:
            obj[key] = _freeze_list(item)
    return FrozenDict(obj)


def _freeze_list(items: list[Any]) -> FrozenList:
    return FrozenList([_freeze_list(item) if type(item) is list else item for item in items])
