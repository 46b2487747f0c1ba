"""The shapes compose files allow for one value (a mapping or a "K=V" list, a string or a list), read
into one form, with scalars printed the way Go's fmt prints them ("true", not "True")."""

from __future__ import annotations

import shlex
from typing import Any


def go_str(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return str(value)


def mapping(value: Any, separator: str = "=", allow_nil: bool = False) -> dict[str, str | None]:
    """{"A": 1} or ["A=1", "B"] to {"A": "1", "B": None or ""}."""
    if not value:
        return {}
    if isinstance(value, dict):
        return {str(k): (None if v is None and allow_nil else go_str(v)) for k, v in value.items()}
    result: dict[str, str | None] = {}
    for item in value:
        key, found, rest = go_str(item).partition(separator)
        result[key] = rest if found else (None if allow_nil else "")
    return result


def string_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [go_str(item) for item in value]


def command(value: Any) -> list[str] | None:
    """command/entrypoint: a string is split as a shell would (no shell is run), a list kept."""
    if value is None:
        return None
    if isinstance(value, str):
        return shlex.split(value)
    return [go_str(item) for item in value]
