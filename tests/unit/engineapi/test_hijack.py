"""The protocol that owns a hijacked exec connection: stdin, half-close, flow control."""

from __future__ import annotations

import asyncio

from shoal.engineapi.hijack import HijackedConnection


class RecordingProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.calls: list[str] = []

    def pause_writing(self) -> None:
        self.calls.append("pause_writing")

    def resume_writing(self) -> None:
        self.calls.append("resume_writing")

    def connection_lost(self, exc: Exception | None) -> None:
        self.calls.append("connection_lost")


class RecordingTransport(asyncio.Transport):
    def __init__(self, protocol: asyncio.BaseProtocol) -> None:
        super().__init__()
        self._protocol = protocol
        self.reading = True

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True


async def test_half_close_ends_stdin_but_keeps_the_connection() -> None:
    original = RecordingProtocol()
    connection = HijackedConnection(RecordingTransport(original))
    connection.data_received(b"abc")
    assert connection.eof_received() is True
    assert await connection.read() == b"abc"
    assert await connection.read() is None
    assert original.calls == []


async def test_flow_control_and_loss_reach_aiohttps_protocol() -> None:
    original = RecordingProtocol()
    connection = HijackedConnection(RecordingTransport(original))
    connection.pause_writing()
    connection.resume_writing()
    connection.connection_lost(None)
    assert original.calls == ["pause_writing", "resume_writing", "connection_lost"]
    assert await connection.read() is None


async def test_reading_pauses_while_the_process_lags_and_resumes_when_drained() -> None:
    transport = RecordingTransport(RecordingProtocol())
    connection = HijackedConnection(transport)
    for _ in range(HijackedConnection.PAUSE_AT_CHUNKS):
        connection.data_received(b"x")
    assert transport.reading is False
    reads = 0
    while not transport.reading:
        assert await connection.read() == b"x"
        reads += 1
    # resumed once fewer than a quarter of the chunks are left waiting
    assert reads == HijackedConnection.PAUSE_AT_CHUNKS - HijackedConnection.PAUSE_AT_CHUNKS // 4 + 1
