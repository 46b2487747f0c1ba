"""A tiny backend for mesh tests: answers each HTTP request (TCP) and each datagram (UDP) on one port
with its own name. Usage: python3 name_server.py NAME PORT [HOST]; prints "ready" once listening."""

from __future__ import annotations

import asyncio
import sys


class NameDatagrams(asyncio.DatagramProtocol):
    def __init__(self, name: bytes) -> None:
        self.name = name
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(self.name, addr)


async def start(name: str, port: int, host: str) -> tuple[asyncio.Server, asyncio.DatagramTransport]:
    """Start answering on host:port (TCP and UDP); returns both so a test can stop them."""
    body = name.encode()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            head = f"HTTP/1.0 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            writer.write(head + body)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(answer, host, port, reuse_address=True)
    loop = asyncio.get_running_loop()
    datagrams, _ = await loop.create_datagram_endpoint(lambda: NameDatagrams(body), local_addr=(host, port))
    return server, datagrams


async def serve(name: str, port: int, host: str) -> None:
    server, _ = await start(name, port, host)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1], int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else "0.0.0.0"))
