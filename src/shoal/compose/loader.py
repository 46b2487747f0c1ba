"""Compose files read as `docker stack deploy -c` reads them: YAML, version check, forbidden keys, variable
interpolation (the environment over the working directory's .env), schema validation, then the files
merged. Everything is checked here, before anything is sent to the daemon."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml

from shoal.api.errors import InvalidArgument
from shoal.compose import schema
from shoal.compose.envfile import parse_dotenv
from shoal.compose.interpolate import interpolate
from shoal.compose.merge import merge_files
from shoal.compose.values import go_str

DEFAULT_VERSION = "3.13"
SUPPORTED_VERSIONS = {f"3.{minor}" for minor in range(14)} | {"3"}

# The CLI's lists: keys Swarm ignores (warned), deprecated ones (warned) and forbidden ones (refused).
UNSUPPORTED = ("build", "cgroupns_mode", "cgroup_parent", "devices", "domainname", "external_links", "ipc",
               "links", "mac_address", "network_mode", "pid", "privileged", "restart", "security_opt",
               "shm_size", "userns_mode")
DEPRECATED = {
    "container_name": "Setting the container name is not supported.",
    "expose": "Exposing ports is unnecessary - services on the same network can access each other's "
              "containers on any port.",
}
FORBIDDEN = {
    "extends": "Support for `extends` is not implemented yet.",
    "volume_driver": "Instead of setting the volume driver on the service, define a volume using the top-level "
                     "`volumes` option and specify the driver there.",
    "volumes_from": "To share a volume between services, define it using the top-level `volumes` option and "
                    "reference it from each service that shares it using the service-level `volumes` option.",
    "cpu_quota": "Set resource limits using deploy.resources",
    "cpu_shares": "Set resource limits using deploy.resources",
    "cpuset": "Set resource limits using deploy.resources",
    "mem_limit": "Set resource limits using deploy.resources",
    "memswap_limit": "Set resource limits using deploy.resources",
}
# docker/distribution's reference grammar, enough to refuse what the CLI refuses.
_REFERENCE = re.compile(
    r"^(?:(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
    r"(?::[0-9]+)?)/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[\w][\w.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$")


def reference_problem(image: str) -> str | None:
    """What docker/distribution's ParseAnyReference says of an image reference, None when it parses."""
    if _REFERENCE.match(image):
        return None
    name = re.split(r"[@]", image, maxsplit=1)[0]
    name = name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name
    first, slash, rest = name.partition("/")
    has_domain = bool(slash) and (any(c in first for c in ".:") or first == "localhost" or first.lower() != first)
    path = rest if has_domain else name
    lowered = image.replace(path, path.lower(), 1)
    if path.lower() != path and _REFERENCE.match(lowered):
        familiar = path if has_domain or "/" in path else f"library/{path}"
        return f"invalid reference format: repository name ({familiar}) must be lowercase"
    return "invalid reference format"


@dataclass
class Compose:
    """A loaded stack: the merged configuration and what loading it has to say on stderr."""

    config: dict[str, Any]
    working_dir: Path
    environ: dict[str, str]
    warnings: list[str] = field(default_factory=list)

    @property
    def services(self) -> dict[str, dict[str, Any]]:
        return dict(self.config.get("services") or {})


def _string_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {go_str(k): _string_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_string_keys(item) for item in value]
    return value


class _Yaml12Loader(yaml.SafeLoader):
    """YAML 1.2's booleans (true/false only), as the CLI's Go YAML library reads them: `A: yes` or `B: off`
    stays a string (PyYAML's YAML 1.1 would make them booleans)."""


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                    list("tTfF"))


def parse_yaml(text: str) -> dict[str, Any]:
    try:
        document = yaml.load(text, Loader=_Yaml12Loader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise InvalidArgument(f"yaml: {where}{getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(document, dict):
        raise InvalidArgument("top-level object must be a mapping")
    result: dict[str, Any] = _string_keys(document)
    return result


def version_of(config: dict[str, Any]) -> str:
    version = go_str(config.get("version", ""))
    return DEFAULT_VERSION if version in ("", "3") else version


def _services_with(configs: list[dict[str, Any]], keys: Mapping[str, str] | tuple[str, ...]) -> list[str]:
    found = {key for config in configs for service in (config.get("services") or {}).values()
             if isinstance(service, dict) for key in keys if key in service}
    return sorted(found)


def _read(name: str, stdin: IO[str] | None) -> str:
    if name == "-":
        return stdin.read() if stdin is not None else ""
    try:
        return Path(name).read_text()
    except FileNotFoundError:
        raise InvalidArgument(f"open {name}: no such file or directory") from None
    except IsADirectoryError:
        raise InvalidArgument(f"read {name}: is a directory") from None


def load(files: list[str], environ: Mapping[str, str] | None = None, stdin: IO[str] | None = None,
         schema_file: Path | None = None) -> Compose:
    if not files:
        raise InvalidArgument("specify a Compose file (with --compose-file)")
    working_dir = Path.cwd() if files == ["-"] else Path(os.path.abspath(files[0])).parent
    lookup = {**parse_dotenv(working_dir / ".env"), **(os.environ if environ is None else environ)}
    raw = [parse_yaml(_read(name, stdin)) for name in files]
    version = version_of(raw[0])
    loaded = []
    for config in raw:
        if version_of(config) != version:
            raise InvalidArgument(f"version mismatched between two composefiles : {version} and "
                                  f"{version_of(config)}")
        if version not in SUPPORTED_VERSIONS:
            raise InvalidArgument(f"unsupported Compose file version: {version}")
        forbidden = _services_with([config], tuple(FORBIDDEN))
        if forbidden:
            lines = "\n\n".join(sorted(f"{key}: {FORBIDDEN[key]}" for key in forbidden))
            raise InvalidArgument(f"Compose file contains unsupported options:\n\n{lines}\n")
        config = interpolate(config, lookup)
        schema.validate(config, schema_file)
        loaded.append(config)
    compose = Compose(merge_files(loaded), working_dir, dict(lookup))
    unsupported = _services_with(raw, UNSUPPORTED)
    if unsupported:
        compose.warnings.append(f"Ignoring unsupported options: {', '.join(unsupported)}\n")
    deprecated = _services_with(raw, tuple(DEPRECATED))
    if deprecated:
        lines = "\n\n".join(sorted(f"{key}: {DEPRECATED[key]}" for key in deprecated))
        compose.warnings.append(f"Ignoring deprecated options:\n\n{lines}\n")
    for name, service in sorted(compose.services.items()):
        image = (service or {}).get("image")
        if not image:
            raise InvalidArgument(f"invalid image reference for service {name}: no image specified")
        problem = reference_problem(str(image))
        if problem:
            raise InvalidArgument(f"invalid image reference for service {name}: {problem}")
    return compose
