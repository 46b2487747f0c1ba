"""`docker ps --filter publish=8080[/tcp]` and `--filter expose=8000-8090[/udp]`, as dockerd reads them
(daemon/list.go with go-connections' nat parsing): a port or a range, the protocol tcp unless named,
matched against a container's listed Ports (PublicPort for publish, PrivatePort for expose). dockerd
answers a value it cannot parse with 500 and Go's strconv text, which is kept here."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from shoal.api import errors

MAX_PORT = 65535


@dataclass(frozen=True)
class PortFilters:
    published: frozenset[str]  # "8080/tcp"
    exposed: frozenset[str]

    def __bool__(self) -> bool:
        return bool(self.published or self.exposed)

    def keeps(self, listed_ports: Iterable[Mapping[str, Any]]) -> bool:
        """Whether a container with these GET /containers/json Ports entries is shown."""
        if not self:
            return True
        for entry in listed_ports:
            kind = entry.get("Type", "")
            if f"{entry.get('PublicPort') or 0}/{kind}" in self.published:
                return True
            if f"{entry.get('PrivatePort') or 0}/{kind}" in self.exposed:
                return True
        return False


def port_filters(filters: Mapping[str, list[str]]) -> PortFilters:
    """The publish and expose filters of a container listing; Unknown (dockerd's 500) on a bad value."""
    return PortFilters(frozenset(_ports("publish", filters.get("publish", []))),
                       frozenset(_ports("expose", filters.get("expose", []))))


def _ports(key: str, values: list[str]) -> list[str]:
    found: list[str] = []
    for value in values:
        if ":" in value:
            raise errors.Unknown(f"filter for '{key}' should not contain ':': {value}")
        protocol, port = _split_protocol(value)
        try:
            start, end = _port_range(port)
        except ValueError as exc:
            raise errors.Unknown(f"error while looking up for {key} {value}: {exc}") from None
        found += [f"{number}/{protocol}" for number in range(start, end + 1)]
    return found


def _split_protocol(value: str) -> tuple[str, str]:
    """("tcp", "80") for "80", ("udp", "53") for "53/udp"; ("", "") when there is no port before a "/"."""
    parts = value.split("/")
    if not value or not parts[0]:
        return "", ""
    if len(parts) == 1 or not parts[1]:
        return "tcp", parts[0]
    return parts[1], parts[0]


def _port_range(text: str) -> tuple[int, int]:
    if not text:
        raise ValueError("Empty string specified for ports.")
    if "-" not in text:
        number = _parse_port(text)
        return number, number
    first, second = text.split("-")[:2]
    start, end = _parse_port(first), _parse_port(second)
    if end < start:
        raise ValueError(f"Invalid range specified for the Port: {text}")
    return start, end


def _parse_port(text: str) -> int:
    """As Go's strconv.ParseUint(text, 10, 16): the first bad digit or the first overflow, whichever
    the scan meets first, names the error."""
    if not text:
        raise ValueError(f'strconv.ParseUint: parsing "{text}": invalid syntax')
    number = 0
    for char in text:
        if not "0" <= char <= "9":
            raise ValueError(f'strconv.ParseUint: parsing "{text}": invalid syntax')
        number = number * 10 + int(char)
        if number > MAX_PORT:
            raise ValueError(f'strconv.ParseUint: parsing "{text}": value out of range')
    return number
