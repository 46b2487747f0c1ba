"""Test certificates shaped like a swarm's: a cluster CA and node certificates with the role in
OU ("swarm-manager"/"swarm-worker"), the node id in CN and the cluster id in O, ECDSA P-256.

Only for tests and benchmarks: keys are kept in memory unencrypted and written to disk on demand.
The real CA lives in shoal.ca.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

MANAGER_ROLE = "swarm-manager"
WORKER_ROLE = "swarm-worker"
_CA_COMMON_NAME = "swarm-ca"


def _private_key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass(frozen=True)
class CertFiles:
    """Paths of a node's PEM files, as ssl.SSLContext.load_cert_chain / load_verify_locations take them."""

    cert: Path
    key: Path
    ca: Path


@dataclass(frozen=True)
class NodeCertificate:
    node_id: str
    role: str
    cluster_id: str
    cert_pem: bytes
    key_pem: bytes
    ca_pem: bytes

    def write(self, directory: Path) -> CertFiles:
        """Write cert, key and CA bundle under ``directory`` (created if missing)."""
        directory.mkdir(parents=True, exist_ok=True)
        files = CertFiles(directory / "node.crt", directory / "node.key", directory / "ca.crt")
        files.cert.write_bytes(self.cert_pem)
        files.key.write_bytes(self.key_pem)
        files.key.chmod(0o600)
        files.ca.write_bytes(self.ca_pem)
        return files


class TestCA:
    """A self-signed cluster root that issues node certificates."""

    __test__ = False  # not a pytest test class despite the name

    def __init__(self, cluster_id: str = "testcluster", *, valid_days: int = 30) -> None:
        self.cluster_id = cluster_id
        self._valid_days = valid_days
        self._key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, _CA_COMMON_NAME)])
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=valid_days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256())
        )

    @property
    def ca_pem(self) -> bytes:
        return self._cert.public_bytes(serialization.Encoding.PEM)

    def issue(
        self,
        node_id: str,
        role: str = MANAGER_ROLE,
        *,
        cluster_id: str | None = None,
        hosts: tuple[str, ...] = ("127.0.0.1", "localhost"),
    ) -> NodeCertificate:
        """A certificate for ``node_id`` with ``role`` in OU, usable as TLS server and client.

        ``cluster_id`` overrides the CA's own (to make a certificate of a foreign cluster).
        ``hosts`` become subjectAltNames (IP addresses or DNS names), next to the role and node id
        as DNS names, as swarmkit puts them.
        """
        org = self.cluster_id if cluster_id is None else cluster_id
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role),
                x509.NameAttribute(NameOID.COMMON_NAME, node_id),
            ]
        )
        alt_names: list[x509.GeneralName] = [x509.DNSName(role), x509.DNSName(node_id)]
        for host in hosts:
            try:
                alt_names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                alt_names.append(x509.DNSName(host))
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=self._valid_days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        return NodeCertificate(
            node_id=node_id,
            role=role,
            cluster_id=org,
            cert_pem=cert.public_bytes(serialization.Encoding.PEM),
            key_pem=_private_key_pem(key),
            ca_pem=self.ca_pem,
        )

    def write(self, directory: Path) -> Path:
        """Write the CA certificate (and key, for tools that want to issue more) under ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "ca.key").write_bytes(_private_key_pem(self._key))
        (directory / "ca.key").chmod(0o600)
        path = directory / "ca.crt"
        path.write_bytes(self.ca_pem)
        return path
