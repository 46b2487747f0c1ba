"""What an executor needs to run an image: its id, its config, and its unpacked layers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ResolvedImage:
    """An image present in the store, ready to be mounted.

    `id` is the sha256 digest of the config blob (Docker's image id). `config` is the image config
    JSON as stored (its "config" section holds Entrypoint, Cmd, Env, WorkingDir, User, ExposedPorts,
    StopSignal, Healthcheck). `layers` are unpacked snapshot directories, lowest first, usable as
    overlayfs lowerdirs: whiteouts are already in overlayfs form (a 0/0 char device for a deleted
    file, the trusted.overlay.opaque=y xattr on an opaque directory). The directories are shared with
    other images and must be treated as read-only.
    """

    id: str
    config: dict[str, Any]
    layers: list[Path] = field(default_factory=list)
    # The reference the caller asked for, normalised (e.g. docker.io/library/busybox:latest), and the
    # manifest digest the store holds for it: what `docker inspect` shows as Image and RepoDigests.
    reference: str = ""
    manifest_digest: str = ""

    @property
    def container_config(self) -> dict[str, Any]:
        """The image's run defaults (the config's "config" section), empty when the image has none."""
        section = self.config.get("config")
        return dict(section) if isinstance(section, dict) else {}
