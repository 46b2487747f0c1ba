"""The cluster object's CA through swarm updates, over an in-memory store: --cert-expiry and its
minimum, `swarm ca --rotate` starting a root rotation (nodes told through their marker), the rotation
finishing once every node reports the new issuer (new trust root, join tokens made for it), and an
unusable external root refused with nothing changed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from shoal.api import errors
from shoal.api.defaults import NANOS
from shoal.api.objects import CLUSTER, NODES
from shoal.ca import certs, tokens
from shoal.controlapi.cluster import (
    DESIRED_TLS,
    ClusterControl,
    ca_state,
    finish_rotation_if_converged,
    new_cluster,
    node_cert_lifetime,
    record_node_tls_info,
)
from shoal.store.memory import MemoryStore
from shoal.testing.clock import FakeClock
from shoal.testing.store_harness import InstantProposer

NODE_IDS = ("node1", "node2")


@pytest.fixture
async def control() -> ClusterControl:
    clock = FakeClock()
    store = MemoryStore(InstantProposer(), clock)
    cluster = new_cluster("c1", {}, certs.create_root_ca(clock.now()))

    def bootstrap(tx: Any) -> None:
        tx.create(CLUSTER, cluster)
        for node_id in NODE_IDS:
            tx.create(NODES, {"ID": node_id, "Spec": {"Role": "worker"},
                              "Description": {"TLSInfo": cluster["TLSInfo"]}})

    await store.update(bootstrap)
    return ClusterControl(store, clock)


def store_of(control: ClusterControl) -> MemoryStore:
    return control._store


async def update_ca(control: ClusterControl, **ca_config: Any) -> None:
    current = control.inspect()
    spec = {**current["Spec"], "CAConfig": {**current["Spec"]["CAConfig"], **ca_config}}
    await control.update(spec, current["Version"]["Index"], False, False, False)


def stored_cluster(control: ClusterControl) -> dict[str, Any]:
    return store_of(control).view().objects(CLUSTER)[0]


async def test_cert_expiry_sets_the_life_of_new_certificates_with_swarms_minimum(control: ClusterControl) -> None:
    with pytest.raises(errors.InvalidArgument) as refused:
        await update_ca(control, NodeCertExpiry=1800 * NANOS)
    assert str(refused.value) == "rpc error: code = InvalidArgument desc = minimum certificate expiry time is: 1h0m0s"
    await update_ca(control, NodeCertExpiry=2 * 3600 * NANOS)
    assert node_cert_lifetime(stored_cluster(control)) == timedelta(hours=2)


async def test_a_forced_rotation_runs_until_every_node_has_the_new_issuer(control: ClusterControl) -> None:
    before = control.inspect()
    old_root = before["TLSInfo"]["TrustRoot"]
    await update_ca(control, ForceRotate=1)
    rotating = control.inspect()
    assert rotating["RootRotationInProgress"] is True
    assert rotating["TLSInfo"]["TrustRoot"] == old_root
    assert rotating["TLSInfo"]["CertIssuerPublicKey"] != before["TLSInfo"]["CertIssuerPublicKey"]
    assert rotating["JoinTokens"] == before["JoinTokens"]  # joins pin the old root until the end
    assert not any(key.startswith("_") for key in rotating)
    desired = {"Issuer": rotating["TLSInfo"]["CertIssuerPublicKey"], "Root": tokens.ca_digest(old_root.encode())}
    assert [node[DESIRED_TLS] for node in store_of(control).view().objects(NODES)] == [desired, desired]

    new_info = dict(rotating["TLSInfo"])
    await store_of(control).update(lambda tx: record_node_tls_info(tx, "node1", new_info))
    assert control.inspect()["RootRotationInProgress"] is True  # node2 still has the old issuer
    await store_of(control).update(lambda tx: record_node_tls_info(tx, "node2", new_info))

    done = control.inspect()
    assert done["RootRotationInProgress"] is False
    new_root = ca_state(stored_cluster(control)).root.cert_pem
    assert done["TLSInfo"]["TrustRoot"] == new_root.decode() != old_root
    digest = tokens.ca_digest(new_root)
    assert all(token.startswith(f"SWMTKN-1-{digest}-") for token in done["JoinTokens"].values())
    assert all(node[DESIRED_TLS]["Root"] == digest for node in store_of(control).view().objects(NODES))


def month_long_root() -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "corp")])
    now = FakeClock().now()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem.decode()


async def test_a_root_expiring_too_soon_is_refused_and_changes_nothing(control: ClusterControl) -> None:
    before = control.inspect()
    cert_pem, key_pem = month_long_root()
    with pytest.raises(errors.InvalidArgument) as refused:
        await update_ca(control, SigningCACert=cert_pem, SigningCAKey=key_pem)
    assert str(refused.value) == "rpc error: code = InvalidArgument desc = CA certificate expires too soon"
    assert control.inspect() == before


async def test_removing_the_last_node_on_the_old_issuer_finishes_the_rotation(control: ClusterControl) -> None:
    await update_ca(control, ForceRotate=1)
    new_info = dict(control.inspect()["TLSInfo"])
    await store_of(control).update(lambda tx: record_node_tls_info(tx, "node1", new_info))

    def remove_node2(tx: Any) -> None:  # what `docker node rm --force node2` does, then the check
        tx.delete(NODES, "node2")
        finish_rotation_if_converged(tx)

    await store_of(control).update(remove_node2)
    assert control.inspect()["RootRotationInProgress"] is False
