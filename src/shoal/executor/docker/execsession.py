"""A started `docker exec`: output read from the hijacked stream, stdin written to it, and the exit
code taken from the engine once the process is gone."""

from __future__ import annotations

import asyncio

from shoal.executor.base import STDOUT
from shoal.executor.docker.engine import EngineClient
from shoal.executor.docker.hijack import HijackedStream
from shoal.executor.docker.status import exec_info_from_inspect
from shoal.executor.docker.stdcopy import FrameDecoder

_CHUNK = 1 << 16
# The engine records the exit code a moment after the output stream ends; poll it briefly.
_EXIT_POLL_S = 0.02


class DockerExecSession:
    def __init__(self, engine: EngineClient, exec_id: str, stream: HijackedStream, *, tty: bool) -> None:
        self._engine = engine
        self._exec_id = exec_id
        self._stream = stream
        self._tty = tty
        self._decoder = FrameDecoder()
        self._ready: list[tuple[int, bytes]] = []
        self._eof = False

    @property
    def exec_id(self) -> str:
        return self._exec_id

    async def read(self) -> tuple[int, bytes] | None:
        """The next (stream, chunk); None once the process closed its output."""
        while not self._ready:
            if self._eof:
                return None
            chunk = await self._stream.reader.read(_CHUNK)
            if not chunk:
                self._eof = True
                await self._stream.close()
                continue
            if self._tty:
                self._ready.append((STDOUT, chunk))
            else:
                self._ready.extend((int(stream), payload) for stream, payload in self._decoder.feed(chunk))
        return self._ready.pop(0)

    async def write(self, data: bytes) -> None:
        self._stream.writer.write(data)
        await self._stream.writer.drain()

    async def close_stdin(self) -> None:
        # Half-close: the engine closes the process's stdin and keeps sending its output.
        if self._stream.writer.can_write_eof() and not self._stream.writer.is_closing():
            self._stream.writer.write_eof()

    async def close(self) -> None:
        """Drop the stream without reading the rest (not in the ExecSession protocol yet: a caller that
        gives up early should call it, or the socket stays open until the process exits)."""
        self._eof = True
        await self._stream.close()

    async def wait(self) -> int:
        """The exit code. A caller that never reads output should not expect a chatty process to finish:
        its output pipe may fill, as with any exec."""
        while True:
            info = exec_info_from_inspect(await self._engine.call("GET", f"/exec/{self._exec_id}/json"))
            if not info.running and info.exit_code is not None:
                return info.exit_code
            await asyncio.sleep(_EXIT_POLL_S)
