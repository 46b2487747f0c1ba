"""sha256 digests as OCI writes them (sha256:<64 hex>)."""

from __future__ import annotations

import hashlib
import re

from shoal.api.errors import InvalidArgument

_SHA256 = re.compile(r"^sha256:[0-9a-f]{64}$")


def sha256_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def check(digest: str) -> str:
    """The hex part of a sha256 digest; anything else is refused so it can never become a path."""
    if not _SHA256.match(digest):
        raise InvalidArgument("invalid checksum digest format")
    return digest[len("sha256:"):]
