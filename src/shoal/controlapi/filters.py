"""List filters, with swarmkit's meanings: `id` and `name` are prefixes, `label` is `k` or `k=v`.
Unknown filter keys are refused as dockerd does (`Invalid filter 'bogus'`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from shoal.api import errors
from shoal.api.objects import Obj

Filters = Mapping[str, list[str]]


def check_keys(filters: Filters, allowed: Iterable[str]) -> None:
    allowed_set = set(allowed)
    for key in filters:
        if key not in allowed_set:
            raise errors.InvalidArgument(f"Invalid filter '{key}'")


def any_prefix(values: list[str] | None, actual: str) -> bool:
    return not values or any(actual.startswith(v) for v in values)


def any_exact(values: list[str] | None, actual: str) -> bool:
    return not values or actual in values


def labels_match(values: list[str] | None, labels: Mapping[str, str] | None) -> bool:
    """Every `k` or `k=v` given must hold (dockerd ANDs label filters)."""
    labels = labels or {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if key not in labels or (sep and labels[key] != value):
            return False
    return True


def keep(objects: Iterable[Obj], *tests: Callable[[Obj], bool]) -> list[Obj]:
    return [obj for obj in objects if all(test(obj) for test in tests)]
