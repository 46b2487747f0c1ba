"""env_file and .env files: KEY=VALUE lines, # comments, a bare KEY taken from the environment (the CLI's
ParseEnvFile); the .env file used for interpolation also drops quotes around a value."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from shoal.api.errors import InvalidArgument


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InvalidArgument(f"open {path}: no such file or directory") from None
    except UnicodeDecodeError:
        raise InvalidArgument(f"env file {path} contains invalid utf8 bytes") from None


def parse_env_file(path: Path, environ: Mapping[str, str]) -> dict[str, str | None]:
    """A service's env_file: a name without "=" takes the environment's value, or stays unset (None)."""
    result: dict[str, str | None] = {}
    for raw in _read(path).splitlines():
        line = raw.lstrip()
        if not line or line.startswith("#"):
            continue
        name, equals, value = line.partition("=")
        if any(ch.isspace() for ch in name):
            raise InvalidArgument(f"variable '{name}' contains whitespaces")
        if not name:
            raise InvalidArgument(f"no variable name on line '{line}'")
        result[name] = value if equals else environ.get(name)
    return result


def parse_dotenv(path: Path) -> dict[str, str]:
    """The working directory's .env for interpolation (absent: empty)."""
    if not path.is_file():
        return {}
    values: dict[str, str] = {}
    for name, value in parse_env_file(path, {}).items():
        if value is None:
            continue
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[name] = value
    return values
