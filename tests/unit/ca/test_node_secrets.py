"""A manager's secrets at rest (TLS key and raft data keys): wrapped under the unlock key with
autolock, re-wrapped as one set when the key changes, and never left unopenable by a crash."""

from __future__ import annotations

import base64
import ssl
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shoal.api import errors
from shoal.ca import certs, keystore
from shoal.ca.unlock_key import format_unlock_key, generate_raw_key, parse_unlock_key, tls_key_password
from shoal.manager.wal.crypto import DataKey, KeyRing
from shoal.node import identity as ident

NOW = datetime(2026, 1, 1, tzinfo=UTC)


class Crash(Exception):
    pass


@pytest.fixture(scope="module")
def node_pair() -> tuple[certs.KeyPair, certs.KeyPair]:
    root = certs.create_root_ca(NOW)
    return root, certs.issue_node_certificate(root, "node1", certs.ROLE_MANAGER, "cluster1", NOW)


def new_member(swarm_dir: Path, node_pair: tuple[certs.KeyPair, certs.KeyPair], key: bytes | None) -> ident.NodeSecrets:
    root, node = node_pair
    ring = KeyRing(DataKey.generate())
    ident.save_certificates(swarm_dir, root.cert_pem, node, ring, key)
    return ident.NodeSecrets(node.key_pem, ring)


def same(a: ident.NodeSecrets, b: ident.NodeSecrets) -> bool:
    return (a.tls_key_pem, a.data_keys.active, a.data_keys.retired) == (
        b.tls_key_pem, b.data_keys.active, b.data_keys.retired)


def every_file(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


def secret_forms(secrets: ident.NodeSecrets) -> list[bytes]:
    """The secrets as they could appear in a file: raw, hex, base64, and the PEM body of the TLS key."""
    dek = secrets.data_keys.active.secret
    pem_body = b"".join(line for line in secrets.tls_key_pem.splitlines() if not line.startswith(b"-----"))
    return [dek, dek.hex().encode(), base64.b64encode(dek), pem_body, pem_body[:40]]


def test_the_unlock_key_round_trips_and_a_malformed_one_is_refused() -> None:
    raw = generate_raw_key()
    text = format_unlock_key(raw)
    assert text.startswith("SWMKEY-1-") and not text.endswith("=")
    assert parse_unlock_key(text) == raw
    with pytest.raises(errors.InvalidArgument, match=r"^invalid key string$"):
        parse_unlock_key("SWMTKN-1-abc")
    with pytest.raises(errors.InvalidArgument, match="invalid key string: illegal base64 data"):
        parse_unlock_key("SWMKEY-1-not*base64")


def test_without_autolock_the_secrets_open_with_no_key(tmp_path: Path, node_pair: tuple[certs.KeyPair,
                                                                                      certs.KeyPair]) -> None:
    secrets = new_member(tmp_path, node_pair, None)
    assert same(ident.load_secrets(tmp_path, None), secrets)
    with pytest.raises(ident.Locked):
        ident.load_secrets(tmp_path, generate_raw_key())


def test_with_autolock_only_the_right_key_opens_them_and_nothing_is_in_clear(
    tmp_path: Path, node_pair: tuple[certs.KeyPair, certs.KeyPair]
) -> None:
    key = generate_raw_key()
    secrets = new_member(tmp_path, node_pair, key)
    on_disk = every_file(tmp_path)
    for form in secret_forms(secrets):
        assert form not in on_disk
    with pytest.raises(ident.Locked):
        ident.load_secrets(tmp_path, None)
    with pytest.raises(ident.Locked):
        ident.load_secrets(tmp_path, generate_raw_key())
    assert same(ident.load_secrets(tmp_path, key), secrets)


def test_ssl_loads_the_encrypted_tls_key_with_its_password(
    tmp_path: Path, node_pair: tuple[certs.KeyPair, certs.KeyPair]
) -> None:
    key = generate_raw_key()
    new_member(tmp_path, node_pair, key)
    cert_dir = tmp_path / "certificates"
    assert b"ENCRYPTED PRIVATE KEY" in (cert_dir / "swarm-node.key").read_bytes()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_cert_chain(cert_dir / "swarm-node.crt", cert_dir / "swarm-node.key", password=tls_key_password(key))
    with pytest.raises(ssl.SSLError):
        context.load_cert_chain(cert_dir / "swarm-node.crt", cert_dir / "swarm-node.key",
                                password=tls_key_password(generate_raw_key()))


def test_rotation_rewraps_both_files_and_the_old_key_stops_working(
    tmp_path: Path, node_pair: tuple[certs.KeyPair, certs.KeyPair]
) -> None:
    old, new = generate_raw_key(), generate_raw_key()
    secrets = new_member(tmp_path, node_pair, old)
    before = {p: ident.node_key_path(tmp_path).read_bytes() for p in (ident.node_key_path(tmp_path),)}
    ident.store_secrets(tmp_path, secrets, new)
    assert ident.node_key_path(tmp_path).read_bytes() != before[ident.node_key_path(tmp_path)]
    assert same(ident.load_secrets(tmp_path, new), secrets)
    with pytest.raises(ident.Locked):
        ident.load_secrets(tmp_path, old)
    # Autolock off: in the clear again, and no key is needed.
    ident.store_secrets(tmp_path, secrets, None)
    assert same(ident.load_secrets(tmp_path, None), secrets)
    assert secrets.tls_key_pem in every_file(tmp_path)
    assert sorted(p.name for p in ident.dek_path(tmp_path).parent.iterdir()) == ["raft-dek.json"]


def replace_steps(tmp_path: Path, node_pair: tuple[certs.KeyPair, certs.KeyPair]) -> list[str]:
    steps: list[str] = []
    secrets = new_member(tmp_path / "probe", node_pair, None)
    ident.store_secrets(tmp_path / "probe", secrets, generate_raw_key(), on_step=steps.append)
    return steps


@pytest.mark.parametrize("from_clear", [False, True])
def test_a_crash_at_any_step_of_a_rotation_leaves_a_set_one_key_opens(
    tmp_path: Path, node_pair: tuple[certs.KeyPair, certs.KeyPair], from_clear: bool
) -> None:
    steps = replace_steps(tmp_path, node_pair)
    assert len(steps) == 7  # written, then kept/replaced per file, then dropped per file
    for number, crash_at in enumerate(steps):
        swarm_dir = tmp_path / f"crash{number}"
        old = None if from_clear else generate_raw_key()
        new = generate_raw_key()
        secrets = new_member(swarm_dir, node_pair, old)

        def crash(step: str, crash_at: str = crash_at) -> None:
            if step == crash_at:
                raise Crash(step)

        with pytest.raises(Crash):
            ident.store_secrets(swarm_dir, secrets, new, on_step=crash)
        dropping = crash_at.startswith("dropped")
        if not dropping:
            # Until the old copies are dropped, the key the user may still only know works...
            assert same(ident.load_secrets(swarm_dir, old), secrets), crash_at
            assert keystore.SecretFileSet([ident.node_key_path(swarm_dir), ident.dek_path(swarm_dir)]).is_clean()
            # ...and having opened the set it tidied it up under that key.
            with pytest.raises(ident.Locked):
                ident.load_secrets(swarm_dir, new)
        else:
            # Once every new copy is in place the new key opens the set and the old one no longer does.
            assert same(ident.load_secrets(swarm_dir, new), secrets), crash_at
            with pytest.raises(ident.Locked):
                ident.load_secrets(swarm_dir, old)


def test_the_new_key_opens_the_set_from_the_moment_it_is_written(
    tmp_path: Path, node_pair: tuple[certs.KeyPair, certs.KeyPair]
) -> None:
    steps = replace_steps(tmp_path, node_pair)
    for number, crash_at in enumerate(steps):
        swarm_dir = tmp_path / f"crash{number}"
        old, new = generate_raw_key(), generate_raw_key()
        secrets = new_member(swarm_dir, node_pair, old)

        def crash(step: str, crash_at: str = crash_at) -> None:
            if step == crash_at:
                raise Crash(step)

        with pytest.raises(Crash):
            ident.store_secrets(swarm_dir, secrets, new, on_step=crash)
        assert same(ident.load_secrets(swarm_dir, new), secrets), crash_at


def test_a_damaged_tls_key_is_not_taken_for_a_wrong_key(
    tmp_path: Path, node_pair: tuple[certs.KeyPair, certs.KeyPair]
) -> None:
    new_member(tmp_path, node_pair, None)
    ident.node_key_path(tmp_path).write_bytes(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(ValueError):
        ident.load_secrets(tmp_path, None)
