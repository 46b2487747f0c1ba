"""shoald's dockerd-style flags: -H forms, --tls/--tlsverify and their defaults, the refusal of
unauthenticated TCP on a non-loopback address, and --repair-raft-log."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoal.api import errors
from shoal.node.config import DaemonConfig, is_loopback, unauthenticated_tcp_hosts
from shoal.node.daemon import StartupError, parse_args, start


def test_no_tls_flags_means_plain_listeners_and_no_explicit_choice() -> None:
    config = parse_args([])
    assert config.hosts == ["unix:///var/run/shoal.sock"]
    assert (config.tls, config.tls_verify) == (None, None)
    assert not config.api_tls and not config.api_verify_clients and not config.tls_chosen_explicitly
    assert config.repair_raft_log is False


@pytest.mark.parametrize(
    ("argv", "tls", "verify"),
    [
        (["--tlsverify"], True, True),
        (["--tlsverify=true"], True, True),
        # dockerd (since 20.10) verifies clients whenever TLS is on, unless --tlsverify=false says not to
        (["--tls"], True, True),
        (["--tls", "--tlsverify=false"], True, False),
        (["--tlsverify=false"], True, False),  # --tlsverify given at all turns TLS on, as dockerd
        (["--tls=false"], False, False),
        (["--tls=false", "--tlsverify"], True, True),
    ],
)
def test_tls_flags_combine_as_dockerd(argv: list[str], tls: bool, verify: bool) -> None:
    config = parse_args(argv)
    assert (config.api_tls, config.api_verify_clients) == (tls, verify)
    assert config.tls_chosen_explicitly


def test_certificate_paths_are_taken_as_given(tmp_path: Path) -> None:
    config = parse_args(["--tlsverify", "--tlscacert", str(tmp_path / "ca"), "--tlscert", str(tmp_path / "c"),
                         "--tlskey", str(tmp_path / "k")])
    assert (config.tls_ca_cert, config.tls_cert, config.tls_key) == (tmp_path / "ca", tmp_path / "c", tmp_path / "k")


def test_certificate_paths_default_to_docker_cert_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_CERT_PATH", str(tmp_path))
    config = parse_args(["--tlsverify"])
    assert (config.tls_ca_cert, config.tls_cert, config.tls_key) == (
        tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem")


def test_a_bad_boolean_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        parse_args(["--tls=maybe"])
    assert caught.value.code == 2
    assert "invalid boolean value 'maybe'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "hosts"),
    [
        (["-H", "tcp://:2375"], ["tcp://localhost:2375"]),  # dockerd: no host means localhost
        (["-H", "0.0.0.0:2380"], ["tcp://0.0.0.0:2380"]),
        (["-H", "tcp://127.0.0.1"], ["tcp://127.0.0.1:2375"]),
        (["--tlsverify", "-H", "tcp://127.0.0.1"], ["tcp://127.0.0.1:2376"]),
        (["-H", "tcp://[::1]:2376"], ["tcp://[::1]:2376"]),
        (["-H", "unix:///tmp/x.sock", "-H", "tcp://127.0.0.1:1"], ["unix:///tmp/x.sock", "tcp://127.0.0.1:1"]),
    ],
)
def test_hosts_are_normalized_as_dockerd(argv: list[str], hosts: list[str]) -> None:
    assert parse_args(argv).hosts == hosts


@pytest.mark.parametrize("host", ["fd://", "tcp://127.0.0.1:2375/path", "tcp://127.0.0.1:port", "ssh://h"])
def test_bad_hosts_are_usage_errors(host: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        parse_args(["-H", host])
    assert caught.value.code == 2
    assert f"invalid bind address ({host})" in capsys.readouterr().err


def test_repair_raft_log_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_args(["--repair-raft-log"]).repair_raft_log is True
    assert DaemonConfig().repair_raft_log is False
    with pytest.raises(SystemExit):
        parse_args(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--repair-raft-log cut a damaged raft log at the damage and start; entries after it are lost" in help_text


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.3.4.5", True), ("::1", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("192.0.2.7", False), ("no-such-host.invalid", False),
])
def test_loopback_detection(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize("host", ["tcp://0.0.0.0:2375", "tcp://[::]:2375", "tcp://192.0.2.7:2375"])
def test_plain_tcp_on_a_reachable_address_is_refused_without_an_explicit_choice(host: str) -> None:
    with pytest.raises(errors.InvalidArgument, match=r"--tls=false"):
        unauthenticated_tcp_hosts(parse_args(["-H", host]))


@pytest.mark.parametrize("flags", [["--tls=false"], ["--tlsverify=false"], ["--tls", "--tlsverify=false"]])
def test_an_explicit_choice_allows_unauthenticated_tcp_but_it_is_reported(flags: list[str]) -> None:
    config = parse_args(["-H", "unix:///tmp/x.sock", "-H", "tcp://0.0.0.0:2375", *flags])
    assert unauthenticated_tcp_hosts(config) == ["tcp://0.0.0.0:2375"]


def test_loopback_plain_tcp_is_allowed_and_verified_tcp_is_not_reported() -> None:
    assert unauthenticated_tcp_hosts(parse_args(["-H", "tcp://127.0.0.1:2375"])) == ["tcp://127.0.0.1:2375"]
    assert unauthenticated_tcp_hosts(parse_args(["-H", "tcp://0.0.0.0:2376", "--tlsverify"])) == []
    assert unauthenticated_tcp_hosts(parse_args(["-H", "unix:///tmp/x.sock"])) == []


async def test_a_refused_configuration_changes_nothing(tmp_path: Path) -> None:
    data_root = tmp_path / "data"
    config = parse_args(["-H", "tcp://0.0.0.0:2375", "--data-root", str(data_root)])
    with pytest.raises(StartupError, match=r"refusing to serve the API on tcp://0\.0\.0\.0:2375"):
        await start(config)
    assert not data_root.exists()


async def test_missing_certificates_are_refused_before_anything_is_created(tmp_path: Path) -> None:
    data_root = tmp_path / "data"
    config = parse_args(["-H", "tcp://127.0.0.1:2376", "--tlsverify", "--data-root", str(data_root),
                         "--tlscacert", str(tmp_path / "ca.pem"), "--tlscert", str(tmp_path / "cert.pem"),
                         "--tlskey", str(tmp_path / "key.pem")])
    with pytest.raises(StartupError, match="invalid TLS configuration: could not load X509 key pair"):
        await start(config)
    assert not data_root.exists()
