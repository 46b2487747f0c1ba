"""Certificates, pure: the cluster's root CA and node certificates shaped as Swarm's (CN = node id,
OU = role, O = cluster id; ECDSA P-256; root valid 20 years, node certificates 90 days, backdated 1 h).

Every root carries a subject key identifier and every certificate it signs the matching authority key
identifier: after a root rotation several roots named "swarm-ca" may be trusted at once, and the
identifiers are what lets TLS pick the right one (names alone would be ambiguous)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ROOT_CN = "swarm-ca"
ROLE_MANAGER = "swarm-manager"
ROLE_WORKER = "swarm-worker"
ROOT_LIFETIME = timedelta(seconds=630_720_000)
NODE_CERT_LIFETIME = timedelta(hours=2160)
BACKDATE = timedelta(hours=1)


@dataclass(frozen=True)
class KeyPair:
    cert_pem: bytes
    key_pem: bytes


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@dataclass(frozen=True)
class Signer:
    """What signs node certificates: a CA key pair, and what follows each leaf in a node's certificate
    file (during a root rotation, the new root cross-signed by the old one, so that nodes which trust
    only the old root still accept the new certificates)."""

    ca: KeyPair
    chain_pem: bytes = b""


_CA_USAGE = x509.KeyUsage(
    digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
    key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False,
    decipher_only=False,
)


def create_root_ca(now: datetime) -> KeyPair:
    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ROOT_CN)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + ROOT_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(_CA_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def load_ca_key(key_pem: bytes) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(key_pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("the cluster's root CA key is not an ECDSA key")
    return key


def cross_sign(old_root: KeyPair, new_root_pem: bytes) -> bytes:
    """The new root's subject and public key, signed by the old root: an intermediate that chains
    certificates issued under the new root up to the old one (swarmkit's CrossSignCACertificate)."""
    old_cert = x509.load_pem_x509_certificate(old_root.cert_pem)
    new_cert = x509.load_pem_x509_certificate(new_root_pem)
    old_key = load_ca_key(old_root.key_pem)
    cert = (
        x509.CertificateBuilder()
        .subject_name(new_cert.subject)
        .issuer_name(old_cert.subject)
        .public_key(new_cert.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(new_cert.not_valid_before_utc)
        .not_valid_after(new_cert.not_valid_after_utc)
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(_CA_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(new_cert.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(old_key.public_key()), critical=False)
        .sign(old_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def issue_node_certificate(
    root: KeyPair, node_id: str, role: str, cluster_id: str, now: datetime,
    lifetime: timedelta = NODE_CERT_LIFETIME,
) -> KeyPair:
    """A fresh key and certificate for a node, signed by the root (the CA signs CSRs the same way)."""
    key = _new_key()
    cert = sign_node_key(root, key.public_key(), node_id, role, cluster_id, now, lifetime)
    return KeyPair(cert, _key_pem(key))


def backdate_for(lifetime: timedelta) -> timedelta:
    """Swarm's 1 h backdating (clock skew between nodes), never more than the lifetime itself: a
    test-only lifetime of seconds would otherwise be mostly in the past when issued, and renewal, due
    at 50-80 % of the validity window, would fall due at once."""
    return min(BACKDATE, lifetime)


def sign_node_key(
    root: KeyPair, public_key: ec.EllipticCurvePublicKey, node_id: str, role: str, cluster_id: str,
    now: datetime, lifetime: timedelta = NODE_CERT_LIFETIME,
) -> bytes:
    """A node certificate (PEM) for ``public_key``, signed by ``root``. Managers also carry ``swarm-ca``
    as a name, since any manager may serve the CA's routes."""
    ca_cert = x509.load_pem_x509_certificate(root.cert_pem)
    ca_key = load_ca_key(root.key_pem)
    subject = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, cluster_id),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role),
        x509.NameAttribute(NameOID.COMMON_NAME, node_id),
    ])
    alt_names: list[x509.GeneralName] = [x509.DNSName(role), x509.DNSName(node_id)]
    if role == ROLE_MANAGER:
        alt_names.append(x509.DNSName(ROOT_CN))
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - backdate_for(lifetime))
        .not_valid_after(now + lifetime)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def tls_info(root_cert_pem: bytes, issuer_cert_pem: bytes | None = None) -> dict[str, str]:
    """The TLSInfo block of /info and node objects: the trust root plus the subject and public key
    (base64 DER) of the CA that issues certificates (``issuer_cert_pem``; the root itself when not
    given), which the CLI compares to show a node's TLS status and a root rotation's progress."""
    issuer_cert = x509.load_pem_x509_certificate(issuer_cert_pem or root_cert_pem)
    public_key = issuer_cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return {
        "TrustRoot": root_cert_pem.decode(),
        "CertIssuerSubject": base64.b64encode(issuer_cert.subject.public_bytes()).decode(),
        "CertIssuerPublicKey": base64.b64encode(public_key).decode(),
    }


def split_pems(bundle: bytes) -> list[bytes]:
    """The certificates of a PEM bundle, each as its own PEM."""
    return [cert.public_bytes(serialization.Encoding.PEM) for cert in x509.load_pem_x509_certificates(bundle)]


def node_tls_info(root_cert_pem: bytes, node_chain_pem: bytes) -> dict[str, str]:
    """A node's own TLSInfo: the root it trusts, and the CA that issued its certificate (the
    intermediate that follows the leaf in its file, if any, else the root)."""
    chain = split_pems(node_chain_pem)
    return tls_info(root_cert_pem, chain[1] if len(chain) > 1 else None)
