"""A client for the OCI distribution API (pull side), on aiohttp: manifests and blobs, bearer-token and
basic auth, HTTPS with the host's CAs (plus certs.d/<host>/ca.crt as dockerd reads them), and plain
HTTP for insecure registries and loopback, as dockerd allows. Transient failures are retried."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from shoal.api.errors import ShoalError
from shoal.images.auth import ANONYMOUS, Challenge, Credentials, basic_authorization, parse_challenge
from shoal.images.errors import ManifestUnknown, RegistryError, RegistryUnauthorized
from shoal.images.manifests import ACCEPT
from shoal.images.reference import Reference

CHUNK = 1 << 16
RETRIES = 3
_RETRY_STATUSES = {408, 429, 500, 502, 503, 504}
_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=15, sock_read=60)


def is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0].strip("[]") if host.count(":") <= 1 or host.startswith("[") else host
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def is_insecure(host: str, insecure: Iterable[str], loopback: bool = True) -> bool:
    """Whether dockerd would talk plain HTTP (or unverified TLS) to `host`: loopback, or named in
    --insecure-registry by host[:port] or by a CIDR holding its address."""
    if loopback and is_loopback(host):
        return True
    name = host.rsplit(":", 1)[0] if ":" in host else host
    for entry in insecure:
        if entry in (host, name):
            return True
        try:
            network = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            continue
        try:
            if ipaddress.ip_address(name) in network:
                return True
        except ValueError:
            try:
                addr = socket.gethostbyname(name)
            except OSError:
                continue
            if ipaddress.ip_address(addr) in network:
                return True
    return False


@dataclass(frozen=True)
class Fetched:
    body: bytes
    media_type: str
    digest: str  # Docker-Content-Digest, when the registry sent one


class RegistryClient:
    """One repository's view of one registry, with its own token cache."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        ref: Reference,
        creds: Credentials = ANONYMOUS,
        *,
        insecure: bool = False,
        certs_dir: Path | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        self.session = session
        self.ref = ref
        self.host = ref.registry_host
        self.creds = creds
        self.insecure = insecure
        self.sleep = sleep
        self._authorization: str | None = None
        self._schemes = ["https", "http"] if insecure else ["https"]
        self._ssl = self._ssl_context(certs_dir)

    def _ssl_context(self, certs_dir: Path | None) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if certs_dir is not None:
            ca = certs_dir / self.host / "ca.crt"
            if ca.exists():
                context.load_verify_locations(cafile=str(ca))
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def url(self, scheme: str, path: str) -> str:
        """`path` inside the repository, or from the registry's root when it starts with /."""
        if path.startswith("/"):
            return f"{scheme}://{self.host}{path}"
        return f"{scheme}://{self.host}/v2/{self.ref.path}/{path}"

    async def _open(self, method: str, path: str, headers: dict[str, str]) -> aiohttp.ClientResponse:
        """One request, authenticated, with the scheme fallback and retries; the caller reads and
        releases the response."""
        last: Exception | None = None
        for attempt in range(RETRIES):
            if attempt:
                await self.sleep(0.2 * 2**attempt)
            for scheme in list(self._schemes):
                url = self.url(scheme, path)
                try:
                    response = await self._send(method, url, headers)
                except aiohttp.ClientConnectorCertificateError as exc:
                    raise RegistryError(f'{method} "{url}": {exc.certificate_error}') from exc  # retrying cannot help
                except (TimeoutError, aiohttp.ClientConnectorError, aiohttp.ServerDisconnectedError,
                        aiohttp.ClientOSError) as exc:
                    last = RegistryError(f'{method} "{url}": {exc}')
                    continue
                if response.status == 401 and await self._authenticate(response):
                    # Answered with a challenge: authenticate (or renew an expired token), resend once.
                    response.release()
                    response = await self._send(method, url, headers)
                if scheme == "http" and len(self._schemes) > 1:
                    self._schemes = ["http"]  # this registry speaks plain HTTP: stop trying TLS first
                elif scheme == "https":
                    self._schemes = ["https"]
                if response.status in _RETRY_STATUSES:
                    last = RegistryError(f'{method} "{url}": {response.status} {response.reason}')
                    response.release()
                    break
                return response
        assert last is not None
        raise last

    async def _send(self, method: str, url: str, headers: dict[str, str]) -> aiohttp.ClientResponse:
        sent = dict(headers)
        if self._authorization:
            sent["Authorization"] = self._authorization
        ssl_arg: ssl.SSLContext | bool = self._ssl if url.startswith("https:") else False
        return await self.session.request(method, url, headers=sent, ssl=ssl_arg, timeout=_TIMEOUT)

    async def _authenticate(self, response: aiohttp.ClientResponse) -> bool:
        header = response.headers.get("WWW-Authenticate", "")
        if not header:
            return False
        challenge = parse_challenge(header)
        if challenge.scheme == "basic":
            if not self.creds.username:
                return False
            self._authorization = basic_authorization(self.creds)
            return True
        if challenge.scheme == "bearer":
            if self.creds.registry_token:
                self._authorization = f"Bearer {self.creds.registry_token}"
                return True
            token = await self._fetch_token(challenge)
            self._authorization = f"Bearer {token}"
            return True
        return False

    async def _fetch_token(self, challenge: Challenge) -> str:
        realm = challenge.params.get("realm", "")
        if not realm:
            raise RegistryError("token auth: the registry's challenge names no realm")
        # A login asks for no repository: a token that proves the credentials is enough.
        params = {"scope": f"repository:{self.ref.path}:pull"} if self.ref.path else {}
        if "service" in challenge.params:
            params["service"] = challenge.params["service"]
        headers = {"Authorization": basic_authorization(self.creds)} if self.creds.username else {}
        if self.creds.identity_token:
            params.update(grant_type="refresh_token", refresh_token=self.creds.identity_token)
        ssl_arg: ssl.SSLContext | bool = self._ssl if realm.startswith("https:") else False
        try:
            async with self.session.get(realm, params=params, headers=headers, ssl=ssl_arg,
                                        timeout=_TIMEOUT) as answer:
                if answer.status in (401, 403):
                    raise RegistryUnauthorized(
                        f'Get "{realm}": unauthorized: incorrect username or password'
                        if self.creds.username else f'Get "{realm}": unauthorized: authentication required'
                    )
                if answer.status != 200:
                    raise RegistryError(f'Get "{realm}": token server answered {answer.status}')
                body = await answer.json(content_type=None)
        except aiohttp.ClientError as exc:
            raise RegistryError(f'Get "{realm}": {exc}') from exc
        token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
        if not token:
            raise RegistryError(f'Get "{realm}": the token server sent no token')
        return str(token)

    async def _error(self, response: aiohttp.ClientResponse, what: str) -> ShoalError:
        """The registry's error body as Docker prints it: `code: message`."""
        try:
            body = await response.json(content_type=None)
            errors = body.get("errors") or []
            detail = "; ".join(f"{e.get('code', '').lower().replace('_', ' ')}: {e.get('message', '')}" for e in errors)
        except (ValueError, AttributeError, aiohttp.ContentTypeError):
            detail = ""
        response.release()
        if response.status == 401:
            if not self.creds.empty:
                # dockerd's form: the request, then the registry's own error code and message.
                request = f'{response.method.capitalize()} "{response.url}"'
                return RegistryUnauthorized(f"{request}: {detail or 'unauthorized: authentication required'}")
            return RegistryUnauthorized(
                f"pull access denied for {self.ref.familiar_repository}, repository does not exist or may "
                f"require 'docker login': denied: requested access to the resource is denied"
            )
        if response.status == 404:
            return ManifestUnknown(f"{what} not found: {detail or 'manifest unknown'}")
        return RegistryError(f"{what}: {response.status} {detail or response.reason}")

    async def login(self) -> None:
        """Check the credentials against the registry's /v2/ (what `docker login` asks dockerd to do)."""
        response = await self._open("GET", "/v2/", {})
        response.release()
        if response.status != 200:
            raise RegistryUnauthorized(
                f"login attempt to {response.url} failed with status: {response.status} {response.reason}")

    async def manifest(self, target: str) -> Fetched:
        """GET a manifest or index by tag or digest."""
        response = await self._open("GET", f"manifests/{target}", {"Accept": ACCEPT})
        if response.status != 200:
            raise await self._error(response, f"manifest for {_familiar(self.ref, target)}")
        try:
            body = await response.read()
        finally:
            response.release()
        return Fetched(body, response.headers.get("Content-Type", "").split(";")[0].strip(),
                       response.headers.get("Docker-Content-Digest", ""))

    async def blob(self, digest: str) -> AsyncIterator[bytes]:
        """Stream a blob's bytes; the caller verifies them (content.ContentStore.ingest)."""
        response = await self._open("GET", f"blobs/{digest}", {})
        if response.status != 200:
            raise await self._error(response, f"blob {digest}")
        try:
            async for chunk in response.content.iter_chunked(CHUNK):
                yield chunk
        except (aiohttp.ClientPayloadError, aiohttp.ClientOSError) as exc:
            raise RegistryError(f"blob {digest}: {exc}") from exc
        finally:
            response.release()


def _familiar(ref: Reference, target: str) -> str:
    familiar = ref.familiar_repository
    return f"{familiar}@{target}" if target.startswith("sha256:") else f"{familiar}:{target}"
