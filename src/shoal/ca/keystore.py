"""A manager's private key files at rest: the node TLS key's PEM encryption, and a set of files that
must change together (the TLS key and the raft data key file are re-wrapped as one on every unlock key
change) without a crash ever leaving a set that no single key opens.

How a set changes (``SecretFileSet.replace``), each step durable before the next:
1. every file's new content goes to ``<file>.next``;
2. per file: ``<file>`` is renamed to ``<file>.prev``, then ``<file>.next`` to ``<file>``;
3. the ``.prev`` copies are removed.
A reader (``open_all``) tries, per file, ``<file>``, ``<file>.next`` and ``<file>.prev``. So after a
crash before step 3 the old key still opens every file, after step 1 the new one does too; once a key
has opened the set, ``replace`` with the opened contents leaves it clean again.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

T = TypeVar("T")
NEXT_SUFFIX = ".next"
PREV_SUFFIX = ".prev"
StepHook = Callable[[str], None]


class WrongKey(Exception):
    """A secret could not be opened with the key given (or was encrypted and no key was given)."""


# -- the node TLS key -----------------------------------------------------------------------------

def _load_private_key(pem: bytes, password: bytes | None) -> PrivateKeyTypes:
    try:
        return serialization.load_pem_private_key(pem, password=password)
    except TypeError:
        # Encrypted without a password given, or a password given for a key in the clear.
        raise WrongKey("the TLS key is encrypted with another key, or not encrypted") from None
    except ValueError:
        if b"ENCRYPTED" in pem:
            raise WrongKey("the TLS key does not decrypt with this key") from None
        raise


def decrypt_private_key(pem: bytes, password: bytes | None) -> bytes:
    """The key as unencrypted PKCS#8 PEM (kept in memory only); ``password`` None expects a key in
    the clear. Raises ``WrongKey``."""
    key = _load_private_key(pem, password)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def encrypt_private_key(plain_pem: bytes, password: bytes | None) -> bytes:
    """PKCS#8 PEM encrypted under ``password`` (PBES2 with AES-256, which OpenSSL and so ``ssl`` read
    given the password), or in the clear when ``password`` is None."""
    key = _load_private_key(plain_pem, None)
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


# -- files that change together ---------------------------------------------------------------------

def _write_durably(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sibling(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


class SecretFileSet:
    def __init__(self, paths: Sequence[Path], on_step: StepHook | None = None) -> None:
        self.paths = list(paths)
        self._on_step = on_step or (lambda _step: None)

    def versions(self, path: Path) -> list[bytes]:
        """What the file may hold after any crash, the current copy first."""
        found = []
        for candidate in (path, _sibling(path, NEXT_SUFFIX), _sibling(path, PREV_SUFFIX)):
            try:
                found.append(candidate.read_bytes())
            except FileNotFoundError:
                continue
        return found

    def open_all(self, opener: Callable[[Path, bytes], T]) -> dict[Path, T]:
        """Each file opened by ``opener`` from the first version it accepts. ``opener`` raises
        ``WrongKey`` for a version it cannot open; if no version of a file opens, the last
        ``WrongKey`` is raised. A file with no version at all raises ``FileNotFoundError``."""
        opened: dict[Path, T] = {}
        for path in self.paths:
            versions = self.versions(path)
            if not versions:
                raise FileNotFoundError(f"{path}: missing")
            failure: WrongKey | None = None
            for data in versions:
                try:
                    opened[path] = opener(path, data)
                    break
                except WrongKey as exc:
                    failure = exc
            else:
                assert failure is not None
                raise failure
        return opened

    def is_clean(self) -> bool:
        return not any(_sibling(p, s).exists() for p in self.paths for s in (NEXT_SUFFIX, PREV_SUFFIX))

    def replace(self, contents: Mapping[Path, bytes]) -> None:
        """Give every file of the set its new content (files 0600), crash-safely (see the module)."""
        if set(contents) != set(self.paths):
            raise ValueError("a replacement must cover every file of the set")
        dirs = sorted({p.parent for p in self.paths})
        for directory in dirs:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        for path in self.paths:
            _write_durably(_sibling(path, NEXT_SUFFIX), contents[path])
        for directory in dirs:
            _fsync_dir(directory)
        self._on_step("written")
        for path in self.paths:
            if path.exists():
                os.replace(path, _sibling(path, PREV_SUFFIX))
                _fsync_dir(path.parent)
                self._on_step(f"kept {path.name}")
            os.replace(_sibling(path, NEXT_SUFFIX), path)
            _fsync_dir(path.parent)
            self._on_step(f"replaced {path.name}")
        for path in self.paths:
            _sibling(path, PREV_SUFFIX).unlink(missing_ok=True)
            _fsync_dir(path.parent)
            self._on_step(f"dropped {path.name}")
