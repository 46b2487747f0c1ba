"""Join tokens and unlock keys in Swarm's formats.

`SWMTKN-1-<D>-<S>`: D is the SHA-256 of the root CA certificate bundle as a base-36 number padded to
50 characters (a joining node pins the CA by it); S is 16 random bytes in base 36, padded to 25."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from shoal.api import errors

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def _base36(value: int, width: int) -> str:
    chars = []
    while value:
        value, digit = divmod(value, 36)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars)).rjust(width, "0")


def ca_digest(root_cert_pem: bytes) -> str:
    return _base36(int.from_bytes(hashlib.sha256(root_cert_pem).digest(), "big"), 50)


def generate_join_token(root_cert_pem: bytes) -> str:
    secret = _base36(int.from_bytes(secrets.token_bytes(16), "big"), 25)
    return f"SWMTKN-1-{ca_digest(root_cert_pem)}-{secret}"


@dataclass(frozen=True)
class ParsedToken:
    version: int
    ca_digest: str
    secret: str


def parse_join_token(token: str) -> ParsedToken:
    parts = token.split("-")
    well_formed = len(parts) == 4 and parts[:2] == ["SWMTKN", "1"]
    if not well_formed or len(parts[2]) != 50 or len(parts[3]) != 25:
        raise errors.InvalidArgument("invalid join token")
    return ParsedToken(1, parts[2], parts[3])


def token_matches(candidate: str, expected: str) -> bool:
    return hmac.compare_digest(candidate.encode(), expected.encode())


def generate_unlock_key() -> str:
    """`SWMKEY-1-` + 32 random bytes, base64 without padding (as swarmkit's encryption.HumanReadableKey)."""
    raw = base64.b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    return f"SWMKEY-1-{raw}"
