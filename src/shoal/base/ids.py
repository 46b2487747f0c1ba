"""Identifiers shaped like Swarm's: 25 base-36 characters for cluster objects, 64 hex for containers."""

from __future__ import annotations

import secrets

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
ID_LENGTH = 25


def new_id() -> str:
    """A random 25-character base-36 id, as swarmkit's identity.NewID gives (128 random bits)."""
    value = secrets.randbits(128)
    chars = []
    for _ in range(ID_LENGTH):
        value, digit = divmod(value, 36)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))


def new_container_id() -> str:
    return secrets.token_hex(32)


def new_secret(nbytes: int = 32) -> bytes:
    return secrets.token_bytes(nbytes)
