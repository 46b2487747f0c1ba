"""Clients for mesh tests: ask a published port who answers, over TCP (HTTP) or UDP. Each ask is a new
connection (a new source port for UDP), so the mesh balances it afresh.

As a script (to ask from inside a network namespace):
    python3 mesh_client.py tcp|udp HOST PORT COUNT   -> one answer per line ("!error" on failure)"""

from __future__ import annotations

import asyncio
import sys

TIMEOUT = 2.0


async def ask_tcp(host: str, port: int, timeout: float = TIMEOUT) -> str:
    async def exchange() -> str:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(b"GET / HTTP/1.0\r\nHost: mesh\r\n\r\n")
            await writer.drain()
            response = await reader.read()
        finally:
            writer.close()
        head, _, body = response.partition(b"\r\n\r\n")
        if not (head.startswith(b"HTTP/1.") and head[8:13] == b" 200 "):
            raise ConnectionError(f"bad answer {response[:60]!r}")
        return body.decode()

    return await asyncio.wait_for(exchange(), timeout)


class _OneAnswer(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if not self.answer.done():
            self.answer.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc)


async def ask_udp(host: str, port: int, timeout: float = TIMEOUT) -> str:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(_OneAnswer, remote_addr=(host, port))
    try:
        transport.sendto(b"who?")
        return (await asyncio.wait_for(protocol.answer, timeout)).decode()
    finally:
        transport.close()


async def ask(protocol: str, host: str, port: int, timeout: float = TIMEOUT) -> str:
    return await (ask_tcp if protocol == "tcp" else ask_udp)(host, port, timeout)


async def ask_many(protocol: str, host: str, port: int, count: int, timeout: float = TIMEOUT) -> list[str]:
    """Answers of `count` asks in a row; a failed ask reads "!<error>"."""
    answers = []
    for _ in range(count):
        try:
            answers.append(await ask(protocol, host, port, timeout))
        except (OSError, TimeoutError, ConnectionError) as exc:
            answers.append(f"!{type(exc).__name__}")
    return answers


if __name__ == "__main__":
    proto, host, port, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    for line in asyncio.run(ask_many(proto, host, port, count)):
        print(line)
