"""Certificate signing requests, pure: a joining or renewing node makes a key and a CSR; the CA signs
the CSR's public key into a node certificate whose subject it decides itself (CN = node id, OU = role,
O = cluster id), whatever the CSR asked for, as Swarm's CA does."""

from __future__ import annotations

from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from shoal.api import errors
from shoal.ca.certs import NODE_CERT_LIFETIME, Signer, sign_node_key, split_pems

MAX_CSR_BYTES = 16 << 10


def new_key_and_csr() -> tuple[bytes, bytes]:
    """(private key PEM, CSR PEM) for a node that asks the CA for a certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "swarm-node")]))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key_pem, csr.public_bytes(serialization.Encoding.PEM)


def _load_csr(csr_pem: bytes) -> x509.CertificateSigningRequest:
    if len(csr_pem) > MAX_CSR_BYTES:
        raise errors.InvalidArgument(f"certificate signing request of {len(csr_pem)} bytes is too large")
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
    except ValueError as exc:
        raise errors.InvalidArgument(f"invalid certificate signing request: {exc}") from None
    if not csr.is_signature_valid:
        raise errors.InvalidArgument("invalid certificate signing request: bad signature")
    key = csr.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise errors.InvalidArgument("invalid certificate signing request: the key must be ECDSA P-256")
    return csr


def sign_csr(
    signer: Signer, csr_pem: bytes, node_id: str, role: str, cluster_id: str, now: datetime,
    lifetime: timedelta = NODE_CERT_LIFETIME,
) -> bytes:
    """The node's certificate file: the leaf signed by ``signer``, followed by the signer's chain."""
    public_key = _load_csr(csr_pem).public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)  # _load_csr checked it
    return sign_node_key(signer.ca, public_key, node_id, role, cluster_id, now, lifetime) + signer.chain_pem


def certificate_matches_key(cert_pem: bytes, key_pem: bytes) -> bool:
    """Whether the certificate was issued for this private key (a node checks what the CA sent back)."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
        key = serialization.load_pem_private_key(key_pem, password=None)
    except ValueError:
        return False
    ours = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    theirs = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return ours == theirs


def verify_issued_by(cert_pem: bytes, root_pem: bytes) -> bool:
    """Whether ``root_pem``'s key signed ``cert_pem``."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    root_key = x509.load_pem_x509_certificate(root_pem).public_key()
    if not isinstance(root_key, ec.EllipticCurvePublicKey) or cert.signature_hash_algorithm is None:
        return False
    try:
        root_key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
    except InvalidSignature:
        return False
    return True


def verify_chain(chain_pem: bytes, root_pem: bytes) -> bool:
    """Whether the certificate file (a leaf, then any intermediates) chains up to ``root_pem``: each
    certificate signed by the next, the last by the root."""
    try:
        chain = split_pems(chain_pem)
    except ValueError:
        return False
    if not chain:
        return False
    return all(verify_issued_by(cert, issuer) for cert, issuer in zip(chain, [*chain[1:], root_pem], strict=True))


def subject_node_id(cert_pem: bytes) -> str:
    """The node id a node certificate names (its CN)."""
    names = x509.load_pem_x509_certificate(cert_pem).subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def subject_cluster_id(cert_pem: bytes) -> str:
    """The cluster id a node certificate names (its O)."""
    names = x509.load_pem_x509_certificate(cert_pem).subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return str(names[0].value) if names else ""
