"""What makes this daemon a member of a swarm, kept under the data root: its node id, the cluster id,
its role, addresses, and its certificates (written 0600 like dockerd's swarm/certificates)."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from shoal.ca.certs import KeyPair


@dataclass(frozen=True)
class NodeIdentity:
    node_id: str
    cluster_id: str
    role: str
    advertise_addr: str
    listen_addr: str
    raft_id: int


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


def save_certificates(swarm_dir: Path, root_cert: bytes, node: KeyPair) -> None:
    certs = swarm_dir / "certificates"
    certs.mkdir(parents=True, exist_ok=True)
    _write_private(certs / "swarm-root-ca.crt", root_cert)
    _write_private(certs / "swarm-node.crt", node.cert_pem)
    _write_private(certs / "swarm-node.key", node.key_pem)
    _fsync_dir(certs)


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
    return NodeIdentity(**doc)


def forget(swarm_dir: Path) -> None:
    shutil.rmtree(swarm_dir, ignore_errors=True)
