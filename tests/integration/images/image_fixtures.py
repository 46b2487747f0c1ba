"""Shapes shared by the image integration tests and their conftest."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from shoal.images.auth import Credentials
from shoal.testing.oci_images import Image
from shoal.testing.registry import Registry
from shoal.testing.registry_pki import RegistryCA
from shoal.testing.token_service import TokenService

USER, PASSWORD = "alice", "s3cret-pw"
GOOD = Credentials(USER, PASSWORD)
WRONG = Credentials(USER, "not-it")


@dataclass
class Images:
    base_layer_digest: str
    app_v1: Image
    app_v2: Image
    multi_amd64: Image
    multi_arm64: Image
    multi_index: str
    corrupt: Image
    truncated: Image
    big: Image
    bad_manifest: Image
    mixed: Image


@dataclass
class Registries:
    open: Registry
    basic: Registry
    token: Registry
    tls: Registry
    tokens: TokenService
    ca: RegistryCA
    certs_dir: Path
    images: Images



def store_files(root: Path) -> dict[str, set[str]]:
    """What the store holds on disk: blobs, snapshots, partial writes."""
    return {
        "blobs": {p.name for p in (root / "blobs/sha256").iterdir()},
        "snapshots": {p.name for p in (root / "snapshots").iterdir()},
        "ingest": {p.name for p in (root / "ingest").iterdir()},
        "staging": {p.name for p in (root / "snapshots.tmp").iterdir()},
    }
