"""A renewal replaces the node's certificate and key as a pair: a crash between the two writes must
leave, after the next start, a certificate that matches the key on disk (never a mismatched pair,
which would keep the node off the cluster port)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shoal.ca import certs, csr
from shoal.manager.wal.crypto import DataKey, KeyRing
from shoal.node import identity as ident

NOW = datetime(2026, 1, 1, tzinfo=UTC)
ROOT = certs.create_root_ca(NOW)


def member(swarm_dir: Path, role: str) -> tuple[certs.KeyPair, KeyRing | None]:
    pair = certs.issue_node_certificate(ROOT, "node1", role, "cluster1", NOW)
    data_keys = KeyRing(DataKey.generate()) if role == certs.ROLE_MANAGER else None
    if data_keys is not None:
        ident.dek_path(swarm_dir).parent.mkdir(parents=True, exist_ok=True)
    ident.save_certificates(swarm_dir, ROOT.cert_pem, pair, data_keys)
    (swarm_dir / "state.json").write_text(json.dumps({
        "node_id": "node1", "cluster_id": "cluster1", "role": "manager" if data_keys else "worker",
        "advertise_addr": "127.0.0.1", "listen_addr": "127.0.0.1:0", "raft_id": 1 if data_keys else 0}))
    return pair, data_keys


def pair_on_disk(swarm_dir: Path, key_pem: bytes) -> bool:
    return csr.certificate_matches_key(ident.node_cert_path(swarm_dir).read_bytes(), key_pem)


@pytest.mark.parametrize("role", [certs.ROLE_WORKER, certs.ROLE_MANAGER])
def test_a_crash_after_the_new_key_keeps_the_new_pair(tmp_path: Path, role: str) -> None:
    _old, data_keys = member(tmp_path, role)
    new = certs.issue_node_certificate(ROOT, "node1", role, "cluster1", NOW)
    # The renewal's first two steps, then the crash: new certificate pending, new key in place.
    ident.pending_cert_path(tmp_path).write_bytes(new.cert_pem)
    if data_keys is None:
        ident.node_key_path(tmp_path).write_bytes(new.key_pem)
    else:
        ident.store_secrets(tmp_path, ident.NodeSecrets(new.key_pem, data_keys), None)
    assert not pair_on_disk(tmp_path, new.key_pem)
    assert ident.load(tmp_path) is not None
    if data_keys is not None:
        ident.load_secrets(tmp_path, None)
    assert pair_on_disk(tmp_path, new.key_pem)
    assert not ident.pending_cert_path(tmp_path).exists()


def test_a_crash_before_the_new_key_keeps_the_old_pair(tmp_path: Path) -> None:
    old, _ = member(tmp_path, certs.ROLE_WORKER)
    new = certs.issue_node_certificate(ROOT, "node1", certs.ROLE_WORKER, "cluster1", NOW)
    ident.pending_cert_path(tmp_path).write_bytes(new.cert_pem)
    ident.load(tmp_path)
    assert pair_on_disk(tmp_path, old.key_pem)
    assert not ident.pending_cert_path(tmp_path).exists()
