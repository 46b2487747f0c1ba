"""Root CA rotation decisions and renewal timing, pure: what a cluster update's CAConfig does to the CA
state, Swarm's refusals of an unusable root, and that certificates issued during a rotation are
accepted by nodes that trust only the old root as well as by those that trust only the new one."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from shoal.api import errors
from shoal.ca import certs, csr, renewer, rotation
from shoal.ca.rotation import CAState

NOW = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def state() -> CAState:
    return CAState(certs.create_root_ca(NOW))


def external_root(lifetime: timedelta, *, ca: bool = True) -> certs.KeyPair:
    """A root made outside the swarm, as an operator's `openssl req -x509` would."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "corp-root")])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(NOW - timedelta(hours=1))
        .not_valid_after(NOW + lifetime)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return certs.KeyPair(cert.public_bytes(serialization.Encoding.PEM), key_pem)


def issue(state: CAState) -> bytes:
    _key, request = csr.new_key_and_csr()
    return csr.sign_csr(state.signer(), request, "node1", certs.ROLE_WORKER, "cluster1", NOW)


def test_an_unchanged_config_keeps_the_state(state: CAState) -> None:
    assert rotation.reconcile(state, "", "", 0, NOW) is state


def test_a_changed_force_rotate_starts_a_rotation_whose_certificates_both_roots_accept(state: CAState) -> None:
    rotating = rotation.reconcile(state, "", "", 1, NOW)
    assert rotating.rotation is not None and rotating.last_forced == 1
    assert rotating.root == state.root  # nodes keep trusting the old root until the rotation ends
    new_root = rotating.rotation.ca_cert
    assert new_root != state.root.cert_pem
    leaf_and_chain = issue(rotating)
    assert csr.verify_chain(leaf_and_chain, state.root.cert_pem)  # old trust: through the cross-signed cert
    assert csr.verify_chain(certs.split_pems(leaf_and_chain)[0], new_root)  # new trust: directly
    info = rotating.tls_info()
    assert info["TrustRoot"] == state.root.cert_pem.decode()
    assert info != state.tls_info() and info == certs.node_tls_info(state.root.cert_pem, leaf_and_chain)
    finished = rotating.finished()
    assert finished.rotation is None and finished.root.cert_pem == new_root
    assert not csr.verify_chain(issue(finished), state.root.cert_pem)


def test_an_external_root_is_taken_with_its_key(state: CAState) -> None:
    corp = external_root(timedelta(days=3650))
    rotating = rotation.reconcile(state, corp.cert_pem.decode(), corp.key_pem.decode(), 0, NOW)
    assert rotating.rotation is not None and rotating.rotation.ca_cert == corp.cert_pem
    assert csr.verify_chain(issue(rotating), state.root.cert_pem)
    # Asking for the current root again cancels the rotation.
    again = rotation.reconcile(rotating, state.root.cert_pem.decode(), state.root.key_pem.decode(), 0, NOW)
    assert again.rotation is None and again.root == state.root


def refusal(state: CAState, cert_pem: bytes, key_pem: bytes) -> str:
    with pytest.raises(errors.InvalidArgument) as refused:
        rotation.reconcile(state, cert_pem.decode(), key_pem.decode(), 0, NOW)
    return str(refused.value)


def test_a_root_that_expires_within_a_year_is_refused(state: CAState) -> None:
    month = external_root(timedelta(days=30))
    assert refusal(state, month.cert_pem, month.key_pem) == (
        "rpc error: code = InvalidArgument desc = CA certificate expires too soon")


def test_a_key_that_is_not_the_roots_is_refused(state: CAState) -> None:
    corp, other = external_root(timedelta(days=3650)), external_root(timedelta(days=3650))
    assert refusal(state, corp.cert_pem, other.key_pem) == (
        "rpc error: code = InvalidArgument desc = certificate key mismatch")


def test_a_root_that_is_not_a_ca_cannot_be_cross_signed(state: CAState) -> None:
    leafish = external_root(timedelta(days=3650), ca=False)
    with pytest.raises(rotation.Internal) as refused:
        rotation.reconcile(state, leafish.cert_pem.decode(), leafish.key_pem.decode(), 0, NOW)
    assert str(refused.value) == ("rpc error: code = Internal desc = unable to generate a cross-signed certificate "
                                  "for root rotation")


def test_a_key_without_its_certificate_is_refused(state: CAState) -> None:
    with pytest.raises(errors.InvalidArgument, match="the signing CA cert must also be provided"):
        rotation.reconcile(state, "", state.root.key_pem.decode(), 0, NOW)


def test_renewal_falls_between_half_and_four_fifths_of_the_validity() -> None:
    root = certs.create_root_ca(NOW)
    lifetime = timedelta(hours=10)
    cert = certs.issue_node_certificate(root, "n", certs.ROLE_WORKER, "c", NOW, lifetime).cert_pem
    window = lifetime + certs.backdate_for(lifetime)  # backdated 1 h
    start = NOW - certs.backdate_for(lifetime)
    rng = random.Random(7)
    for _ in range(200):
        due = NOW + timedelta(seconds=renewer.renewal_delay(cert, NOW, rng))
        assert start + window * 0.5 <= due <= start + window * 0.8
    assert renewer.renewal_delay(cert, NOW + lifetime, rng) == 0  # expired: at once


def test_a_test_sized_lifetime_is_not_backdated_past_itself() -> None:
    root = certs.create_root_ca(NOW)
    cert = certs.issue_node_certificate(root, "n", certs.ROLE_WORKER, "c", NOW, timedelta(seconds=20)).cert_pem
    delay = renewer.renewal_delay(cert, NOW, random.Random(1))
    assert 0 < delay < 20 * 0.6


def test_failed_renewals_back_off_up_to_an_hour() -> None:
    assert [renewer.retry_delay(n) for n in (1, 2, 3)] == [5.0, 10.0, 20.0]
    assert renewer.retry_delay(30) == 3600.0
