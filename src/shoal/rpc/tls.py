"""TLS contexts for the cluster port (TLS 1.2 or newer, certificates from the cluster CA)."""

from __future__ import annotations

import ssl
from pathlib import Path


def server_context(cert: Path, key: Path, ca: Path, password: bytes | None = None) -> ssl.SSLContext:
    """Listener context: asks for a client certificate but lets a peer in without one (a joining node
    has none yet); each route checks the identity itself. A client certificate that is presented but
    does not chain to ``ca`` fails the handshake."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key, password=password)  # the key file is encrypted under autolock
    ctx.load_verify_locations(cafile=ca)
    ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


def client_context(cert: Path | None, key: Path | None, ca: Path, password: bytes | None = None) -> ssl.SSLContext:
    """Dialer context: presents our certificate (if we have one yet) and requires the peer's to chain
    to ``ca``. Peers are dialled by address, and a node's certificate names its node id rather than its
    address, so the hostname is not checked; the role is checked after the handshake instead."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    if cert is not None and key is not None:
        ctx.load_cert_chain(cert, key, password=password)
    ctx.load_verify_locations(cafile=ca)
    return ctx


def unverified_client_context() -> ssl.SSLContext:
    """For a joining node's first call only: it fetches the root CA certificate before it can verify
    anything, then checks that certificate against the digest in its join token."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def pinned_root_context(root_pem: bytes) -> ssl.SSLContext:
    """A joining node's context once it has pinned the root CA (by the join token's digest): verifies
    the manager against that root and presents no certificate, since it has none yet."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cadata=root_pem.decode())
    return ctx
