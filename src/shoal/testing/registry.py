"""Debian's docker-registry (distribution 2.8) started on loopback for tests: open, basic auth
(htpasswd with bcrypt), bearer-token auth (pointed at testing.token_service) and TLS from a test CA.
Several registries can serve one storage directory, so images pushed once to an open registry are
pulled through the authenticated ones."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import shutil
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REGISTRY_BINARY = "docker-registry"


def available() -> str | None:
    """None when the registry can run here, else why not (for pytest's skip reason)."""
    if shutil.which(REGISTRY_BINARY) is None:
        return "needs Debian's docker-registry package (distribution)"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _libcrypt() -> ctypes.CDLL:
    name = ctypes.util.find_library("crypt")
    if name is None:
        raise RuntimeError("bcrypt for htpasswd needs libcrypt (libxcrypt)")
    lib = ctypes.CDLL(name)
    lib.crypt_gensalt.restype = ctypes.c_char_p
    lib.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int]
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    return lib


def bcrypt_htpasswd(users: dict[str, str]) -> str:
    """htpasswd lines with bcrypt hashes (the only kind distribution accepts), from the system's
    libxcrypt: no Python dependency, and Python's own crypt module is gone in 3.13."""
    lib = _libcrypt()
    lines = []
    for name, password in users.items():
        salt = lib.crypt_gensalt(b"$2b$", 4, None, 0)  # cost 4: fast; tests need no strength
        hashed = lib.crypt(password.encode(), salt) if salt else None
        if not hashed or not hashed.startswith(b"$2b$"):
            raise RuntimeError("libcrypt could not make a bcrypt hash")
        lines.append(f"{name}:{hashed.decode()}")
    return "\n".join(lines) + "\n"


@dataclass
class TokenAuth:
    realm: str
    service: str
    issuer: str
    root_bundle: Path


@dataclass
class TLSFiles:
    cert: Path
    key: Path


class Registry:
    def __init__(self, workdir: Path, storage: Path, *, htpasswd: dict[str, str] | None = None,
                 token: TokenAuth | None = None, tls: TLSFiles | None = None, access_log: bool = False) -> None:
        self.workdir = workdir
        self.storage = storage
        self.htpasswd = htpasswd
        self.token = token
        self.tls = tls
        self.access_log = access_log
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}"

    def config(self) -> str:
        lines = [
            "version: 0.1",
            "log:",
            "  level: error",
            "  accesslog:",
            f"    disabled: {'false' if self.access_log else 'true'}",
            "storage:",
            "  filesystem:",
            f"    rootdirectory: {self.storage}",
            "  delete:",
            "    enabled: true",
            "  maintenance:",
            "    uploadpurging:",
            "      enabled: false",
            "http:",
            f"  addr: {self.host}",
            "  secret: shoal-test-secret",
        ]
        if self.tls:
            lines += ["  tls:", f"    certificate: {self.tls.cert}", f"    key: {self.tls.key}"]
        if self.htpasswd is not None:
            path = self.workdir / "htpasswd"
            path.write_text(bcrypt_htpasswd(self.htpasswd))
            lines += ["auth:", "  htpasswd:", "    realm: shoal-test", f"    path: {path}"]
        elif self.token is not None:
            lines += ["auth:", "  token:", f"    realm: {self.token.realm}", f"    service: {self.token.service}",
                      f"    issuer: {self.token.issuer}", f"    rootcertbundle: {self.token.root_bundle}"]
        return "\n".join(lines) + "\n"

    def start(self, timeout: float = 20.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.storage.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "config.yml"
        config.write_text(self.config())
        log = open(self.workdir / "registry.log", "wb")  # noqa: SIM115 - kept open for the child's life
        self.process = subprocess.Popen([REGISTRY_BINARY, "serve", str(config)], stdout=log, stderr=log)
        log.close()
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {(self.workdir / 'registry.log').read_text()}")
            try:
                urllib.request.urlopen(f"{self.base_url}/v2/", timeout=2, context=context)
                return
            except urllib.error.HTTPError:
                return  # 401: up, and asking for credentials
            except (urllib.error.URLError, OSError):
                time.sleep(0.05)
        raise RuntimeError(f"docker-registry on {self.host} not ready after {timeout}s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(10)
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()

    def blob_requests(self, digest: str) -> int:
        """How many times the blob was fetched (GET) from this registry, from its access log."""
        log = (self.workdir / "registry.log").read_text(errors="replace")
        return sum(1 for line in log.splitlines() if '"GET /v2/' in line and f"/blobs/{digest} " in line)

    def blob_path(self, digest: str) -> Path:
        """Where distribution's filesystem driver keeps a blob, so a test can corrupt it."""
        hexpart = digest.removeprefix("sha256:")
        return self.storage / "docker/registry/v2/blobs/sha256" / hexpart[:2] / hexpart / "data"
