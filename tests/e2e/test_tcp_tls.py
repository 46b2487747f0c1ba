"""The Engine API on TCP with TLS, as dockerd serves it (`-H tcp://…:2376 --tlsverify --tlscacert
--tlscert --tlskey`), driven by the real docker CLI and docker-py against a real shoald; and shoald's
refusal to serve plain TCP on a reachable address unless told it is meant."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import requests
from docker.errors import DockerException

from shoal.testing.daemon import DOCKER_CLI, ShoalDaemon
from shoal.testing.pki import CertFiles, TestCA

DOCKER = DOCKER_CLI


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CertFiles]:
    root = tmp_path_factory.mktemp("pki")
    ours, theirs = TestCA("ours"), TestCA("theirs")
    return {
        "server": ours.issue("shoald").write(root / "server"),
        "client": ours.issue("client").write(root / "client"),
        "stranger": theirs.issue("client").write(root / "stranger"),
    }


@pytest.fixture(scope="module")
def tls_daemon(
    tmp_path_factory: pytest.TempPathFactory, pki: dict[str, CertFiles]
) -> Iterator[tuple[ShoalDaemon, int]]:
    port = free_port()
    server = pki["server"]
    shoald = ShoalDaemon(Path(tmp_path_factory.mktemp("shoald-tls")), extra_args=[
        "-H", f"tcp://127.0.0.1:{port}", "--tlsverify", "--tlscacert", str(server.ca),
        "--tlscert", str(server.cert), "--tlskey", str(server.key)])
    shoald.start()
    try:
        yield shoald, port
    finally:
        shoald.stop()


def docker_cli(port: int, *tls_args: str) -> subprocess.CompletedProcess[str]:
    if DOCKER is None:
        pytest.skip("no docker CLI")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    return subprocess.run([DOCKER, *tls_args, "-H", f"tcp://127.0.0.1:{port}", "version", "--format",
                           "{{.Server.APIVersion}}"], env=env, capture_output=True, text=True, timeout=60)


def cert_args(files: CertFiles, ca: Path) -> list[str]:
    return ["--tlsverify", "--tlscacert", str(ca), "--tlscert", str(files.cert), "--tlskey", str(files.key)]


def test_docker_cli_with_the_right_client_certificate(tls_daemon: tuple[ShoalDaemon, int],
                                                       pki: dict[str, CertFiles]) -> None:
    result = docker_cli(tls_daemon[1], *cert_args(pki["client"], pki["server"].ca))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1.41"


def test_docker_cli_without_a_client_certificate_is_refused(tls_daemon: tuple[ShoalDaemon, int],
                                                             pki: dict[str, CertFiles]) -> None:
    result = docker_cli(tls_daemon[1], "--tlsverify", "--tlscacert", str(pki["server"].ca))
    assert result.returncode != 0
    assert "1.41" not in result.stdout
    assert "error during connect" in result.stderr


def test_docker_cli_with_a_certificate_from_another_ca_is_refused(tls_daemon: tuple[ShoalDaemon, int],
                                                                   pki: dict[str, CertFiles]) -> None:
    result = docker_cli(tls_daemon[1], *cert_args(pki["stranger"], pki["server"].ca))
    assert result.returncode != 0
    assert "1.41" not in result.stdout


def test_docker_cli_without_tls_gets_no_answer(tls_daemon: tuple[ShoalDaemon, int]) -> None:
    result = docker_cli(tls_daemon[1])
    assert result.returncode != 0
    assert "1.41" not in result.stdout


def test_docker_py_with_and_without_a_client_certificate(
    tls_daemon: tuple[ShoalDaemon, int], pki: dict[str, CertFiles], monkeypatch: pytest.MonkeyPatch
) -> None:
    # requests lets these variables override the session's CA (docker-py's ca_cert): unset them, as
    # a machine that has not pinned a system bundle would have them.
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    url = f"https://127.0.0.1:{tls_daemon[1]}"
    ca = str(pki["server"].ca)
    good = docker.tls.TLSConfig(client_cert=(str(pki["client"].cert), str(pki["client"].key)), ca_cert=ca, verify=True)
    client = docker.DockerClient(base_url=url, tls=good, version="auto", timeout=20)
    try:
        assert client.ping() is True
        assert client.version()["ApiVersion"] == "1.41"
    finally:
        client.close()
    stranger = docker.tls.TLSConfig(client_cert=(str(pki["stranger"].cert), str(pki["stranger"].key)), ca_cert=ca,
                                    verify=True)
    for tls in (docker.tls.TLSConfig(ca_cert=ca, verify=True), stranger):
        with pytest.raises((DockerException, requests.exceptions.RequestException)) as caught:
            docker.DockerClient(base_url=url, tls=tls, version="auto", timeout=20).ping()
        assert "CERTIFICATE_VERIFY_FAILED" not in str(caught.value)  # the server refused, not the client


def test_plain_http_to_the_tls_port_fails(tls_daemon: tuple[ShoalDaemon, int]) -> None:
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"http://127.0.0.1:{tls_daemon[1]}/_ping", timeout=20)


def test_plain_tcp_on_a_reachable_address_is_refused(tmp_path: Path) -> None:
    data_root = tmp_path / "data"
    port = free_port()
    result = subprocess.run(
        [sys.executable, "-m", "shoal.node.daemon", "-H", f"tcp://0.0.0.0:{port}", "--data-root", str(data_root)],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last == (
        f"shoald: failed to start daemon: refusing to serve the API on tcp://0.0.0.0:{port} without TLS client "
        "verification: anyone who can reach it gets root on this machine. Use --tlsverify with --tlscacert, "
        "--tlscert and --tlskey, or pass --tls=false (or --tlsverify=false) to say you mean it")
    assert "Traceback" not in result.stderr
    assert not data_root.exists()
