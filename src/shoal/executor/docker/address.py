"""Where the Docker Engine listens: a unix socket (the default) or plain tcp://host:port, written as
dockerd's -H and DOCKER_HOST are. TLS (tcp with certificates) is not supported."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

DEFAULT_SOCKET = "/var/run/docker.sock"
DEFAULT_TCP_PORT = 2375


@dataclass(frozen=True)
class EngineAddress:
    unix_path: str | None = None
    host: str | None = None
    port: int = DEFAULT_TCP_PORT

    @classmethod
    def parse(cls, text: str) -> EngineAddress:
        """`unix:///path`, a bare `/path`, or `tcp://host[:port]`."""
        if text.startswith("unix://"):
            return cls(unix_path=text.removeprefix("unix://"))
        if text.startswith("tcp://"):
            authority = text.removeprefix("tcp://").split("/", 1)[0]
            host, sep, port = authority.rpartition(":")
            if not sep:
                host, port = authority, str(DEFAULT_TCP_PORT)
            if not host or not port.isdigit():
                raise ValueError(f"invalid Docker host {text!r}: expected tcp://host:port")
            return cls(host=host.strip("[]"), port=int(port))
        if "://" in text:
            raise ValueError(f"unsupported Docker host {text!r}: use unix:// or tcp://")
        return cls(unix_path=text)

    @property
    def base_url(self) -> str:
        """The URL requests go to (the socket path is the connector's; the host name is a placeholder)."""
        return "http://docker" if self.unix_path is not None else f"http://{self.host}:{self.port}"

    def __str__(self) -> str:
        return f"unix://{self.unix_path}" if self.unix_path is not None else f"tcp://{self.host}:{self.port}"

    async def open_stream(self, limit: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.unix_path is not None:
            return await asyncio.open_unix_connection(self.unix_path, limit=limit)
        return await asyncio.open_connection(self.host, self.port, limit=limit)
