"""Validation against the compose specification's JSON schema, read from an installed package (Debian's
docker-compose ships it as compose/config/compose_spec.json), with errors worded as the docker CLI words
them: the dotted field then gojsonschema's description ("services.web Additional property foo is not
allowed", "services.web.healthcheck.interval Does not match format 'duration'")."""

from __future__ import annotations

import copy
import functools
import ipaddress
import json
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jsonschema

from shoal.api.errors import FailedPrecondition, InvalidArgument
from shoal.compose.ports import parse_port_spec
from shoal.compose.units import is_go_duration

SCHEMA_ENV = "SHOAL_COMPOSE_SCHEMA"
PACKAGED_PATH = Path("compose", "config", "compose_spec.json")
DEBIAN_DIST_PACKAGES = Path("/usr/lib/python3/dist-packages")


def schema_path() -> Path:
    """$SHOAL_COMPOSE_SCHEMA, else the docker-compose package's file on this interpreter's path or Debian's."""
    override = os.environ.get(SCHEMA_ENV)
    if override:
        if not Path(override).is_file():
            raise FailedPrecondition(f"{SCHEMA_ENV} names {override}, which is not a file")
        return Path(override)
    for root in [*(Path(entry) for entry in sys.path if entry), DEBIAN_DIST_PACKAGES]:
        candidate = root / PACKAGED_PATH
        if candidate.is_file():
            return candidate
    raise FailedPrecondition("the compose specification's JSON schema was not found: install Debian's "
                             f"docker-compose package (it ships {PACKAGED_PATH}) or set {SCHEMA_ENV}")


@functools.cache
def load_schema(path: Path) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(path.read_text())
    return _with_cli_additions(schema)


def _with_cli_additions(schema: dict[str, Any]) -> dict[str, Any]:
    """The keys the docker CLI's own 3.13 schema accepts that the packaged (2021) specification predates:
    deploy.resources.limits.pids, healthcheck.start_interval and cgroupns_mode (ignored with a warning)."""
    schema = copy.deepcopy(schema)
    definitions = schema["definitions"]
    limits = definitions["deployment"]["properties"]["resources"]["properties"]["limits"]
    limits["properties"].setdefault("pids", {"type": "integer"})
    healthcheck = definitions["healthcheck"]["properties"]
    healthcheck.setdefault("start_interval", {"type": "string", "format": "duration"})
    definitions["service"]["properties"].setdefault("cgroupns_mode", {"type": "string"})
    return schema


_FORMATS = jsonschema.FormatChecker(formats=())


def _duration(value: object) -> bool:
    return not isinstance(value, str) or is_go_duration(value)


def _ports(value: object) -> bool:
    try:
        parse_port_spec(str(value))
    except InvalidArgument:
        return False
    return True


def _subnet(value: object) -> bool:
    try:
        ipaddress.ip_network(str(value), strict=False)
    except ValueError:
        return False
    return True


def _expose(value: object) -> bool:
    return True


for _name, _check in (("duration", _duration), ("ports", _ports), ("subnet_ip_address", _subnet),
                      ("expose", _expose)):
    _FORMATS.checks(_name)(_check)


def validate(config: dict[str, Any], path: Path | None = None) -> None:
    schema = load_schema(path or schema_path())
    validator_class = jsonschema.validators.validator_for(schema, default=jsonschema.Draft201909Validator)
    validator = validator_class(schema, format_checker=_FORMATS)
    errors = list(validator.iter_errors(config))
    if errors:
        raise InvalidArgument(_most_specific(errors))


def _field(error: jsonschema.ValidationError) -> str:
    return ".".join(str(part) for part in error.absolute_path) or "(root)"


def _flatten(errors: Iterable[jsonschema.ValidationError]) -> list[jsonschema.ValidationError]:
    """Each error followed by the errors of the oneOf/anyOf branch that came closest (gojsonschema keeps
    only the best branch's errors, right after the oneOf error itself)."""
    flat: list[jsonschema.ValidationError] = []
    for error in errors:
        flat.append(error)
        if error.validator in ("oneOf", "anyOf") and error.context:
            branches: dict[Any, list[jsonschema.ValidationError]] = {}
            for child in error.context:
                branches.setdefault(child.relative_schema_path[0], []).append(child)
            best = min(branches.values(), key=lambda errs: (
                any(e.validator == "type" and not e.relative_path for e in errs), len(errs)))
            flat.extend(_flatten(best))
    return flat


def _most_specific(errors: list[jsonschema.ValidationError]) -> str:
    flat = _flatten(errors)
    chosen = 0
    for index, error in enumerate(flat):
        depth, best = len(_field(error).split(".")), len(_field(flat[chosen]).split("."))
        if depth > best or (depth == best and error.validator == "type" and flat[chosen].validator != "type"):
            chosen = index
    error = flat[chosen]
    description = _describe(error)
    if error.validator in ("oneOf", "anyOf") and chosen + 1 < len(flat):
        description = _describe(flat[chosen + 1])
    return f"{_field(error)} {description}"


def _human_type(expected: Any) -> str:
    if isinstance(expected, list):
        names = [_human_type(item) for item in expected]
        return f"{', '.join(names[:-1])} or {names[-1]}"
    return {"object": "mapping", "array": "list"}.get(str(expected), str(expected))


def _describe(error: jsonschema.ValidationError) -> str:
    kind = error.validator
    value: Any = error.validator_value
    schema: Any = error.schema
    if kind == "additionalProperties" and isinstance(error.instance, dict):
        known = set(schema.get("properties") or {})
        patterns = list(schema.get("patternProperties") or {})
        extra = sorted(key for key in error.instance
                       if key not in known and not any(re.search(p, key) for p in patterns))
        return f"Additional property {extra[0] if extra else '?'} is not allowed"
    if kind == "type":
        return f"must be a {_human_type(value)}"
    if kind == "format":
        return f"Does not match format '{value}'"
    if kind == "enum":
        return "must be one of the following: " + ", ".join(json.dumps(v) for v in value)
    if kind == "required":
        instance: Any = error.instance
        missing = [name for name in value if name not in (instance or {})]
        return f"{missing[0] if missing else '?'} is required"
    if kind == "oneOf":
        return "Must validate one and only one schema (oneOf)"
    if kind == "anyOf":
        return "Must validate at least one schema (anyOf)"
    if kind == "uniqueItems":
        return "array items must be unique"
    return str(error.message)
