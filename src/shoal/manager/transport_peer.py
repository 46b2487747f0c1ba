"""One outgoing Raft stream to one peer: a bounded queue, a WebSocket that reconnects with
backoff, and the reports Raft needs (UNREACHABLE, SNAP_STATUS).

``enqueue`` never blocks and never waits for the network: a message that cannot be queued (queue
full, peer down) is dropped and the peer reported unreachable, which makes the leader probe it
again later. Raft tolerates loss; it does not tolerate a Ready loop stuck on a slow peer.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import ssl
from collections import deque
from dataclasses import dataclass
from typing import Protocol

import aiohttp

from shoal.manager.transport_codec import (
    FrameError,
    SnapshotAck,
    decode_frame,
    encode_batch,
    encode_snapshot,
)
from shoal.raft.types import Message, MessageType
from shoal.rpc import tls
from shoal.rpc.identity import Access, PeerPolicy, peer_identity

log = logging.getLogger(__name__)


class Reporter(Protocol):
    def report_unreachable(self, node_id: int) -> None: ...

    def report_snapshot(self, node_id: int, ok: bool) -> None: ...


@dataclass(frozen=True)
class PeerSettings:
    path: str = "/raft/v1/stream"
    max_queue: int = 4096
    max_batch_bytes: int = 1 << 20
    snapshot_chunk_bytes: int = 1 << 20
    max_frame_bytes: int = 64 << 20
    connect_timeout: float = 2.0
    snapshot_ack_timeout: float = 60.0
    heartbeat: float = 5.0
    backoff_initial: float = 0.05
    backoff_max: float = 1.0
    cluster_id: str | None = None


class PeerState(enum.Enum):
    CONNECTING = "connecting"  # queue accepts messages until the attempt ends
    UP = "up"
    DOWN = "down"  # waiting out a backoff: messages are dropped at once
    CLOSED = "closed"


class PeerSender:
    def __init__(
        self,
        node_id: int,
        address: str,
        *,
        session: aiohttp.ClientSession,
        ssl_context: ssl.SSLContext | None,
        reporter: Reporter,
        settings: PeerSettings,
    ) -> None:
        self.node_id = node_id
        self.address = address
        self._session = session
        self._ssl = ssl_context
        self._reporter = reporter
        self._settings = settings
        self._queue: deque[Message] = deque()
        self._wakeup = asyncio.Event()
        self._state = PeerState.CONNECTING
        self._acks: dict[int, asyncio.Future[bool]] = {}
        self._next_stream_id = 1
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0

    @property
    def state(self) -> PeerState:
        return self._state

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"raft-peer-{self.node_id}")

    async def close(self) -> None:
        self._state = PeerState.CLOSED
        self._wakeup.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._fail_queue()

    def set_reporter(self, reporter: Reporter) -> None:
        self._reporter = reporter

    def set_address(self, address: str) -> None:
        """Point the stream at a new address; the current connection is dropped and redialled."""
        if address == self.address:
            return
        self.address = address
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._fail_queue()
        self._state = PeerState.CONNECTING
        self.start()

    def enqueue(self, message: Message) -> None:
        if self._state in (PeerState.DOWN, PeerState.CLOSED) or len(self._queue) >= self._settings.max_queue:
            self._drop(message)
            return
        self._queue.append(message)
        self._wakeup.set()

    # --- internals ------------------------------------------------------------------------

    def _drop(self, message: Message) -> None:
        self.dropped += 1
        if message.type == MessageType.SNAP:
            self._reporter.report_snapshot(self.node_id, False)
        self._reporter.report_unreachable(self.node_id)

    def _fail_queue(self) -> None:
        while self._queue:
            self._drop(self._queue.popleft())
        for future in self._acks.values():
            if not future.done():
                future.set_result(False)
        self._acks.clear()

    def _url(self) -> str:
        scheme = "wss" if self._ssl is not None else "ws"
        return f"{scheme}://{self.address}{self._settings.path}"

    async def _run(self) -> None:
        backoff = self._settings.backoff_initial
        while self._state is not PeerState.CLOSED:
            self._state = PeerState.CONNECTING
            try:
                await self._connect_and_send()
                backoff = self._settings.backoff_initial
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any network failure: report, back off, redial
                log.debug("raft peer %x at %s: %r", self.node_id, self.address, exc)
            if self._state is PeerState.CLOSED:
                return
            self._state = PeerState.DOWN
            self._fail_queue()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._settings.backoff_max)

    async def _connect_and_send(self) -> None:
        s = self._settings
        timeout = aiohttp.ClientWSTimeout(ws_receive=None, ws_close=1.0)
        async with asyncio.timeout(s.connect_timeout):
            ws = await self._session.ws_connect(
                self._url(),
                ssl=tls.current(self._ssl) if self._ssl is not None else False,
                heartbeat=s.heartbeat,
                max_msg_size=s.max_frame_bytes,
                timeout=timeout,
                autoping=True,
            )
        try:
            if self._ssl is not None:
                identity = peer_identity(ws.get_extra_info("ssl_object"))
                refusal = PeerPolicy(s.cluster_id).refusal(identity, Access.MANAGER)
                if refusal is not None:
                    raise PermissionError(f"peer {self.address}: {refusal}")
            self._state = PeerState.UP
            reader = asyncio.get_running_loop().create_task(self._read_acks(ws))
            try:
                await self._send_loop(ws, reader)
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
        finally:
            await ws.close()

    async def _send_loop(self, ws: aiohttp.ClientWebSocketResponse, reader: asyncio.Task[None]) -> None:
        while True:
            if reader.done():
                raise ConnectionError("stream closed by peer")
            if not self._queue:
                self._wakeup.clear()
                waiter = asyncio.ensure_future(self._wakeup.wait())
                done, _ = await asyncio.wait({waiter, reader}, return_when=asyncio.FIRST_COMPLETED)
                if waiter not in done:
                    waiter.cancel()
                continue
            head = self._queue[0]
            if head.type == MessageType.SNAP and head.snapshot is not None:
                self._queue.popleft()
                await self._send_snapshot(ws, head)
                continue
            batch = self._take_batch()
            try:
                await ws.send_bytes(encode_batch(batch))
            except BaseException:
                for message in batch:
                    self._drop(message)
                raise

    def _take_batch(self) -> list[Message]:
        batch: list[Message] = []
        size = 0
        while self._queue and size < self._settings.max_batch_bytes:
            head = self._queue[0]
            if head.type == MessageType.SNAP:
                break
            batch.append(self._queue.popleft())
            size += 64 + sum(len(e.data) + 24 for e in head.entries)
        return batch

    async def _send_snapshot(self, ws: aiohttp.ClientWebSocketResponse, message: Message) -> None:
        stream_id = self._next_stream_id
        self._next_stream_id += 1
        ack: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._acks[stream_id] = ack
        try:
            for frame in encode_snapshot(message, stream_id, self._settings.snapshot_chunk_bytes):
                await ws.send_bytes(frame)
            async with asyncio.timeout(self._settings.snapshot_ack_timeout):
                ok = await ack
        except BaseException:
            self._reporter.report_snapshot(self.node_id, False)
            raise
        finally:
            self._acks.pop(stream_id, None)
        self._reporter.report_snapshot(self.node_id, ok)

    async def _read_acks(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.BINARY:
                continue
            try:
                frame = decode_frame(msg.data)
            except FrameError as exc:
                log.warning("raft peer %x sent a bad frame: %s", self.node_id, exc)
                return
            if isinstance(frame, SnapshotAck):
                future = self._acks.get(frame.stream_id)
                if future is not None and not future.done():
                    future.set_result(frame.ok)
