"""What crosses the cluster port: msgpack envelopes that carry a protocol version.

Every body is ``{"v": VERSION, "ok": <result>}`` or ``{"v": VERSION, "err": {code, message, grpc}}``.
A peer that speaks another version is refused with a message that names both, so a newer shoald
either joins an older cluster (when the versions match) or says clearly why it cannot. Errors keep
their category across the wire: a NotFound raised on the leader is a NotFound for the caller, and a
gRPC code this side has no class for (e.g. Internal) comes back as an Unknown that keeps its code.
"""

from __future__ import annotations

from typing import Any

import msgpack

from shoal.api import errors

VERSION = 1
MAX_MESSAGE_BYTES = 64 << 20

_ERRORS_BY_CODE: dict[str, type[errors.ShoalError]] = {
    cls.code: cls
    for cls in (
        errors.NotFound, errors.InvalidArgument, errors.AlreadyExists, errors.Conflict,
        errors.FailedPrecondition, errors.Unavailable, errors.Forbidden, errors.NotImplementedYet, errors.Unknown,
    )
}


_OTHER_CODES: dict[str, type[errors.ShoalError]] = {}


def _error_class(code: str) -> type[errors.ShoalError]:
    known = _ERRORS_BY_CODE.get(code)
    if known is not None:
        return known
    if code not in _OTHER_CODES:
        _OTHER_CODES[code] = type(f"Remote{code}Error", (errors.Unknown,), {"code": code})
    return _OTHER_CODES[code]


class ProtocolError(errors.InvalidArgument):
    """A message that is not a cluster-port envelope of our version."""


def encode_result(result: Any) -> bytes:
    return bytes(msgpack.packb({"v": VERSION, "ok": result}, use_bin_type=True))


def encode_error(error: errors.ShoalError) -> bytes:
    body = {"code": error.code, "message": error.message, "grpc": error.grpc}
    return bytes(msgpack.packb({"v": VERSION, "err": body}, use_bin_type=True))


def encode_request(body: Any) -> bytes:
    return encode_result(body)


def _unpack(data: bytes) -> dict[str, Any]:
    if len(data) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"cluster message of {len(data)} bytes exceeds {MAX_MESSAGE_BYTES}")
    try:
        envelope = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
        raise ProtocolError(f"malformed cluster message: {exc}") from None
    if not isinstance(envelope, dict) or "v" not in envelope:
        raise ProtocolError("malformed cluster message: no protocol version")
    if envelope["v"] != VERSION:
        raise ProtocolError(
            f"peer speaks cluster protocol version {envelope['v']!r}, this shoald speaks {VERSION}: "
            "upgrade the older side"
        )
    return envelope


def decode_request(data: bytes) -> Any:
    envelope = _unpack(data)
    if "ok" not in envelope:
        raise ProtocolError("malformed cluster request: no body")
    return envelope["ok"]


def decode_response(data: bytes) -> Any:
    """The result, or the error the other side raised (re-raised here with its category)."""
    envelope = _unpack(data)
    if "err" in envelope:
        err = envelope["err"]
        if not isinstance(err, dict):
            raise ProtocolError("malformed cluster error")
        code = str(err.get("code"))
        cls = _error_class(code) if code.isalpha() and len(code) <= 40 else errors.Unknown
        raise cls(str(err.get("message", "")), grpc=bool(err.get("grpc")))
    if "ok" not in envelope:
        raise ProtocolError("malformed cluster response: no result")
    return envelope["ok"]
