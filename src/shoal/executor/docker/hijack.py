"""A hijacked engine connection for exec: after `Upgrade: tcp` the unix socket carries the process's
stdin one way and its (stdcopy-framed unless TTY) output the other, as `docker exec -i` uses it.
aiohttp cannot hand over a connection, so this speaks the one HTTP request itself."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from typing import Any

from shoal.executor.docker.address import EngineAddress
from shoal.executor.docker.engine import EngineUnreachable, error_for_status

_READ_LIMIT = 1 << 16
_MAX_HEADER_BYTES = 1 << 16


@dataclass
class HijackedStream:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def close(self) -> None:
        self.writer.close()
        # The engine may already have closed its end.
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()


def build_request(path: str, body: Any) -> bytes:
    payload = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\n"
        "Host: docker\r\n"
        "Content-Type: application/json\r\n"
        "Connection: Upgrade\r\n"
        "Upgrade: tcp\r\n"
        f"Content-Length: {len(payload)}\r\n"
        "\r\n"
    )
    return head.encode("ascii") + payload


def parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise ValueError(f"bad status line from engine: {lines[0]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
    return int(parts[1]), headers


async def open_hijacked(address: EngineAddress, path: str, body: Any) -> HijackedStream:
    """POST `path` with an upgrade request; returns the raw stream once the engine agreed (101 or 200)."""
    try:
        reader, writer = await address.open_stream(_READ_LIMIT)
    except OSError as error:
        raise EngineUnreachable(address, str(error)) from error
    stream = HijackedStream(reader, writer)
    try:
        writer.write(build_request(path, body))
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        if len(head) > _MAX_HEADER_BYTES:
            raise ValueError("engine answer header too long")
        status, headers = parse_head(head[:-4])
        if status >= 400:
            length = int(headers.get("content-length", "0") or 0)
            raw = await reader.readexactly(length) if length else await reader.read(_READ_LIMIT)
            raise error_for_status(status, _message(raw, status))
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError) as error:
        await stream.close()
        raise EngineUnreachable(address, f"exec stream broke: {error}") from error
    except BaseException:
        await stream.close()
        raise
    return stream


def _message(raw: bytes, status: int) -> str:
    try:
        decoded = json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace").strip() or f"HTTP {status}"
    if isinstance(decoded, dict) and isinstance(decoded.get("message"), str):
        return str(decoded["message"])
    return raw.decode(errors="replace").strip()
