"""Root CA rotation, pure (swarmkit's controlapi/ca_rotation.go): deciding, from the cluster's CA
state and the CAConfig a client sent, whether a rotation starts, stays, or is cancelled, with Swarm's
refusals of an unusable desired root.

A rotation has a new root (made here, or given with `--ca-cert/--ca-key`) and the new root's public
key cross-signed by the current root. While it runs, the new root's key signs every node
certificate and the cross-signed certificate follows each leaf, so nodes that still trust only the
current root accept the new certificates. Once every node holds one (the caller watches that), the
new root becomes the only root (``finished``)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from shoal.api import errors
from shoal.ca import certs

MIN_ROOT_VALIDITY = timedelta(hours=8760)  # swarmkit's minRootExpiration (cfssl's OneYear)
CROSS_SIGN_FAILED = "unable to generate a cross-signed certificate for root rotation"


class Internal(errors.Unknown):
    """gRPC's Internal code, which Swarm uses when the cross-signing itself fails (HTTP 500)."""

    code = "Internal"


@dataclass(frozen=True)
class RootRotation:
    ca_cert: bytes
    ca_key: bytes
    cross_signed: bytes


@dataclass(frozen=True)
class CAState:
    """The CA part of the cluster object: the root every node trusts, its key, the rotation under
    way if any, and the ForceRotate value last acted on."""

    root: certs.KeyPair
    rotation: RootRotation | None = None
    last_forced: int = 0

    def signer(self) -> certs.Signer:
        """What signs node certificates now: the new root during a rotation (with the cross-signed
        certificate as chain), the root otherwise."""
        if self.rotation is None:
            return certs.Signer(self.root)
        return certs.Signer(certs.KeyPair(self.rotation.ca_cert, self.rotation.ca_key), self.rotation.cross_signed)

    def tls_info(self) -> dict[str, str]:
        """The cluster's TLSInfo: the trust root, and the issuer nodes should have (the new root's
        during a rotation), which the CLI compares with each node's."""
        issuer = self.rotation.ca_cert if self.rotation is not None else None
        return certs.tls_info(self.root.cert_pem, issuer)

    def finished(self) -> CAState:
        """The state once every node holds a certificate from the new root."""
        assert self.rotation is not None
        return CAState(certs.KeyPair(self.rotation.ca_cert, self.rotation.ca_key), None, self.last_forced)


def _invalid(message: str) -> errors.InvalidArgument:
    return errors.InvalidArgument(message, grpc=True)


def _start(state: CAState, new_root: certs.KeyPair, force_rotate: int) -> CAState:
    try:
        cross_signed = certs.cross_sign(state.root, new_root.cert_pem)
    except ValueError:
        raise Internal(CROSS_SIGN_FAILED, grpc=True) from None
    return CAState(state.root, RootRotation(new_root.cert_pem, new_root.key_pem, cross_signed), force_rotate)


def _public_der(key: ec.EllipticCurvePublicKey | object) -> bytes:
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _desired_root(cert_pem: bytes, key_pem: bytes, now: datetime) -> certs.KeyPair:
    """A root given with --ca-cert/--ca-key, checked as swarmkit's NewRootCA and ca_rotation check it."""
    try:
        found = x509.load_pem_x509_certificates(cert_pem)
    except ValueError as exc:
        raise _invalid(f"invalid root certificates: {exc}") from None
    if len(found) != 1:
        raise _invalid("the desired CA certificate cannot contain multiple certificates")
    cert = found[0]
    if cert.not_valid_before_utc > now or cert.not_valid_after_utc < now:
        raise _invalid("error while validating Root CA Certificate: x509: certificate has expired or is not yet valid")
    public_key = cert.public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or cert.signature_hash_algorithm is None:
        raise _invalid("unknown or unsupported certificate public key algorithm")
    try:
        public_key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
    except InvalidSignature:
        raise _invalid("error while validating Root CA Certificate: x509: certificate signed by unknown "
                       "authority") from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise _invalid(f"malformed private key: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or _public_der(key.public_key()) != _public_der(public_key):
        raise _invalid("certificate key mismatch")
    if cert.not_valid_after_utc < now + MIN_ROOT_VALIDITY:
        raise _invalid("CA certificate expires too soon")
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise Internal(CROSS_SIGN_FAILED, grpc=True)  # as swarmkit: the cross-signing refuses a non-CA
    plain_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
    return certs.KeyPair(cert.public_bytes(serialization.Encoding.PEM), plain_key)


def reconcile(state: CAState, signing_cert: str, signing_key: str, force_rotate: int, now: datetime) -> CAState:
    """The CA state a cluster update asks for (swarmkit's validateCAConfig, without external CAs):
    unchanged, a new rotation (a changed ForceRotate, or a desired root unlike the current and the
    rotating one), or a cancelled rotation (the desired root is the current one). Raises Swarm's
    errors for an unusable desired root; nothing changes then."""
    if signing_key and not signing_cert:
        raise _invalid("if a signing CA key is provided, the signing CA cert must also be provided")
    if not signing_cert:
        if force_rotate != state.last_forced:
            return _start(state, certs.create_root_ca(now), force_rotate)
        return state
    if not signing_key:
        # Without a key the root would need an external CA to sign with; shoal has none.
        raise _invalid("there must be at least one valid, reachable external CA corresponding to the desired "
                       "CA certificate")
    desired = _desired_root(signing_cert.encode(), signing_key.encode(), now)
    if _same_cert(desired.cert_pem, state.root.cert_pem):
        return CAState(replace(state.root, key_pem=desired.key_pem), None, force_rotate)
    if _same_key(desired.key_pem, state.root.key_pem):
        raise _invalid("Cannot update to a cert with an identical key")
    if state.rotation is not None and _same_cert(desired.cert_pem, state.rotation.ca_cert):
        return replace(state, rotation=replace(state.rotation, ca_key=desired.key_pem), last_forced=force_rotate)
    return _start(state, desired, force_rotate)


def _same_cert(a: bytes, b: bytes) -> bool:
    return x509.load_pem_x509_certificate(a) == x509.load_pem_x509_certificate(b)


def _same_key(a: bytes, b: bytes) -> bool:
    return _public_der(certs.load_ca_key(a).public_key()) == _public_der(certs.load_ca_key(b).public_key())
