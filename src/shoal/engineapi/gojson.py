"""JSON as Go's encoding/json writes and reports it, since clients and transcripts see those bytes.

Encoding: compact, UTF-8, `<`, `>`, `&`, U+2028 and U+2029 escaped, a trailing newline (json.Encoder).
Decoding errors: Go's wording (`invalid character 'x' looking for beginning of value`, `unexpected EOF`).
"""

from __future__ import annotations

import json
from typing import Any

from shoal.api.errors import InvalidArgument

_GO_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def encode(value: Any) -> bytes:
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return (text.translate(_GO_ESCAPES) + "\n").encode()


def _quote_char(ch: str) -> str:
    """Go's %q for a rune inside single quotes."""
    if ch == "'":
        return "'\\''"
    if ch == "\\":
        return "'\\\\'"
    if ch.isprintable():
        return f"'{ch}'"
    return "'" + json.dumps(ch)[1:-1] + "'"


def _innermost_container(doc: str, pos: int) -> str:
    """'{' or '[' enclosing position pos (strings skipped), '' at top level."""
    stack: list[str] = []
    in_string = escaped = False
    for ch in doc[:pos]:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            stack.append(ch)
        elif ch in "}]" and stack:
            stack.pop()
    return stack[-1] if stack else ""


def go_decode_message(err: json.JSONDecodeError) -> str:
    doc, pos = err.doc, err.pos
    if pos >= len(doc.rstrip()) and err.msg != "Extra data":
        return "unexpected EOF"
    ch = _quote_char(doc[pos])
    if err.msg == "Extra data":
        return f"invalid character {ch} after top-level value"
    if err.msg.startswith("Expecting property name"):
        return f"invalid character {ch} looking for beginning of object key string"
    if err.msg == "Expecting ':' delimiter":
        return f"invalid character {ch} after object key"
    if err.msg == "Expecting ',' delimiter":
        if _innermost_container(doc, pos) == "[":
            return f"invalid character {ch} after array element"
        return f"invalid character {ch} after object key:value pair"
    if err.msg.startswith("Invalid control character"):
        return f"invalid character {ch} in string literal"
    return f"invalid character {ch} looking for beginning of value"


_GO_KIND = {str: "string", bool: "bool", int: "number", float: "number", list: "array"}


def decode_object(raw: bytes, go_type: str) -> dict[str, Any]:
    """A request body that must be a JSON object (Go decodes it into struct `go_type`)."""
    if not raw.strip():
        raise InvalidArgument("got EOF while reading request body")
    try:
        value = json.loads(raw.decode("utf-8", errors="replace"))
    except json.JSONDecodeError as err:
        raise InvalidArgument(go_decode_message(err)) from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        kind = _GO_KIND.get(type(value), "value")
        raise InvalidArgument(f"json: cannot unmarshal {kind} into Go value of type {go_type}")
    return value
