"""Variable interpolation as the docker CLI does it before validation: $VAR, ${VAR}, ${VAR:-default},
${VAR-default}, ${VAR:?error}, ${VAR?error} and $$ for a literal dollar. Values that the schema wants as
numbers or booleans are cast after substitution, at the same paths as the CLI."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from shoal.api.errors import InvalidArgument

_SUBST = r"[_a-z][_a-z0-9]*(?::?[-?][^}]*)?"
# A bare $NAME is a name alone (a default or an error needs braces), so "$A-b" is A's value then "-b".
_PATTERN = re.compile(rf"\$(?:(?P<escaped>\$)|(?P<named>[_a-z][_a-z0-9]*)|{{(?P<braced>{_SUBST})}}|(?P<invalid>))",
                      re.IGNORECASE)


class TemplateError(Exception):
    """What the CLI quotes after "invalid interpolation format for PATH: ": the whole template when it
    does not parse, or "required variable X is missing a value: ERR"."""


def _go_quote(text: str) -> str:
    """Go's %#v of a string: a double-quoted literal."""
    return json.dumps(text, ensure_ascii=False)


def substitute(template: str, lookup: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        substitution = match.group("named") or match.group("braced")
        if not substitution:
            raise TemplateError(template)
        return _resolve(substitution, lookup)

    return _PATTERN.sub(replace, template)


_OPERATOR = re.compile(r"([_a-z][_a-z0-9]*)(:-|-|:\?|\?)?(.*)", re.IGNORECASE | re.DOTALL)


def _resolve(substitution: str, lookup: Mapping[str, str]) -> str:
    # The operator is read right after the name, so "${A:?must-be-set}" is a required A (the CLI's own
    # matcher tries "-" first and would read it as a default).
    match = _OPERATOR.fullmatch(substitution)
    assert match is not None, "the pattern only yields names with an optional operator"
    name, operator, rest = match.groups()
    value = lookup.get(name)
    if operator == ":-":
        return value if value else rest
    if operator == "-":
        return rest if value is None else value
    if operator in (":?", "?") and (value is None or (operator == ":?" and value == "")):
        raise TemplateError(f"required variable {name} is missing a value: {rest}")
    return value or ""


def _to_int(text: str) -> Any:
    return int(text)


def _to_float(text: str) -> Any:
    return float(text)


def _to_bool(text: str) -> Any:
    lowered = text.lower()
    if lowered in ("y", "yes", "true", "on"):
        return True
    if lowered in ("n", "no", "false", "off"):
        return False
    raise ValueError(f"invalid boolean: {text}")


_SERVICE_CASTS: dict[str, Callable[[str], Any]] = {
    "configs.[].mode": _to_int, "secrets.[].mode": _to_int, "healthcheck.retries": _to_int,
    "healthcheck.disable": _to_bool, "deploy.replicas": _to_int, "deploy.update_config.parallelism": _to_int,
    "deploy.update_config.max_failure_ratio": _to_float, "deploy.rollback_config.parallelism": _to_int,
    "deploy.rollback_config.max_failure_ratio": _to_float, "deploy.restart_policy.max_attempts": _to_int,
    "deploy.placement.max_replicas_per_node": _to_int, "ports.[].target": _to_int, "ports.[].published": _to_int,
    "ulimits.*": _to_int, "ulimits.*.hard": _to_int, "ulimits.*.soft": _to_int, "privileged": _to_bool,
    "oom_score_adj": _to_int, "read_only": _to_bool, "stdin_open": _to_bool, "tty": _to_bool,
    "volumes.[].read_only": _to_bool, "volumes.[].volume.nocopy": _to_bool,
}
CASTS: dict[tuple[str, ...], Callable[[str], Any]] = {
    **{("services", "*", *path.split(".")): cast for path, cast in _SERVICE_CASTS.items()},
    **{(section, "*", "external"): _to_bool for section in ("networks", "volumes", "secrets", "configs")},
    ("networks", "*", "internal"): _to_bool, ("networks", "*", "attachable"): _to_bool,
}


def _cast_for(path: tuple[str, ...]) -> Callable[[str], Any] | None:
    for pattern, cast in CASTS.items():
        if len(pattern) == len(path) and all(p in ("*", part) for p, part in zip(pattern, path, strict=True)):
            return cast
    return None


def interpolate(config: Any, lookup: Mapping[str, str], path: tuple[str, ...] = ()) -> Any:
    """A copy of `config` with every string substituted; errors name the dotted path as the CLI does."""
    if isinstance(config, str):
        dotted = ".".join(path)
        try:
            value = substitute(config, lookup)
        except TemplateError as exc:
            raise InvalidArgument(f"invalid interpolation format for {dotted}: {_go_quote(str(exc))}; "
                                  "you may need to escape any $ with another $") from None
        if value == config:
            return config
        cast = _cast_for(path)
        if cast is None:
            return value
        try:
            return cast(value)
        except ValueError as exc:
            raise InvalidArgument(f"error while interpolating {dotted}: failed to cast to expected type: "
                                  f"{exc}") from None
    if isinstance(config, dict):
        return {key: interpolate(value, lookup, (*path, str(key))) for key, value in config.items()}
    if isinstance(config, list):
        return [interpolate(item, lookup, (*path, "[]")) for item in config]
    return config
