"""`docker exec` for process tasks: the shim enters the task's namespaces and cgroups and runs the
command; output streams back through pipes, the exit code is kept for exec inspect."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import struct
import termios
from dataclasses import dataclass, field

from shoal.base.ids import new_container_id
from shoal.executor.base import STDERR, STDOUT, ExecInfo
from shoal.executor.errors import ExecNotFound, ExecutorError

MAX_KEPT = 1024  # exec records kept for inspect; finished ones beyond this are forgotten


@dataclass
class ExecEntry:
    """One exec: created with its full command line, started at most once."""

    id: str
    container_id: str
    argv: tuple[str, ...]
    shim_cmd: list[str]
    env: dict[str, str]
    stdin: bool
    tty: bool = False
    user: str = ""
    session: ProcessExecSession | TtyExecSession | None = None
    pid: int | None = None
    exit_code: int | None = None


class ProcessExecSession:
    def __init__(self, entry: ExecEntry, proc: asyncio.subprocess.Process) -> None:
        self._entry = entry
        self._proc = proc
        self._chunks: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue()
        self._open_streams = 2
        self._pumps = [
            asyncio.create_task(self._pump(proc.stdout, STDOUT)),
            asyncio.create_task(self._pump(proc.stderr, STDERR)),
        ]
        # the exit code is recorded even if nobody waits, so exec inspect shows it
        self._exited = asyncio.create_task(self._record_exit())

    @property
    def exec_id(self) -> str:
        return self._entry.id

    async def _pump(self, reader: asyncio.StreamReader | None, stream: int) -> None:
        if reader is not None:
            while chunk := await reader.read(65536):
                await self._chunks.put((stream, chunk))
        await self._chunks.put(None)

    async def read(self) -> tuple[int, bytes] | None:
        while self._open_streams:
            item = await self._chunks.get()
            if item is not None:
                return item
            self._open_streams -= 1
        return None

    async def write(self, data: bytes) -> None:
        if self._proc.stdin is None:
            raise ExecutorError("exec was created without stdin")
        self._proc.stdin.write(data)
        await self._proc.stdin.drain()

    async def close_stdin(self) -> None:
        if self._proc.stdin is not None and not self._proc.stdin.is_closing():
            self._proc.stdin.close()
            with contextlib.suppress(ConnectionError):
                await self._proc.stdin.wait_closed()

    async def _record_exit(self) -> int:
        code = await self._proc.wait()
        await asyncio.gather(*self._pumps)
        self._entry.exit_code = code if code >= 0 else 128 - code  # killed by N: 128+N
        return self._entry.exit_code

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)


class TtyExecSession:
    """An exec on a terminal: one output stream (stdout, as Docker reports tty output), input
    typed into the terminal, and a window size that can change."""

    def __init__(self, entry: ExecEntry, proc: asyncio.subprocess.Process, master: int) -> None:
        self._entry = entry
        self._proc = proc
        self._master = master
        self._chunks: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._eof = False
        os.set_blocking(master, False)
        asyncio.get_running_loop().add_reader(master, self._readable)
        self._exited = asyncio.create_task(self._record_exit())

    @property
    def exec_id(self) -> str:
        return self._entry.id

    def _readable(self) -> None:
        try:
            chunk = os.read(self._master, 65536)
        except BlockingIOError:
            return
        except OSError:  # EIO: every process holding the terminal is gone
            chunk = b""
        if chunk:
            self._chunks.put_nowait(chunk)
            return
        asyncio.get_running_loop().remove_reader(self._master)
        self._eof = True
        self._chunks.put_nowait(None)

    async def read(self) -> tuple[int, bytes] | None:
        if self._eof and self._chunks.empty():
            return None
        chunk = await self._chunks.get()
        return None if chunk is None else (STDOUT, chunk)

    async def write(self, data: bytes) -> None:
        while data:
            try:
                data = data[os.write(self._master, data) :]
            except BlockingIOError:
                await asyncio.sleep(0.01)  # the terminal's input buffer is full: the reader lags

    async def close_stdin(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._master, b"\x04")  # end of input on a terminal is ^D

    def resize(self, height: int, width: int) -> None:
        fcntl.ioctl(self._master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))

    async def _record_exit(self) -> int:
        code = await self._proc.wait()
        while not self._eof:  # let the output drain before the terminal goes
            await asyncio.sleep(0.01)
        os.close(self._master)
        self._entry.exit_code = code if code >= 0 else 128 - code
        return self._entry.exit_code

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)


@dataclass
class ExecRegistry:
    entries: dict[str, ExecEntry] = field(default_factory=dict)

    def create(
        self,
        container_id: str,
        argv: list[str],
        shim_cmd: list[str],
        env: dict[str, str],
        stdin: bool,
        tty: bool = False,
        user: str = "",
    ) -> str:
        self._prune()
        exec_id = new_container_id()
        self.entries[exec_id] = ExecEntry(exec_id, container_id, tuple(argv), shim_cmd, env, stdin, tty, user)
        return exec_id

    def _prune(self) -> None:
        """Forget the oldest finished execs beyond MAX_KEPT (dicts keep insertion order)."""
        finished = [key for key, entry in self.entries.items() if entry.exit_code is not None]
        for key in finished[: max(0, len(self.entries) + 1 - MAX_KEPT)]:  # room for the new one
            del self.entries[key]

    def get(self, exec_id: str) -> ExecEntry:
        try:
            return self.entries[exec_id]
        except KeyError:
            raise ExecNotFound(exec_id) from None

    async def start(self, exec_id: str) -> ProcessExecSession | TtyExecSession:
        entry = self.get(exec_id)
        if entry.session is not None:
            raise ExecutorError(f"exec {exec_id} has already been started")
        if entry.tty:
            master, slave = os.openpty()
            try:
                tty_proc = await asyncio.create_subprocess_exec(
                    *entry.shim_cmd, env=entry.env, stdin=slave, stdout=slave, stderr=slave
                )
            finally:
                os.close(slave)  # the command holds it now; EIO on the master once it is gone
            entry.pid = tty_proc.pid
            entry.session = TtyExecSession(entry, tty_proc, master)
            return entry.session
        proc = await asyncio.create_subprocess_exec(
            *entry.shim_cmd,
            env=entry.env,
            stdin=asyncio.subprocess.PIPE if entry.stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        entry.pid = proc.pid
        entry.session = ProcessExecSession(entry, proc)
        return entry.session

    def resize(self, exec_id: str, height: int, width: int) -> None:
        session = self.get(exec_id).session
        if isinstance(session, TtyExecSession):
            session.resize(height, width)

    def info(self, exec_id: str) -> ExecInfo:
        entry = self.get(exec_id)
        running = entry.session is not None and entry.exit_code is None
        return ExecInfo(
            entry.id, entry.container_id, entry.argv, running, entry.exit_code, entry.pid, entry.tty, entry.user
        )
