"""Autolock through the real docker CLI: `swarm init --autolock` prints the unlock key; a restarted
manager stays locked (every cluster call refused with Swarm's message, `docker info` shows it locked,
its tasks left running) until `docker swarm unlock` gets the right key; while locked no key material is
readable in the clear anywhere under the data root. Rotation, and autolock turned off and on again."""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from shoal.ca.unlock_key import format_unlock_key, generate_raw_key, parse_unlock_key
from shoal.manager.wal.crypto import KeyRing
from shoal.manager.wal.storage import DiskStorage
from shoal.node import identity as ident
from shoal.testing.daemon import ShoalDaemon, cli_has, cli_requirement, wait_until

pytestmark = pytest.mark.skipif(**cli_requirement())

IMAGE = "my-apache2:latest"
LOCKED = ('Swarm is encrypted and needs to be unlocked before it can be used. Please use "docker swarm unlock" '
          "to unlock it.")
INVALID_KEY = "swarm could not be unlocked: invalid key provided"
UNLOCK_TEXT = ("To unlock a swarm manager after it restarts, run the `docker swarm unlock`\n"
               "command and provide the following key:\n\n    ")


@pytest.fixture(scope="module")
def locked_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShoalDaemon]:
    shoald = ShoalDaemon(Path(tmp_path_factory.mktemp("autolock")))
    shoald.start()
    try:
        yield shoald
    finally:
        if shoald.process is not None and swarm_state(shoald) == "locked":
            unlock(shoald, KEYS[-1], check=False)
        shoald.leave_and_stop()


KEYS: list[str] = []  # every unlock key the module's swarm had, newest last


def printed_key(output: str) -> str:
    assert UNLOCK_TEXT in output, output
    match = re.search(r"^    (SWMKEY-1-[A-Za-z0-9+/]+)$", output, re.M)
    assert match is not None, output
    KEYS.append(match.group(1))
    return match.group(1)


def swarm_state(daemon: ShoalDaemon) -> str:
    return str(daemon.docker("info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip())


def cluster(daemon: ShoalDaemon) -> Any:
    return daemon.docker_json("info", "--format", "{{json .Swarm.Cluster}}")


def unlock(daemon: ShoalDaemon, key: str, check: bool = True) -> Any:
    return daemon.docker("swarm", "unlock", input=key + "\n", check=check)


def running_tasks(daemon: ShoalDaemon, service: str) -> dict[str, dict[str, Any]]:
    ids = daemon.docker("service", "ps", "-q", "--no-trunc", service).stdout.split()
    found = daemon.docker_json("inspect", "--type", "task", *ids) if ids else []
    return {t["ID"]: t for t in found if t["DesiredState"] == "running" and t["Status"]["State"] == "running"}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def restart(daemon: ShoalDaemon) -> None:
    daemon.stop()  # SIGTERM: a clean daemon stop, as a host reboot or upgrade would do
    daemon.start()


# -- what must not be readable in the clear ----------------------------------------------------------

def forms(secret: bytes) -> list[bytes]:
    """The encodings a secret could be stored in: raw, hex, base64 (padded or not)."""
    b64 = base64.b64encode(secret)
    return [secret, secret.hex().encode(), secret.hex().upper().encode(), b64, b64.rstrip(b"="),
            base64.urlsafe_b64encode(secret).rstrip(b"=")]


def private_key_forms(pem: bytes) -> list[bytes]:
    """A PEM private key: each line of its body, its DER, and its EC private scalar in every form."""
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    scalar = key.private_numbers().private_value.to_bytes(32, "big")
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    body = [line for line in pem.splitlines() if line and not line.startswith(b"-----")]
    return [*body, der, *forms(scalar)]


def decrypted_store(swarm_dir: Path, keys: KeyRing) -> bytes:
    """Everything the manager's raft log and snapshot hold, opened with its data keys (on a copy, so the
    daemon's own files are not touched)."""
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "raft"
        shutil.copytree(ident.raft_dir(swarm_dir), copy)
        storage = DiskStorage.open(copy, keys=keys)
        try:
            data = [storage.snapshot().data]
            first, last = storage.first_index(), storage.last_index()
            data += [entry.data for entry in storage.entries(first, last + 1)]
        finally:
            storage.close()
    return b"".join(data)


def root_ca_key(store_bytes: bytes) -> bytes:
    match = re.search(rb"-----BEGIN PRIVATE KEY-----(.*?)-----END PRIVATE KEY-----", store_bytes, re.S)
    assert match is not None, "the root CA key is not in the store"
    body = match.group(1).replace(b"\\n", b"\n").strip()
    return b"-----BEGIN PRIVATE KEY-----\n" + body + b"\n-----END PRIVATE KEY-----\n"


def key_material(daemon: ShoalDaemon, unlock_key: str | None) -> dict[str, list[bytes]]:
    """Read, with the unlock key (None: autolock is off), the secrets the daemon (stopped) keeps under
    its data root."""
    swarm_dir = daemon.data_root / "swarm"
    secrets = ident.load_secrets(swarm_dir, parse_unlock_key(unlock_key) if unlock_key else None, tidy=False)
    store_bytes = decrypted_store(swarm_dir, secrets.data_keys)
    material = {
        "root CA key": private_key_forms(root_ca_key(store_bytes)),
        "node TLS key": private_key_forms(secrets.tls_key_pem),
    }
    if unlock_key:
        assert unlock_key.encode() in store_bytes  # the unlock key itself lives in the (sealed) store
        material["unlock key"] = [unlock_key.encode(), *forms(parse_unlock_key(unlock_key))]
    for number, key in enumerate((secrets.data_keys.active, *secrets.data_keys.retired)):
        material[f"data key {number}"] = forms(key.secret)
    return material


def clear_findings(root: Path, material: dict[str, list[bytes]]) -> list[str]:
    findings = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
        try:
            data = path.read_bytes()
        except OSError:
            continue  # sockets, fifos
        for what, needles in material.items():
            if any(needle in data for needle in needles):
                findings.append(f"{what} in {path}")
    return findings


# -- the tests -----------------------------------------------------------------------------------------

def test_a_restarted_autolocked_manager_stays_locked_until_the_right_key(locked_daemon: ShoalDaemon) -> None:
    daemon = locked_daemon
    init = daemon.docker("swarm", "init", "--autolock", "--advertise-addr", "127.0.0.1").stdout
    key = printed_key(init)
    assert daemon.docker("swarm", "unlock-key", "-q").stdout == key + "\n"
    assert cluster(daemon)["Spec"]["EncryptionConfig"]["AutoLockManagers"] is True
    daemon.docker("service", "create", "--detach", "--name", "sleeper", "--replicas", "2", IMAGE, "sleep", "3600")
    wait_until(lambda: len(running_tasks(daemon, "sleeper")) == 2, 30, "sleeper never ran 2 tasks")
    before = running_tasks(daemon, "sleeper")
    pids = {task_id: int(t["Status"]["ContainerStatus"]["PID"]) for task_id, t in before.items()}
    services_before = daemon.docker("service", "ls", "--format", "{{.ID}} {{.Name}} {{.Replicas}}").stdout
    cluster_id = cluster(daemon)["ID"]

    daemon.stop()
    material = key_material(daemon, key)
    daemon.start()

    assert swarm_state(daemon) == "locked"
    assert re.search(r"^ Swarm: locked$", daemon.docker("info").stdout, re.M)
    assert daemon.docker_json("info", "--format", "{{json .Swarm}}")["Error"] == LOCKED
    refused = [
        ("service", "ls"), ("service", "ps", "sleeper"), ("service", "inspect", "sleeper"), ("node", "ls"),
        ("swarm", "join-token", "worker"), ("swarm", "unlock-key"), ("swarm", "update", "--autolock=false"),
        ("service", "create", "--detach", "--name", "more", IMAGE, "sleep", "3600"),
        ("service", "rm", "sleeper"), ("swarm", "leave"),
    ]
    for args in refused:
        result = daemon.docker(*args, check=False)
        assert result.returncode != 0, args
        message = "Swarm is encrypted and locked." if args[1] == "leave" else LOCKED
        assert message in result.stderr, (args, result.stderr)
    assert daemon.docker("swarm", "init", check=False).stderr.strip().endswith("This node is already part of a "
                                                                              "swarm. Use \"docker swarm leave\" "
                                                                              "to leave this swarm and join "
                                                                              "another one.")
    assert all(alive(pid) for pid in pids.values()), "tasks were stopped while the manager is locked"
    # The engine's own calls stay served, as dockerd's do on a locked node: the tasks are visible.
    daemon.docker("version")
    names = daemon.docker("ps", "--format", "{{.Names}}").stdout.split()
    assert sorted(name.rsplit(".", 1)[1] for name in names if name.startswith("sleeper.")) == sorted(pids)
    assert clear_findings(daemon.data_root, material) == []

    for wrong in (format_unlock_key(generate_raw_key()), key[:-4] + "AAAA"):
        result = unlock(daemon, wrong, check=False)
        assert result.returncode != 0 and INVALID_KEY in result.stderr, result.stderr
    malformed = unlock(daemon, "SWMKEY-2-nope", check=False)
    assert "invalid key string" in malformed.stderr
    assert swarm_state(daemon) == "locked"

    unlock(daemon, key)
    assert swarm_state(daemon) == "active"
    assert cluster(daemon)["ID"] == cluster_id
    assert daemon.docker("service", "ls", "--format", "{{.ID}} {{.Name}} {{.Replicas}}").stdout == services_before
    wait_until(lambda: running_tasks(daemon, "sleeper").keys() == before.keys(), 30, "tasks did not come back")
    after = running_tasks(daemon, "sleeper")
    for task_id, task in after.items():
        assert int(task["Status"]["ContainerStatus"]["PID"]) == pids[task_id], "a task was restarted"
        assert task["Status"]["Timestamp"] == before[task_id]["Status"]["Timestamp"]
    unlocked = unlock(daemon, key, check=False)
    assert "swarm is not locked" in unlocked.stderr


def test_a_rotated_key_is_the_one_a_restart_needs(locked_daemon: ShoalDaemon) -> None:
    daemon = locked_daemon
    old = KEYS[-1]
    rotated = daemon.docker("swarm", "unlock-key", "--rotate").stdout
    if cli_has((28, 0), "unlock-key --rotate prints no blank line after its first line"):
        assert rotated.startswith("Successfully rotated manager unlock key.\n" + UNLOCK_TEXT)
    new = printed_key(rotated)
    assert new != old

    daemon.stop()
    material = key_material(daemon, new)
    daemon.start()
    assert swarm_state(daemon) == "locked"
    assert clear_findings(daemon.data_root, material) == []
    assert INVALID_KEY in unlock(daemon, old, check=False).stderr
    unlock(daemon, new)
    assert swarm_state(daemon) == "active"
    assert "sleeper" in daemon.docker("service", "ls").stdout


def test_autolock_off_needs_no_key_and_on_again_issues_a_new_one(locked_daemon: ShoalDaemon) -> None:
    daemon = locked_daemon
    daemon.docker("swarm", "update", "--autolock=false")
    assert "no unlock key is set" in daemon.docker("swarm", "unlock-key", check=False).stderr
    assert "cannot rotate because autolock is not turned on" in daemon.docker(
        "swarm", "unlock-key", "--rotate", check=False).stderr
    daemon.stop()
    # Without autolock the node's keys are stored in the clear (so the scan above can find them), while
    # the root CA key stays sealed in the store.
    found = {finding.split(" in ")[0] for finding in clear_findings(daemon.data_root, key_material(daemon, None))}
    assert found == {"node TLS key", "data key 0"}
    daemon.start()
    assert swarm_state(daemon) == "active"
    assert "sleeper" in daemon.docker("service", "ls").stdout

    again = daemon.docker("swarm", "update", "--autolock=true").stdout
    key = printed_key(again)
    assert key not in KEYS[:-1]
    restart(daemon)
    assert swarm_state(daemon) == "locked"
    unlock(daemon, key)
    assert swarm_state(daemon) == "active"


def shoal(daemon: ShoalDaemon, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCKER_HOST": daemon.docker_host}
    return subprocess.run([sys.executable, "-m", "shoal.cli", *args], env=env, capture_output=True, text=True,
                          timeout=120, input=input, check=False)


def test_the_shoal_cli_shows_rotates_and_unlocks(locked_daemon: ShoalDaemon) -> None:
    daemon = locked_daemon
    assert shoal(daemon, "swarm", "unlock-key", "-q").stdout == KEYS[-1] + "\n"
    rotated = shoal(daemon, "swarm", "unlock-key", "--rotate")
    assert rotated.stdout.startswith("Successfully rotated manager unlock key.\n" + UNLOCK_TEXT), rotated.stderr
    key = printed_key(rotated.stdout)
    assert "swarm is not locked" in shoal(daemon, "swarm", "unlock", input=key + "\n").stderr
    restart(daemon)
    wrong = shoal(daemon, "swarm", "unlock", input=KEYS[-2] + "\n")
    assert (wrong.returncode, wrong.stderr) == (1, f"Error response from daemon: {INVALID_KEY}\n")
    assert shoal(daemon, "swarm", "unlock", input=key + "\n").returncode == 0
    assert swarm_state(daemon) == "active"
    assert shoal(daemon, "swarm", "update", "--autolock", "false").stdout == "Swarm updated.\n"
    assert shoal(daemon, "swarm", "unlock-key").stderr == "no unlock key is set\n"
    turned_on = shoal(daemon, "swarm", "update", "--autolock", "true").stdout
    assert turned_on.startswith("Swarm updated.\n" + UNLOCK_TEXT)
    assert printed_key(turned_on) not in KEYS[:-1]


def test_leave_force_while_locked_forgets_the_swarm_and_its_tasks(tmp_path: Path) -> None:
    daemon = ShoalDaemon(tmp_path)
    daemon.start()
    try:
        printed_key(daemon.docker("swarm", "init", "--autolock", "--advertise-addr", "127.0.0.1").stdout)
        daemon.docker("service", "create", "--detach", "--name", "doomed", IMAGE, "sleep", "3600")
        wait_until(lambda: len(running_tasks(daemon, "doomed")) == 1, 30, "doomed never ran")
        pid = int(next(iter(running_tasks(daemon, "doomed").values()))["Status"]["ContainerStatus"]["PID"])
        restart(daemon)
        assert swarm_state(daemon) == "locked"
        assert alive(pid)
        daemon.docker("swarm", "leave", "--force")
        assert swarm_state(daemon) == "inactive"
        wait_until(lambda: not alive(pid), 30, "the task outlived leaving the swarm")
        restart(daemon)
        assert swarm_state(daemon) == "inactive"
    finally:
        daemon.leave_and_stop()


def test_repair_raft_log_reaches_the_log_of_a_locked_manager(tmp_path: Path) -> None:
    daemon = ShoalDaemon(tmp_path)
    daemon.start()
    try:
        key = printed_key(daemon.docker("swarm", "init", "--autolock", "--advertise-addr", "127.0.0.1").stdout)
        cluster_id = cluster(daemon)["ID"]
        daemon.docker("service", "create", "--detach", "--name", "lost", IMAGE, "sleep", "3600")
        daemon.stop()
        newest = sorted((daemon.data_root / "swarm").rglob("*.wal"))[-1]
        data = bytearray(newest.read_bytes())
        data[len(data.rstrip(b"\0")) - 10] ^= 0x01  # inside the last record written: damage, not a torn write
        newest.write_bytes(bytes(data))

        daemon.start()  # the API answers while locked: the log is only read once the key is given
        refused = unlock(daemon, key, check=False)
        assert refused.returncode != 0 and "--repair-raft-log" in refused.stderr, refused.stderr
        daemon.stop()
        daemon.extra_args = ["--repair-raft-log"]
        daemon.start()
        assert swarm_state(daemon) == "locked"
        unlock(daemon, key)
        assert swarm_state(daemon) == "active"
        assert cluster(daemon)["ID"] == cluster_id
    finally:
        daemon.leave_and_stop()
