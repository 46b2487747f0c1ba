"""Node certificates over a swarm's life, through the real docker CLI on shoalds in network namespaces
(a manager n1 and a worker n2; n3 joins later): certificates renewed before they expire with the
service's task untouched, `docker swarm ca --rotate` five times (five roots, every node's certificate
from the current one, joins with the new token), an external root taken and one that expires within
a year refused with Swarm's message.

The 1 h minimum of --cert-expiry is lowered for these daemons only (SHOAL_TEST_MIN_CERT_EXPIRY, a
test-only knob) so that renewals happen within seconds. The tests share one cluster and run in file
order. The last one cuts the worker off from the manager while its renewal is due: the failed
renewal is retried (backoff) and done once the link is back."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from shoal.ca import csr
from shoal.ca.tokens import ca_digest
from shoal.controlapi.cluster import TEST_MIN_CERT_EXPIRY_ENV
from shoal.testing.cluster import ClusterNode, TestCluster
from shoal.testing.daemon import DOCKER_CLI
from shoal.testing.netns import netns_unavailable

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(netns_unavailable() is not None, reason=netns_unavailable() or ""),
    pytest.mark.skipif(DOCKER_CLI is None, reason="no docker CLI"),
]
SHORT_EXPIRY = 20  # seconds: renewed 0-12 s after issue (50-80 % of 20 s plus as much backdating)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestCluster]:
    swarm = TestCluster("test_certificates", tmp_path_factory.mktemp("certs"))
    with pytest.MonkeyPatch.context() as env:
        env.setenv(TEST_MIN_CERT_EXPIRY_ENV, "10")  # the daemons inherit it
        try:
            swarm.start(3)
            manager = swarm.node("n1")
            swarm.init(manager)
            manager.docker("swarm", "update", "--dispatcher-heartbeat", "1s")
            assert "joined a swarm as a worker" in swarm.join(swarm.node("n2"), "worker", manager).stdout
            manager.docker("service", "create", "--detach", "--name", "steady", "--constraint", "node.role==worker",
                           "busybox", "sleep", "100000")
            swarm.wait_for(lambda: running_task(manager) is not None, 60, "the worker's task running")
            yield swarm
        finally:
            swarm.destroy()


def running_task(via: ClusterNode) -> str | None:
    rows = via.docker("service", "ps", "steady", "--format", "{{.ID}} {{.CurrentState}}").stdout.split("\n")
    running = [row.split()[0] for row in rows if " Running" in row]
    return running[0] if len(running) == 1 else None


def task_history(via: ClusterNode) -> list[str]:
    return via.docker("service", "ps", "steady", "--format", "{{.ID}}").stdout.split()


def certificate_files(node: ClusterNode) -> tuple[bytes, bytes]:
    directory = node.daemon.data_root / "swarm" / "certificates"
    return (directory / "swarm-node.crt").read_bytes(), (directory / "swarm-root-ca.crt").read_bytes()


def leaf(node: ClusterNode) -> x509.Certificate:
    return x509.load_pem_x509_certificate(certificate_files(node)[0])


def rotate(manager: ClusterNode, *args: str) -> str:
    """`docker swarm ca --rotate`: it waits for the rotation to finish, then prints the new root."""
    out = manager.docker("swarm", "ca", "--rotate", *args, timeout=90).stdout
    assert "rotated CA certificates" in out  # its progress display
    return out[out.index("-----BEGIN CERTIFICATE-----"):].strip()


def nodes_ready(via: ClusterNode, count: int) -> bool:
    states = via.docker("node", "ls", "--format", "{{.Status}}").stdout.split()
    return states == ["Ready"] * count


def test_certificates_are_renewed_before_they_expire(cluster: TestCluster) -> None:
    manager, worker = cluster.node("n1"), cluster.node("n2")
    task = running_task(manager)
    refused = manager.docker("swarm", "update", "--cert-expiry", "5s", check=False)
    assert "minimum certificate expiry time is: 10s" in refused.stderr
    manager.docker("swarm", "update", "--cert-expiry", f"{SHORT_EXPIRY}s")
    # The 90-day certificates renew only in weeks: a rotation gives both nodes short-lived ones.
    manager.docker("swarm", "ca", "--rotate", timeout=60)
    for node in (manager, worker):
        first = leaf(node)
        assert first.not_valid_after_utc - first.not_valid_before_utc == timedelta(seconds=2 * SHORT_EXPIRY)
        seen = [first]

        def renewed_twice(node: ClusterNode = node, seen: list[x509.Certificate] = seen) -> bool:
            current = leaf(node)
            if current.serial_number != seen[-1].serial_number:
                # Each renewal came before the certificate it replaced expired (issued = backdated start
                # plus the backdating, which is the expiry itself at this size).
                issued = current.not_valid_before_utc + timedelta(seconds=SHORT_EXPIRY)
                assert issued < seen[-1].not_valid_after_utc
                seen.append(current)
            return len(seen) >= 3

        cluster.wait_for(renewed_twice, 4 * SHORT_EXPIRY, f"{node.name} renewed its certificate twice")
    assert nodes_ready(manager, 2)
    assert running_task(manager) == task and task_history(manager) == [task]
    # Still serving with the renewed certificates: a new service's task starts on the worker.
    manager.docker("service", "create", "--detach", "--name", "probe", "--constraint", "node.role==worker",
                   "busybox", "sleep", "100000")
    cluster.wait_for(lambda: " Running" in manager.docker("service", "ps", "probe", "--format",
                                                          "{{.Node}} {{.CurrentState}}").stdout,
                     60, "the probe task running on the worker")
    manager.docker("service", "rm", "probe")
    manager.docker("swarm", "update", "--cert-expiry", "2160h")


def test_five_root_rotations(cluster: TestCluster) -> None:
    manager, worker = cluster.node("n1"), cluster.node("n2")
    task = running_task(manager)
    roots = []
    for _ in range(5):
        out = rotate(manager)
        root = (out + "\n").encode()
        roots.append(root)
        assert manager.docker("swarm", "ca").stdout.strip() == out
        info = manager.docker_json("info", "--format", "{{json .Swarm.Cluster}}")
        assert info["RootRotationInProgress"] is False and info["TLSInfo"]["TrustRoot"] == root.decode()
        for node in (manager, worker):
            chain, trusted = certificate_files(node)
            assert trusted == root
            first = x509.load_pem_x509_certificates(chain)[0].public_bytes(serialization.Encoding.PEM)
            assert csr.verify_issued_by(first, root)
        for described in manager.docker_json("node", "inspect", "n1", "n2"):
            assert described["Description"]["TLSInfo"] == info["TLSInfo"]
        assert manager.docker("node", "ls", "--format", "{{.TLSStatus}}").stdout.split() == ["Ready", "Ready"]
    assert len(set(roots)) == 5
    assert running_task(manager) == task and task_history(manager) == [task]
    assert nodes_ready(manager, 2)
    # Restarted, the worker comes back with the certificate chain and root the rotations left it.
    def sessions() -> int:  # the worker's agent logs each session it opens with the leader (over mTLS)
        return worker.daemon.log_path.read_text().count("agent session with the leader")

    before = sessions()
    worker.kill9()
    worker.daemon.start()
    cluster.wait_for(lambda: sessions() > before and nodes_ready(manager, 2) and running_task(manager) == task,
                     60, "the restarted worker in session again, its task re-adopted")
    assert task_history(manager) == [task]
    token = manager.docker("swarm", "join-token", "-q", "worker").stdout.strip()
    assert token.split("-")[2] == ca_digest(roots[-1])
    assert "joined a swarm as a worker" in cluster.join(cluster.node("n3"), "worker", manager).stdout
    cluster.wait_for(lambda: nodes_ready(manager, 3), 30, "n3 ready")


def external_root(directory: Path, lifetime: timedelta) -> tuple[Path, Path, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "corp-root")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + lifetime)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "ca.crt", directory / "ca.key"
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    cert_path.write_bytes(cert_pem)
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path, cert_pem


def test_an_external_root_is_taken_and_one_expiring_too_soon_refused(cluster: TestCluster,
                                                                      tmp_path: Path) -> None:
    manager = cluster.node("n1")
    before = manager.docker("swarm", "ca").stdout
    cert, key, _ = external_root(tmp_path / "month", timedelta(days=30))
    refused = manager.docker("swarm", "ca", "--rotate", "--ca-cert", str(cert), "--ca-key", str(key), check=False)
    assert refused.returncode != 0
    assert refused.stderr.strip() == ("Error response from daemon: rpc error: code = InvalidArgument desc = "
                                      "CA certificate expires too soon")
    assert manager.docker("swarm", "ca").stdout == before
    cert, key, cert_pem = external_root(tmp_path / "decade", timedelta(days=3650))
    assert rotate(manager, "--ca-cert", str(cert), "--ca-key", str(key)) == cert_pem.decode().strip()
    for name in ("n1", "n2", "n3"):
        assert certificate_files(cluster.node(name))[1].strip() == cert_pem.strip()
    assert nodes_ready(manager, 3)


def test_a_promoted_node_gets_a_manager_certificate_and_follows_a_rotation(cluster: TestCluster) -> None:
    manager, promoted = cluster.node("n1"), cluster.node("n3")
    manager.docker("node", "promote", "n3")
    cluster.wait_for(lambda: cluster.managers_view(manager)["n3"]["manager"] == "Reachable", 60,
                     "n3 a reachable manager")
    cluster.wait_for(lambda: promoted.docker("node", "ls", check=False).returncode == 0, 60,
                     "the promoted node answering cluster calls")
    role = leaf(promoted).subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value
    assert role == "swarm-manager"
    # Its agent's session started over as it became a manager: let it settle before rotating.
    cluster.wait_for(lambda: nodes_ready(manager, 3), 30, "every node ready after the promotion")
    before = manager.docker("swarm", "ca").stdout.strip()
    # Started through the new manager, which forwards it to the leader. Its progress is read on the
    # leader: a follower may answer from a store that has not applied the update yet (request F-5).
    promoted.docker("swarm", "ca", "--rotate", "--detach")

    def finished() -> bool:
        info = manager.docker_json("info", "--format", "{{json .Swarm.Cluster}}")
        statuses = manager.docker("node", "ls", "--format", "{{.TLSStatus}}").stdout.split()
        return (not info["RootRotationInProgress"] and info["TLSInfo"]["TrustRoot"].strip() != before
                and statuses == ["Ready"] * 3)

    cluster.wait_for(finished, 60, "the rotation started on n3 finished on every node")
    root = manager.docker("swarm", "ca").stdout.strip()
    for name in ("n1", "n2", "n3"):
        chain, trusted = certificate_files(cluster.node(name))
        assert trusted.decode().strip() == root
        first = x509.load_pem_x509_certificates(chain)[0].public_bytes(serialization.Encoding.PEM)
        assert csr.verify_issued_by(first, trusted)
    cluster.wait_for(lambda: nodes_ready(manager, 3), 30, "every node ready after the rotation")


def test_a_renewal_that_fails_is_retried(cluster: TestCluster) -> None:
    manager, worker = cluster.node("n1"), cluster.node("n2")
    task = running_task(manager)
    # Heartbeats slow enough that the worker is not marked down while it is cut off.
    log = worker.daemon.log_path
    told_before = log.read_text().count("heartbeat period now 60 s")
    manager.docker("swarm", "update", "--dispatcher-heartbeat", "60s", "--cert-expiry", "60s")
    # Until an answer has told the worker the new period, the manager still expects it every second.
    cluster.wait_for(lambda: log.read_text().count("heartbeat period now 60 s") > told_before, 30,
                     "the worker's agent told the 60 s heartbeat period")
    rotate(manager)  # certificates of 60 s: the worker's renewal is due 0-36 s after this
    issued = leaf(worker)
    failures_before = log.read_text().count("certificate renew failed")
    cluster.network.cut(worker.host, manager.host)
    try:
        cluster.wait_for(lambda: log.read_text().count("certificate renew failed") > failures_before, 60,
                         "the worker's renewal failing while it cannot reach the manager")
    finally:
        cluster.network.heal(worker.host)
    assert "retrying in 5 s" in log.read_text()
    cluster.wait_for(lambda: leaf(worker).serial_number != issued.serial_number, 30,
                     "the worker's renewal retried and done once it can reach the manager again")
    assert datetime.now(UTC) < issued.not_valid_after_utc
    # (The heartbeat stays at 60 s: lowering it now would find every agent, still beating at 30 s, late.)
    manager.docker("swarm", "update", "--cert-expiry", "2160h")
    cluster.wait_for(lambda: nodes_ready(manager, 3), 30, "every node ready")
    assert running_task(manager) == task and task_history(manager) == [task]
