"""`docker import --change` and `docker commit --change`: the Dockerfile instructions that only set
image config (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR)."""

from __future__ import annotations

import json
import shlex
from typing import Any

from shoal.api.errors import InvalidArgument

ALLOWED = {"CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "ONBUILD", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"}


def _command(argument: str) -> list[str]:
    """JSON (exec) form as is; anything else is shell form, run by /bin/sh -c."""
    if argument.startswith("["):
        try:
            value = json.loads(argument)
        except ValueError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    return ["/bin/sh", "-c", argument]


def _pairs(argument: str, instruction: str) -> list[tuple[str, str]]:
    words = shlex.split(argument)
    if words and "=" not in words[0]:
        # Legacy form: ENV KEY value with spaces
        key, _, value = argument.partition(" ")
        return [(key, value.strip())]
    pairs = []
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise InvalidArgument(f"{instruction} names can not be blank" if not key else
                                  f"Syntax error - can't find = in {word!r}. Must be of the form: name=value")
        pairs.append((key, value))
    return pairs


def apply_changes(config: dict[str, Any], changes: list[str]) -> dict[str, Any]:
    """A copy of the image's run config with the changes applied, or Docker's refusal."""
    result = dict(config)
    for change in changes:
        instruction, _, argument = change.strip().partition(" ")
        name = instruction.upper()
        argument = argument.strip()
        if name not in ALLOWED:
            raise InvalidArgument(f"{instruction} is not a valid change command")
        if name in ("CMD", "ENTRYPOINT"):
            result["Cmd" if name == "CMD" else "Entrypoint"] = _command(argument)
        elif name == "ENV":
            env = [e for e in result.get("Env") or []]
            for key, value in _pairs(argument, name):
                env = [e for e in env if e.split("=", 1)[0] != key] + [f"{key}={value}"]
            result["Env"] = env
        elif name == "LABEL":
            result["Labels"] = {**(result.get("Labels") or {}), **dict(_pairs(argument, name))}
        elif name == "EXPOSE":
            ports = dict(result.get("ExposedPorts") or {})
            for port in argument.split():
                ports[port if "/" in port else f"{port}/tcp"] = {}
            result["ExposedPorts"] = ports
        elif name == "VOLUME":
            paths = _command(argument) if argument.startswith("[") else argument.split()
            result["Volumes"] = {**(result.get("Volumes") or {}), **{p: {} for p in paths}}
        elif name == "ONBUILD":
            result["OnBuild"] = [*(result.get("OnBuild") or []), argument]
        else:
            result[{"STOPSIGNAL": "StopSignal", "USER": "User", "WORKDIR": "WorkingDir"}[name]] = argument
    return result
