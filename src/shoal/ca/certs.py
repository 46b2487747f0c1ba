"""Certificates, pure: the cluster's root CA and node certificates shaped as Swarm's (CN = node id,
OU = role, O = cluster id; ECDSA P-256; root valid 20 years, node certificates 90 days, backdated 1 h)."""

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
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                key_encipherment=False, data_encipherment=False, key_agreement=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def issue_node_certificate(
    root: KeyPair, node_id: str, role: str, cluster_id: str, now: datetime,
    lifetime: timedelta = NODE_CERT_LIFETIME,
) -> KeyPair:
    """A fresh key and certificate for a node, signed by the root (the CA signs CSRs the same way)."""
    key = _new_key()
    cert = sign_node_key(root, key.public_key(), node_id, role, cluster_id, now, lifetime)
    return KeyPair(cert, _key_pem(key))


def sign_node_key(
    root: KeyPair, public_key: ec.EllipticCurvePublicKey, node_id: str, role: str, cluster_id: str,
    now: datetime, lifetime: timedelta = NODE_CERT_LIFETIME,
) -> bytes:
    """A node certificate (PEM) for ``public_key``, signed by ``root``. Managers also carry ``swarm-ca``
    as a name, since any manager may serve the CA's routes."""
    ca_cert = x509.load_pem_x509_certificate(root.cert_pem)
    ca_key = serialization.load_pem_private_key(root.key_pem, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError("the cluster's root CA key is not an ECDSA key")
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
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + lifetime)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def tls_info(root_cert_pem: bytes, node_cert_pem: bytes | None = None) -> dict[str, str]:
    """The TLSInfo block of /info and node objects: trust root plus the certificate issuer's subject
    and public key (base64 DER), which the CLI compares to print a node's TLS status."""
    ca_cert = x509.load_pem_x509_certificate(root_cert_pem)
    issuer = ca_cert.subject.public_bytes()
    public_key = ca_cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return {
        "TrustRoot": root_cert_pem.decode(),
        "CertIssuerSubject": base64.b64encode(issuer).decode(),
        "CertIssuerPublicKey": base64.b64encode(public_key).decode(),
    }
