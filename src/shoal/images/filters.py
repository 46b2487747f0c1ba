"""Image list and prune filters, as dockerd accepts them (dangling, reference, label, before, since,
until); anything else is refused before anything is done."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from typing import Any

from shoal.api.errors import InvalidArgument

Filters = Mapping[str, Sequence[str] | Mapping[str, bool]]
LIST_FILTERS = {"dangling", "reference", "label", "before", "since"}
PRUNE_FILTERS = {"dangling", "label", "label!", "until"}


def normalise(filters: Filters | None, allowed: set[str]) -> dict[str, list[str]]:
    """Docker sends {"key": {"value": true}} (or a list in old clients): flatten to lists."""
    result: dict[str, list[str]] = {}
    for key, values in (filters or {}).items():
        if key not in allowed:
            raise InvalidArgument(f"invalid filter '{key}'")
        result[key] = [k for k, on in values.items() if on] if isinstance(values, Mapping) else list(values)
    return result


def dangling_wanted(filters: dict[str, list[str]]) -> bool | None:
    values = filters.get("dangling")
    if not values:
        return None
    value = values[0].lower()
    if value not in ("true", "false", "1", "0"):
        raise InvalidArgument(f"invalid filter 'dangling={values[0]}'")
    return value in ("true", "1")


def labels_match(wanted: list[str], labels: Mapping[str, Any] | None) -> bool:
    labels = labels or {}
    for item in wanted:
        key, sep, value = item.partition("=")
        if key not in labels or (sep and str(labels[key]) != value):
            return False
    return True


def reference_matches(patterns: list[str], familiar_names: list[str]) -> bool:
    """`reference=busybox` matches busybox:latest; `reference=busy*:1.*` matches by repo and tag."""
    for pattern in patterns:
        for name in familiar_names:
            repo = name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name
            if fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(repo, pattern):
                return True
    return False
