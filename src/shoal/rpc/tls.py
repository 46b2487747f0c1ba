"""TLS contexts for the cluster port (TLS 1.2 or newer, certificates from the cluster CA).

A node's certificate changes while it runs (renewal, a role change, a root rotation), and its
sessions must not drop for it: ``reload`` makes every context built from a node's files use them as
they are now, for new connections only. A listener switches each new handshake to a freshly built
context (so a trust root that is gone stops being trusted at once); a dialer's context is also
replaced (``current``, for callers that ask) and, for those that keep theirs, re-loaded in place
(its new certificate and trust root added; in-place contexts cannot forget the old root)."""

from __future__ import annotations

import ssl
import weakref
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class _Files:
    """Contexts built from one node's files, and the freshest ones (built from them as they are now)."""

    key: Path
    ca: Path
    password: bytes | None
    fresh_server: ssl.SSLContext | None = None
    fresh_client: ssl.SSLContext | None = None
    clients: weakref.WeakSet[ssl.SSLContext] = field(default_factory=weakref.WeakSet)


_by_cert: dict[Path, _Files] = {}
_client_files: weakref.WeakKeyDictionary[ssl.SSLContext, _Files] = weakref.WeakKeyDictionary()


def _files(cert: Path, key: Path, ca: Path, password: bytes | None) -> _Files:
    found = _by_cert.get(cert.resolve())
    if found is None or (found.key, found.ca) != (key, ca):
        found = _by_cert[cert.resolve()] = _Files(key, ca, password)
    return found


def _build_server(cert: Path, key: Path, ca: Path, password: bytes | None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key, password=password)  # the key file is encrypted under autolock
    ctx.load_verify_locations(cafile=ca)
    ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


def server_context(cert: Path, key: Path, ca: Path, password: bytes | None = None) -> ssl.SSLContext:
    """Listener context: asks for a client certificate but lets a peer in without one (a joining node
    has none yet); each route checks the identity itself. A client certificate that is presented but
    does not chain to ``ca`` fails the handshake. After a ``reload`` of ``cert``, each new handshake
    runs on a context built from the files as they were then."""
    ctx = _build_server(cert, key, ca, password)
    files = _files(cert, key, ca, password)
    files.fresh_server = ctx  # built from the files as they are now: the freshest there is

    def use_fresh(ssl_object: ssl.SSLObject, _server_name: str | None, _ctx: ssl.SSLContext) -> None:
        # Called for every handshake (with or without SNI), before the certificates are exchanged.
        if files.fresh_server is not None:
            ssl_object.context = files.fresh_server

    ctx.sni_callback = use_fresh
    return ctx


def _build_client(cert: Path | None, key: Path | None, ca: Path, password: bytes | None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    if cert is not None and key is not None:
        ctx.load_cert_chain(cert, key, password=password)
    ctx.load_verify_locations(cafile=ca)
    return ctx


def client_context(cert: Path | None, key: Path | None, ca: Path, password: bytes | None = None) -> ssl.SSLContext:
    """Dialer context: presents our certificate (if we have one yet) and requires the peer's to chain
    to ``ca``. Peers are dialled by address, and a node's certificate names its node id rather than its
    address, so the hostname is not checked; the role is checked after the handshake instead."""
    ctx = _build_client(cert, key, ca, password)
    if cert is not None and key is not None:
        files = _files(cert, key, ca, password)
        files.clients.add(ctx)
        files.fresh_client = ctx
        _client_files[ctx] = files
    return ctx


def current(ctx: ssl.SSLContext) -> ssl.SSLContext:
    """The context to dial with now in place of ``ctx``: the one built at the last reload of the
    files ``ctx`` came from, or ``ctx`` itself."""
    files = _client_files.get(ctx)
    if files is None or files.fresh_client is None:
        return ctx
    return files.fresh_client


def reload(cert: Path, password: bytes | None) -> int:
    """The node's certificate files changed (``password`` opens its key now): new handshakes of every
    context built from them use the new files. Returns how many dialer contexts were re-loaded in
    place. Raises (ssl.SSLError, OSError) if the files do not load, leaving every context as it was."""
    files = _by_cert.get(cert.resolve())
    if files is None:
        return 0
    fresh_server = _build_server(cert, files.key, files.ca, password)
    fresh_client = _build_client(cert, files.key, files.ca, password)
    files.password = password
    files.fresh_server, files.fresh_client = fresh_server, fresh_client
    reloaded = 0
    for ctx in list(files.clients):
        ctx.load_cert_chain(cert, files.key, password=password)
        ctx.load_verify_locations(cafile=files.ca)
        reloaded += 1
    return reloaded


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
