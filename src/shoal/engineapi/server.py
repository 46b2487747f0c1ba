"""Listening: `serve(backend, ["unix:///var/run/shoal.sock", "tcp://0.0.0.0:2375"])`."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import ssl
import stat
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from aiohttp import web

from shoal.api import errors
from shoal.engineapi.app import make_app
from shoal.engineapi.backend import Backend

log = logging.getLogger(__name__)

SOCKET_MODE = 0o660
SHUTDOWN_GRACE_SECONDS = 2.0
"""How long open streams (events, logs --follow, exec) get before they are cancelled on shutdown."""


@dataclass
class Runner:
    """A started Engine API server; `close()` stops listening, ends open streams and removes sockets."""

    app_runner: web.AppRunner
    unix_paths: list[str] = field(default_factory=list)
    tcp_addresses: list[tuple[str, int]] = field(default_factory=list)

    async def close(self) -> None:
        await self.app_runner.cleanup()
        for path in self.unix_paths:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


def _remove_stale_socket(path: str) -> None:
    """A socket file left by a daemon that died; refuse to clobber anything that is not a socket
    or that somebody still answers on."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise FileExistsError(f"{path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        os.unlink(path)
    else:
        raise OSError(f"another daemon is listening on {path}")
    finally:
        probe.close()


def tls_server_context(cert: str, key: str, client_ca: str | None) -> ssl.SSLContext:
    """The TCP listeners' TLS, as dockerd's: the server proves itself with `cert`/`key`; with a
    `client_ca` (--tlsverify) a client must show a certificate that CA signed, and no other root
    is trusted for that. TLS 1.2 at least, as dockerd's tlsconfig.Server."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise errors.InvalidArgument(
            f"invalid TLS configuration: could not load X509 key pair (cert: {cert!r}, key: {key!r}): "
            f"{_reason(exc)}"
        ) from None
    if client_ca is not None:
        try:
            context.load_verify_locations(cafile=client_ca)
        except (OSError, ssl.SSLError) as exc:
            raise errors.InvalidArgument(
                f"invalid TLS configuration: could not read CA certificate {client_ca!r}: {_reason(exc)}"
            ) from None
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def _reason(exc: OSError | ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    return exc.strerror or str(exc)


def _split_tcp(address: str) -> tuple[str, int]:
    parts = urlsplit(address)
    if parts.port is None:
        raise ValueError(f"{address}: a TCP address needs a port")
    return parts.hostname or "0.0.0.0", parts.port


async def serve(
    backend: Backend,
    hosts: list[str],
    *,
    advertise_swarm_status: bool = False,
    tcp_ssl_context: ssl.SSLContext | None = None,
) -> Runner:
    """Start serving on every host (`unix:///path` or `tcp://host:port`); at least one is required.
    `tcp_ssl_context` (as dockerd's --tls/--tlsverify) applies to the TCP listeners."""
    if not hosts:
        raise ValueError("no host to listen on")
    app = make_app(backend, advertise_swarm_status=advertise_swarm_status)
    app_runner = web.AppRunner(
        app,
        handler_cancellation=True,
        shutdown_timeout=SHUTDOWN_GRACE_SECONDS,
        access_log=None,
    )
    await app_runner.setup()
    runner = Runner(app_runner)
    try:
        for host in hosts:
            if host.startswith("unix://"):
                path = host[len("unix://") :]
                _remove_stale_socket(path)
                await web.UnixSite(app_runner, path).start()
                os.chmod(path, SOCKET_MODE)
                runner.unix_paths.append(path)
            elif host.startswith("tcp://"):
                address = _split_tcp(host)
                site = web.TCPSite(app_runner, address[0], address[1], ssl_context=tcp_ssl_context)
                await site.start()
                runner.tcp_addresses.extend(_bound_addresses(site))
            else:
                raise ValueError(f"{host}: unsupported listen address (want unix:// or tcp://)")
            log.info("engine API listening on %s", host)
    except BaseException:
        await runner.close()
        raise
    return runner


def _bound_addresses(site: web.TCPSite) -> list[tuple[str, int]]:
    """The addresses actually bound (port 0 picks a free port, which tests need to know)."""
    server = site._server  # aiohttp keeps the asyncio Server here and offers no public accessor
    if server is None:
        return []
    return [sock.getsockname()[:2] for sock in server.sockets]  # type: ignore[attr-defined]
