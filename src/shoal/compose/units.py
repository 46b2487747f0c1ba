"""The value syntaxes compose files share with the docker CLI: Go durations, go-units sizes and CPU counts."""

from __future__ import annotations

import re
from fractions import Fraction

from shoal.api.errors import InvalidArgument

_DURATION_PART = re.compile(r"(\d*\.?\d*)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
            "m": 60_000_000_000, "h": 3_600_000_000_000}
_SIZE = re.compile(r"^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$")
_BINARY = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def is_go_duration(text: str) -> bool:
    try:
        go_duration_ns(text)
    except InvalidArgument:
        return False
    return True


def go_duration_ns(text: str) -> int:
    """Go's time.ParseDuration in integer nanoseconds ("1m30s", "1.5h", "-2s", "0")."""
    body = text[1:] if text[:1] in "+-" else text
    sign = -1 if text.startswith("-") else 1
    if body == "0":
        return 0
    total = Fraction(0)
    position = 0
    while position < len(body):
        match = _DURATION_PART.match(body, position)
        if match is None or match.group(1) in ("", "."):
            unit_missing = re.match(r"\d*\.?\d*$", body[position:]) is not None and body[position:] != ""
            reason = "missing unit in duration" if unit_missing else "invalid duration"
            raise InvalidArgument(f'time: {reason} "{text}"')
        total += Fraction(match.group(1)) * _UNIT_NS[match.group(2)]
        position = match.end()
    if not body:
        raise InvalidArgument(f'time: invalid duration "{text}"')
    return sign * int(total)


def ram_in_bytes(value: str | int) -> int:
    """go-units RAMInBytes: "512m", "1g", "1.5GiB", "100" (binary multiples)."""
    if isinstance(value, int):
        return value
    match = _SIZE.match(value)
    if match is None:
        raise InvalidArgument(f"invalid size: '{value}'")
    number = float(match.group(1))
    unit = (match.group(2) or "").lower()
    return int(number * _BINARY.get(unit, 1))


def nano_cpus(value: str | float) -> int:
    """The CLI's ParseCPUs: a rational number of CPUs as integer nano-CPUs ("0.5" -> 500000000)."""
    try:
        cpus = Fraction(str(value))
    except (ValueError, ZeroDivisionError):
        raise InvalidArgument(f"failed to parse {value} as a rational number") from None
    nano = cpus * 1_000_000_000
    if nano.denominator != 1:
        raise InvalidArgument("value is too precise")
    return int(nano)
