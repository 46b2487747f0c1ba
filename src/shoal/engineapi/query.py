"""Query-string parsing with the Docker daemon's rules: Go's strconv.ParseBool, unsigned versions,
filters in both JSON shapes, timestamps as unix seconds or RFC 3339, `tail=all|N`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from shoal.api.errors import InvalidArgument
from shoal.base.clock import parse_rfc3339
from shoal.engineapi.backend import Filters, LogOptions
from shoal.engineapi.gojson import go_decode_message

Query = Mapping[str, str]

_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def parse_go_bool(text: str) -> bool:
    """strconv.ParseBool; raises ValueError with Go's message otherwise."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f'strconv.ParseBool: parsing "{text}": invalid syntax')


def bool_param(query: Query, name: str, default: bool = False) -> bool:
    """A missing or empty parameter is the default; anything ParseBool refuses is a 400."""
    raw = query.get(name, "")
    if raw == "":
        return default
    try:
        return parse_go_bool(raw)
    except ValueError as err:
        raise InvalidArgument(f"invalid value for {name}: {err}") from None


def _parse_uint(raw: str) -> int:
    if not raw.isascii() or not raw.isdigit():
        raise ValueError(f'strconv.ParseUint: parsing "{raw}": invalid syntax')
    value = int(raw)
    if value >= 1 << 64:
        raise ValueError(f'strconv.ParseUint: parsing "{raw}": value out of range')
    return value


def version_param(query: Query, kind: str) -> int:
    """`?version=` of an update; `kind` names the object as moby's message does (`service`, `node`...)."""
    raw = query.get("version", "")
    try:
        return _parse_uint(raw)
    except ValueError as err:
        raise InvalidArgument(f"invalid {kind} version '{raw}': {err}") from None


def int_param(query: Query, name: str, default: int | None = None) -> int | None:
    raw = query.get(name, "")
    if raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise InvalidArgument(f'strconv.Atoi: parsing "{raw}": invalid syntax') from None


def parse_filters(raw: str) -> Filters:
    """moby's filters.FromJSON: `{"k":{"v":true}}` (CLI) or `{"k":["v"]}` (docker-py, older CLIs)."""
    if raw == "":
        return {}
    try:
        decoded = json.loads(raw)
    except json.JSONDecodeError as err:
        raise InvalidArgument(go_decode_message(err)) from None
    if decoded is None:
        return {}
    if not isinstance(decoded, dict):
        raise InvalidArgument("json: cannot unmarshal into filters.Args: filters must be an object")
    filters: Filters = {}
    for key, values in decoded.items():
        if isinstance(values, dict):
            filters[key] = [value for value, enabled in values.items() if enabled is True]
        elif isinstance(values, list) and all(isinstance(v, str) for v in values):
            filters[key] = list(values)
        else:
            raise InvalidArgument(f"invalid filter value for '{key}'")
    return filters


def filters_param(query: Query) -> Filters:
    return parse_filters(query.get("filters", ""))


def parse_timestamp(raw: str) -> datetime:
    """`1700000000`, `1700000000.123456789` (what the CLI sends) or RFC 3339."""
    seconds, dot, fraction = raw.partition(".")
    if seconds.lstrip("-").isdigit() and (not dot or fraction.isdigit()):
        micros = int((fraction + "000000")[:6]) if dot else 0
        return datetime.fromtimestamp(int(seconds), UTC) + timedelta(microseconds=micros)
    try:
        return parse_rfc3339(raw)
    except ValueError:
        raise InvalidArgument(f"failed to parse value as time or duration: {raw!r}") from None


def time_param(query: Query, name: str) -> datetime | None:
    raw = query.get(name, "")
    if raw in ("", "0"):
        return None
    return parse_timestamp(raw)


def tail_param(query: Query) -> int | None:
    """`all` (or missing, or negative) is every line; otherwise the last N lines."""
    raw = query.get("tail", "all")
    if raw in ("", "all"):
        return None
    try:
        count = int(raw)
    except ValueError:
        raise InvalidArgument(f'invalid value for "tail": {raw!r}') from None
    return None if count < 0 else count


def log_options(query: Query) -> LogOptions:
    options = LogOptions(
        follow=bool_param(query, "follow"),
        tail=tail_param(query),
        since=time_param(query, "since"),
        until=time_param(query, "until"),
        timestamps=bool_param(query, "timestamps"),
        stdout=bool_param(query, "stdout"),
        stderr=bool_param(query, "stderr"),
        details=bool_param(query, "details"),
    )
    if not (options.stdout or options.stderr):
        raise InvalidArgument("Bad parameters: you must choose at least one stream")
    return options
