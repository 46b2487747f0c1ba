"""What makes this daemon a member of a swarm, kept under the data root: its node id, the cluster id,
its role, addresses, and its certificates (written 0600 like dockerd's swarm/certificates).

The node's secrets at rest are its TLS key and the raft data keys. With autolock they are encrypted
under keys derived from the swarm's unlock key, and changed together as one set (ca.keystore); without
it they are stored in the clear, so a restart needs nothing."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from shoal.ca import csr, keystore
from shoal.ca.certs import KeyPair
from shoal.ca.unlock_key import PURPOSE_RAFT_DEK, derive_key, tls_key_password
from shoal.manager.wal.crypto import KeyRing
from shoal.manager.wal.keys import DEK_FILE, KekWrapper, KeyWrapper, Unwrapped, WrongUnlockKey, decode_keys, encode_keys
from shoal.manager.wal.storage import RaftPaths
from shoal.node.addresses import member_address


@dataclass(frozen=True)
class NodeIdentity:
    node_id: str
    cluster_id: str
    role: str  # "manager" or "worker": the role of the certificate this node holds
    advertise_addr: str
    listen_addr: str
    raft_id: int  # 0 on a worker
    managers: tuple[str, ...] = ()  # cluster-port addresses of the managers, as last learned

    @property
    def is_manager(self) -> bool:
        return self.role == "manager"

    @property
    def cluster_address(self) -> str:
        """Where the other nodes reach this one's cluster port."""
        return member_address(self.advertise_addr, self.listen_addr)


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def raft_dir(swarm_dir: Path) -> Path:
    return swarm_dir / "raft"


def node_key_path(swarm_dir: Path) -> Path:
    return swarm_dir / "certificates" / "swarm-node.key"


def node_cert_path(swarm_dir: Path) -> Path:
    """The node's certificate file: its leaf, then any intermediate (during a root rotation)."""
    return swarm_dir / "certificates" / "swarm-node.crt"


def pending_cert_path(swarm_dir: Path) -> Path:
    """A new certificate written before its key: it replaces the node's once the key is in place."""
    return swarm_dir / "certificates" / "swarm-node.crt.next"


def root_cert_path(swarm_dir: Path) -> Path:
    return swarm_dir / "certificates" / "swarm-root-ca.crt"


def read_certificates(swarm_dir: Path) -> tuple[bytes, bytes]:
    """(the node's certificate file, the root it trusts)."""
    return node_cert_path(swarm_dir).read_bytes(), root_cert_path(swarm_dir).read_bytes()


def save_root(swarm_dir: Path, root_cert: bytes) -> None:
    """A new trust root (a root rotation finished); the node's certificate stays."""
    _write_private(root_cert_path(swarm_dir), root_cert)
    _fsync_dir(root_cert_path(swarm_dir).parent)


def dek_path(swarm_dir: Path) -> Path:
    return Path(RaftPaths.under(raft_dir(swarm_dir)).keys) / DEK_FILE


class Locked(Exception):
    """The node's secrets do not open without the unlock key (or with the one given)."""


@dataclass(frozen=True)
class NodeSecrets:
    """The node's secrets in the clear, in memory only: what re-wrapping them needs."""

    tls_key_pem: bytes
    data_keys: KeyRing


def _secret_files(swarm_dir: Path, on_step: keystore.StepHook | None = None) -> keystore.SecretFileSet:
    return keystore.SecretFileSet([node_key_path(swarm_dir), dek_path(swarm_dir)], on_step)


def _dek_wrapper(unlock_key: bytes | None) -> KeyWrapper:
    return KekWrapper(derive_key(unlock_key, PURPOSE_RAFT_DEK)) if unlock_key is not None else Unwrapped()


def tls_password(unlock_key: bytes | None) -> bytes | None:
    return tls_key_password(unlock_key) if unlock_key is not None else None


def save_certificates(swarm_dir: Path, root_cert: bytes, node: KeyPair, data_keys: KeyRing | None = None,
                      unlock_key: bytes | None = None) -> None:
    """A new member's (or a renewed) certificate, key and trust root, and a manager's data keys, the
    secrets wrapped under ``unlock_key`` if given. Without ``data_keys`` only the TLS key is written,
    in the clear (a worker, or a new manager whose WAL makes its own keys)."""
    certs = swarm_dir / "certificates"
    certs.mkdir(parents=True, exist_ok=True)
    _write_private(root_cert_path(swarm_dir), root_cert)
    # Certificate and key change as a pair (a renewal replaces both): the certificate waits beside the
    # old one until the key is in place; after a crash, ``_settle_certificate`` keeps whichever
    # certificate matches the key that was found.
    _write_private(pending_cert_path(swarm_dir), node.cert_pem)
    if data_keys is None:
        _write_private(node_key_path(swarm_dir), node.key_pem)
    _fsync_dir(certs)
    if data_keys is not None:
        store_secrets(swarm_dir, NodeSecrets(node.key_pem, data_keys), unlock_key)
    os.replace(pending_cert_path(swarm_dir), node_cert_path(swarm_dir))
    _fsync_dir(certs)


def _settle_certificate(swarm_dir: Path, key_pem: bytes) -> None:
    """Finish or undo a certificate change a crash interrupted, given the key the node has now."""
    pending = pending_cert_path(swarm_dir)
    try:
        new_cert = pending.read_bytes()
    except FileNotFoundError:
        return
    if csr.certificate_matches_key(new_cert, key_pem):
        os.replace(pending, node_cert_path(swarm_dir))
    else:
        pending.unlink()
    _fsync_dir(pending.parent)


def store_secrets(swarm_dir: Path, secrets: NodeSecrets, unlock_key: bytes | None,
                  on_step: keystore.StepHook | None = None) -> None:
    """(Re-)wrap the secrets under ``unlock_key`` (None: in the clear), both files as one change."""
    files = _secret_files(swarm_dir, on_step)
    files.replace({
        node_key_path(swarm_dir): keystore.encrypt_private_key(secrets.tls_key_pem, tls_password(unlock_key)),
        dek_path(swarm_dir): encode_keys(secrets.data_keys, _dek_wrapper(unlock_key)),
    })


def load_secrets(swarm_dir: Path, unlock_key: bytes | None, *, tidy: bool = True) -> NodeSecrets:
    """The secrets, opened with ``unlock_key`` (None: expect them in the clear). Raises ``Locked``
    when that key does not open them. With ``tidy``, what a crash mid-change left behind is cleaned
    up here, under the key that opened the set, so the old wrapping does not linger (only the node
    itself may tidy, and only while nothing else re-wraps: ``tidy=False`` only reads)."""
    files = _secret_files(swarm_dir)
    wrapper = _dek_wrapper(unlock_key)
    password = tls_password(unlock_key)

    def open_one(path: Path, data: bytes) -> bytes | KeyRing:
        if path == node_key_path(swarm_dir):
            return keystore.decrypt_private_key(data, password)
        try:
            return decode_keys(data, wrapper, str(path))
        except WrongUnlockKey as exc:
            raise keystore.WrongKey(str(exc)) from None

    try:
        opened = files.open_all(open_one)
    except keystore.WrongKey as exc:
        raise Locked(str(exc)) from None
    tls_key, data_keys = opened[node_key_path(swarm_dir)], opened[dek_path(swarm_dir)]
    assert isinstance(tls_key, bytes) and isinstance(data_keys, KeyRing)
    secrets = NodeSecrets(tls_key, data_keys)
    if tidy and not files.is_clean():
        store_secrets(swarm_dir, secrets, unlock_key)
    if tidy:
        _settle_certificate(swarm_dir, tls_key)
    return secrets


def save_identity(swarm_dir: Path, identity: NodeIdentity) -> None:
    """Written last, once the swarm's state is durable: its presence is what makes a restart rejoin."""
    _write_private(swarm_dir / "state.json", json.dumps(asdict(identity)).encode())
    _fsync_dir(swarm_dir)


def load(swarm_dir: Path) -> NodeIdentity | None:
    try:
        doc = json.loads((swarm_dir / "state.json").read_text())
    except FileNotFoundError:
        return None
    if "raft_id" not in doc:
        raise RuntimeError(
            f"{swarm_dir} holds a swarm from a shoal without Raft (before 0.1's Raft store); it cannot be "
            "brought back: remove that directory (its tasks keep running until then) and `swarm init` again"
        )
    doc["managers"] = tuple(doc.get("managers", ()))
    key_pem = node_key_path(swarm_dir).read_bytes() if node_key_path(swarm_dir).exists() else b""
    if key_pem and b"ENCRYPTED" not in key_pem:  # an autolocked key is settled once unlocked (load_secrets)
        _settle_certificate(swarm_dir, key_pem)
    return NodeIdentity(**doc)


def forget(swarm_dir: Path) -> None:
    shutil.rmtree(swarm_dir, ignore_errors=True)
