"""Registry credentials as the Engine API carries them (X-Registry-Auth: base64url JSON) and the
WWW-Authenticate challenges registries answer with."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shoal.api.errors import InvalidArgument


@dataclass(frozen=True)
class Credentials:
    username: str = ""
    password: str = ""
    identity_token: str = ""  # a refresh token from `docker login` against a token server
    registry_token: str = ""  # a bearer token to send as is

    @property
    def empty(self) -> bool:
        return not (self.username or self.password or self.identity_token or self.registry_token)


ANONYMOUS = Credentials()


def decode_registry_auth(header: str | None) -> Credentials:
    """Decode X-Registry-Auth. Docker accepts padded and unpadded base64url; an empty header or `{}`
    means anonymous."""
    if not header:
        return ANONYMOUS
    text = header.strip()
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        body = json.loads(raw) if raw.strip() else {}
    except (binascii.Error, ValueError) as exc:
        raise InvalidArgument("invalid X-Registry-Auth header: bad base64 or JSON") from exc
    if not isinstance(body, dict):
        raise InvalidArgument("invalid X-Registry-Auth header: not a JSON object")
    return Credentials(
        username=str(body.get("username") or ""),
        password=str(body.get("password") or ""),
        identity_token=str(body.get("identitytoken") or ""),
        registry_token=str(body.get("registrytoken") or ""),
    )


Auth = Credentials | Mapping[str, Any] | str | None


def credentials_from(auth: Auth) -> Credentials:
    """Credentials however a caller holds them: already parsed, the X-Registry-Auth JSON as a dict
    (a service's registry auth, as the oci executor passes it), the header's base64 text, or none."""
    if auth is None:
        return ANONYMOUS
    if isinstance(auth, Credentials):
        return auth
    if isinstance(auth, str):
        return decode_registry_auth(auth)
    return Credentials(
        username=str(auth.get("username") or ""),
        password=str(auth.get("password") or ""),
        identity_token=str(auth.get("identitytoken") or ""),
        registry_token=str(auth.get("registrytoken") or ""),
    )


def encode_registry_auth(creds: Credentials, server: str = "") -> str:
    body = {"username": creds.username, "password": creds.password, "serveraddress": server}
    if creds.identity_token:
        body["identitytoken"] = creds.identity_token
    return base64.urlsafe_b64encode(json.dumps(body).encode()).decode()


def basic_authorization(creds: Credentials) -> str:
    token = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
    return f"Basic {token}"


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "bearer" or "basic"
    params: dict[str, str]


_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


def parse_challenge(header: str) -> Challenge:
    scheme, _, rest = header.strip().partition(" ")
    params = {m[1].lower(): (m[2] if m[2] is not None else m[3]) for m in _PARAM.finditer(rest)}
    return Challenge(scheme.lower(), params)
