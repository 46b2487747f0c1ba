"""The plaintext header every WAL segment and snapshot file opens with.

It is the payload of the file's first framed record (offset 0), not sealed, because it says how
to derive the key that opens the rest::

    kind (4 bytes: b"SWAL" or b"SSNP") | data key id u32 | file id u64 | salt (32 bytes)

The file id is the segment's sequence number or the snapshot's index and must match the file's
name. Nothing here is secret; a changed byte derives another subkey, so every record after it
fails to authenticate.
"""

from __future__ import annotations

import struct

from shoal.manager.wal.crypto import SALT_SIZE, FileKeying

WAL_FILE = b"SWAL"
SNAPSHOT_FILE = b"SSNP"
_LAYOUT = struct.Struct(f"<4sIQ{SALT_SIZE}s")


def encode_file_header(kind: bytes, keying: FileKeying) -> bytes:
    return _LAYOUT.pack(kind, keying.key_id, keying.file_id, keying.salt)


def decode_file_header(payload: bytes, kind: bytes) -> FileKeying:
    """Raises ValueError when ``payload`` is not a header of a ``kind`` file."""
    if len(payload) != _LAYOUT.size:
        raise ValueError(f"file header of {len(payload)} bytes, expected {_LAYOUT.size}")
    found, key_id, file_id, salt = _LAYOUT.unpack(payload)
    if found != kind:
        raise ValueError(f"file header says {found!r}, expected {kind!r}")
    return FileKeying(key_id, salt, file_id)
