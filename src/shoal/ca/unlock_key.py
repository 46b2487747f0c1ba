"""The swarm's unlock key: `SWMKEY-1-<base64 of 32 random bytes>` (swarmkit's HumanReadableKey), and
the keys derived from it. The unlock key never encrypts anything itself: HKDF turns its random bytes
into one key per purpose (the raft data keys' wrapping, the node TLS key's PEM password), so the two
ciphertexts share nothing."""

from __future__ import annotations

import base64
import binascii
import secrets

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from shoal.api import errors

PREFIX = "SWMKEY-1-"
RAW_KEY_SIZE = 32
_SALT = b"shoal-unlock-key-v1"
PURPOSE_RAFT_DEK = b"raft data key wrapping"
PURPOSE_NODE_TLS_KEY = b"node tls key pem"


def generate_raw_key() -> bytes:
    return secrets.token_bytes(RAW_KEY_SIZE)


def format_unlock_key(raw: bytes) -> str:
    """The form users see (base64 without padding, as Go's RawStdEncoding)."""
    return PREFIX + base64.b64encode(raw).decode().rstrip("=")


def parse_unlock_key(text: str) -> bytes:
    """The key's bytes; a malformed key is refused as swarmkit's ParseHumanReadableKey refuses it.
    A well-formed key of the wrong length is not refused here: it simply fails to unlock."""
    if not isinstance(text, str) or not text.startswith(PREFIX):
        raise errors.InvalidArgument("invalid key string")
    body = text[len(PREFIX):]
    try:
        return base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise errors.InvalidArgument("invalid key string: illegal base64 data") from None


def derive_key(raw: bytes, purpose: bytes) -> bytes:
    """A 32-byte key for one purpose. HKDF (not a password hash) fits: the input is already 256 random
    bits, so there is nothing to stretch."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=purpose).derive(raw)


def tls_key_password(raw: bytes) -> bytes:
    """The PEM password of the node's TLS key under this unlock key (also what ssl needs to load it)."""
    return derive_key(raw, PURPOSE_NODE_TLS_KEY).hex().encode()
