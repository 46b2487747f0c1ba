"""Service volumes to Engine API mounts: the short syntax ("SRC:DST[:OPTS]") parsed as the CLI's
ParseVolume does, and bind, volume and tmpfs mounts converted as its convertVolumeToMount does."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from shoal.api.errors import InvalidArgument
from shoal.compose.units import ram_in_bytes
from shoal.compose.values import mapping

PROPAGATIONS = ("rprivate", "private", "rshared", "shared", "rslave", "slave")


def _is_file_path(source: str) -> bool:
    return source[:1] in (".", "/", "~")


def parse_volume(spec: str) -> dict[str, Any]:
    """The short syntax to the long one."""
    if not spec:
        raise InvalidArgument("invalid empty volume spec")
    if len(spec) <= 2:
        return {"type": "volume", "target": spec}
    parts = spec.split(":")
    if any(part == "" for part in parts):
        raise InvalidArgument(f"invalid spec: {spec}: empty section between colons")
    if len(parts) > 3:
        raise InvalidArgument(f"invalid spec: {spec}: too many colons")
    volume: dict[str, Any] = {}
    if len(parts) == 1:
        volume["target"] = parts[0]
    else:
        volume["source"], volume["target"] = parts[0], parts[1]
    if len(parts) == 3:
        for option in parts[2].split(","):
            if option in ("ro", "rw"):
                volume["read_only"] = option == "ro"
            elif option == "nocopy":
                volume["volume"] = {"nocopy": True}
            elif option in PROPAGATIONS:
                volume["bind"] = {"propagation": option}
    source = volume.get("source", "")
    volume["type"] = "bind" if source and _is_file_path(source) else "volume"
    return volume


def _base_mount(volume: dict[str, Any]) -> dict[str, Any]:
    mount: dict[str, Any] = {"Type": volume.get("type") or "volume", "Target": volume.get("target", "")}
    if volume.get("source"):
        mount["Source"] = volume["source"]
    if volume.get("read_only"):
        mount["ReadOnly"] = True
    if volume.get("consistency"):
        mount["Consistency"] = volume["consistency"]
    return mount


def _refuse_options(volume: dict[str, Any], kind: str, allowed: str) -> None:
    for option in ("bind", "volume", "tmpfs"):
        if option != allowed and volume.get(option) is not None:
            raise InvalidArgument(f"{option} options are incompatible with type {kind}")


def convert_volume(volume: dict[str, Any], stack_volumes: dict[str, Any], namespace: str,
                   working_dir: Path, home: str | None) -> dict[str, Any]:
    kind = volume.get("type") or "volume"
    source = str(volume.get("source") or "")
    if kind == "volume":
        _refuse_options(volume, kind, "volume")
        mount = _base_mount(volume)
        if not source:
            return mount
        if source not in stack_volumes:
            raise InvalidArgument(f'undefined volume "{source}"')
        declared = stack_volumes[source] or {}
        options: dict[str, Any] = {}
        if (volume.get("volume") or {}).get("nocopy"):
            options["NoCopy"] = True
        if (volume.get("volume") or {}).get("subpath"):
            options["Subpath"] = volume["volume"]["subpath"]
        external = declared.get("external")
        mount["Source"] = declared.get("name") or (source if external else f"{namespace}_{source}")
        if not external:
            options["Labels"] = {**_labels(declared.get("labels")), "com.docker.stack.namespace": namespace}
            if declared.get("driver") or declared.get("driver_opts") is not None:
                driver: dict[str, Any] = {"Name": declared.get("driver") or ""}
                if declared.get("driver_opts") is not None:
                    driver["Options"] = {k: str(v) for k, v in declared["driver_opts"].items()}
                options["DriverConfig"] = driver
        mount["VolumeOptions"] = options
        return mount
    if kind == "bind":
        if not source:
            raise InvalidArgument('invalid mount config for type "bind": field Source must not be empty')
        _refuse_options(volume, kind, "bind")
        if source.startswith("~") and home:
            source = source.replace("~", home, 1)
        # filepath.Join cleans the path ("./a/../b" -> "<dir>/b"), and so does normpath.
        mount = _base_mount({**volume, "source": os.path.normpath(os.path.join(working_dir, source))})
        if volume.get("bind") is not None:
            mount["BindOptions"] = {"Propagation": volume["bind"].get("propagation", "")}
        return mount
    if kind == "tmpfs":
        if source:
            raise InvalidArgument("invalid tmpfs source, source must be empty")
        _refuse_options(volume, kind, "tmpfs")
        mount = _base_mount(volume)
        if volume.get("tmpfs") is not None:
            mount["TmpfsOptions"] = {"SizeBytes": ram_in_bytes(volume["tmpfs"].get("size") or 0)}
        return mount
    raise InvalidArgument("volume type must be volume, bind, tmpfs, npipe, or cluster")


def _labels(value: Any) -> dict[str, str]:
    return {k: v or "" for k, v in mapping(value).items()}
