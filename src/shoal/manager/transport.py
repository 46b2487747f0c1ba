"""Manager-to-manager Raft transport over the cluster port.

Each member serves one WebSocket route on its TLS listener for incoming Raft messages and keeps one
outgoing WebSocket per peer (``PeerSender``). Frames are msgpack (``transport_codec``); large
snapshots travel in chunks and are acknowledged once reassembled.

Authorization happens before any frame is read: the peer's client certificate (already verified
against the cluster CA by the TLS handshake) must carry the manager role in OU, and the cluster id
in O when one is configured; anything else gets 403 and the WebSocket is never opened.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import weakref
from collections.abc import Callable, Iterable

import aiohttp
from aiohttp import web

from shoal.manager.raftnode_api import RaftMessageSink
from shoal.manager.transport_codec import (
    Batch,
    FrameError,
    SnapshotAssembler,
    SnapshotChunk,
    decode_frame,
    encode_snapshot_ack,
)
from shoal.manager.transport_peer import PeerSender, PeerSettings, PeerState
from shoal.raft.types import Message, MessageType
from shoal.rpc.identity import Access, PeerIdentity, PeerPolicy, peer_identity

log = logging.getLogger(__name__)

DEFAULT_PATH = "/raft/v1/stream"


class _NoSink:
    def receive(self, message: Message) -> None:
        log.debug("no raft sink yet: dropping %s", message.type.name)

    def report_unreachable(self, node_id: int) -> None:
        return None

    def report_snapshot(self, node_id: int, ok: bool) -> None:
        return None


# Heartbeats and their answers alternate between a peer's main stream and a second stream of their
# own. On a lossy link one TCP stream can stall for seconds in retransmission backoff (0.2, 0.4, 0.8 s
# for a segment lost three times); heartbeats queued behind it let the leader's check-quorum or a
# follower's election timer fire although the peer is alive (the soak with 10 % loss on every link
# saw an election from that). Heartbeats may arrive out of order: Raft takes only what is newer.
# Everything else stays on the main stream, in order.
HEARTBEAT_TYPES = frozenset({MessageType.HEARTBEAT, MessageType.HEARTBEAT_RESP})


class RaftTransport:
    def __init__(
        self,
        node_id: int,
        sink: RaftMessageSink | None = None,
        *,
        client_ssl: ssl.SSLContext | None,
        cluster_id: str | None = None,
        settings: PeerSettings | None = None,
        max_snapshot_bytes: int = 4 << 30,
        require_client_cert: bool = True,
        sender_check: Callable[[PeerIdentity | None, int], bool] | None = None,
    ) -> None:
        """``client_ssl`` None means plain ws:// (benchmarks only); ``require_client_cert`` False
        lets unauthenticated peers in and must only be used with plain listeners in benchmarks.
        ``sender_check(identity, raft_id)`` may tie a message's ``frm`` to the certificate that sent
        it (as Swarm checks a Raft member's node id); messages it refuses are dropped."""
        self.node_id = node_id
        self._sink: RaftMessageSink = sink if sink is not None else _NoSink()
        self._client_ssl = client_ssl
        self._cluster_id = cluster_id
        self._settings = settings or PeerSettings(cluster_id=cluster_id)
        self._max_snapshot_bytes = max_snapshot_bytes
        self._require_client_cert = require_client_cert
        self._sender_check = sender_check
        self._peers: dict[int, PeerSender] = {}
        self._beat_lanes: dict[int, PeerSender] = {}  # each peer's second stream, for heartbeats only
        self._beats_sent: dict[int, int] = {}
        self._session: aiohttp.ClientSession | None = None
        self._inbound: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()
        self.refused = 0

    def set_sink(self, sink: RaftMessageSink) -> None:
        """Where received messages and delivery reports go (the RaftNode, once it exists)."""
        self._sink = sink
        for peer in (*self._peers.values(), *self._beat_lanes.values()):
            peer.set_reporter(sink)

    # --- lifecycle --------------------------------------------------------------------------

    def attach(self, app: web.Application) -> None:
        """Serve incoming Raft streams on ``app`` (the cluster port's application)."""
        app.router.add_get(self._settings.path, self._serve_stream)
        app.on_shutdown.append(self._close_inbound)

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=0, force_close=False)
        self._session = aiohttp.ClientSession(connector=connector)
        for peer in (*self._peers.values(), *self._beat_lanes.values()):
            peer.start()

    async def stop(self) -> None:
        for peer in (*self._peers.values(), *self._beat_lanes.values()):
            await peer.close()
        self._peers.clear()
        self._beat_lanes.clear()
        await self._close_inbound(None)
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _close_inbound(self, _app: web.Application | None) -> None:
        # Open WebSocket handlers would otherwise hold up the listener's shutdown.
        for ws in list(self._inbound):
            with contextlib.suppress(Exception):
                await ws.close(code=aiohttp.WSCloseCode.GOING_AWAY)

    # --- membership ---------------------------------------------------------------------------

    def add_peer(self, node_id: int, address: str) -> None:
        """Start streaming to ``node_id`` at ``address`` ("host:port"); updates the address if known."""
        if node_id == self.node_id:
            return
        known = self._peers.get(node_id)
        if known is not None:
            known.set_address(address)
            self._beat_lanes[node_id].set_address(address)
            return
        if self._session is None:
            raise RuntimeError("transport not started")
        for lanes in (self._peers, self._beat_lanes):
            peer = PeerSender(
                node_id,
                address,
                session=self._session,
                ssl_context=self._client_ssl,
                reporter=self._sink,
                settings=self._settings,
            )
            lanes[node_id] = peer
            peer.start()

    def update_peer(self, node_id: int, address: str) -> None:
        self.add_peer(node_id, address)

    async def remove_peer(self, node_id: int) -> None:
        self._beats_sent.pop(node_id, None)
        for lanes in (self._peers, self._beat_lanes):
            peer = lanes.pop(node_id, None)
            if peer is not None:
                await peer.close()

    def peer_addresses(self) -> dict[int, str]:
        return {node_id: peer.address for node_id, peer in self._peers.items()}

    def is_active(self, node_id: int) -> bool:
        """Whether the stream to ``node_id`` is up (used to check quorum before removing a member)."""
        peer = self._peers.get(node_id)
        return peer is not None and peer.state is PeerState.UP

    # --- sending ------------------------------------------------------------------------------

    def send(self, messages: Iterable[Message]) -> None:
        """Queue ``messages`` for their peers; never blocks. Unknown peers are reported unreachable."""
        for message in messages:
            peer = self._lane_for(message)
            if peer is not None:
                peer.enqueue(message)
                continue
            if message.type == MessageType.SNAP:
                self._sink.report_snapshot(message.to, False)
            self._sink.report_unreachable(message.to)

    def _lane_for(self, message: Message) -> PeerSender | None:
        main = self._peers.get(message.to)
        if main is None or message.type not in HEARTBEAT_TYPES:
            return main
        sent = self._beats_sent.get(message.to, 0)
        self._beats_sent[message.to] = sent + 1
        second = self._beat_lanes[message.to]
        lanes = [lane for lane in (main, second) if lane.state is not PeerState.DOWN] or [main]
        return lanes[sent % len(lanes)]

    # --- receiving ----------------------------------------------------------------------------

    async def _serve_stream(self, request: web.Request) -> web.StreamResponse:
        transport = request.transport
        ssl_object = None if transport is None else transport.get_extra_info("ssl_object")
        if ssl_object is not None or self._require_client_cert:
            refusal = PeerPolicy(self._cluster_id).refusal(peer_identity(ssl_object), Access.MANAGER)
            if refusal is not None:
                self.refused += 1
                log.warning("raft stream from %s refused: %s", request.remote, refusal)
                return web.Response(status=403, text=f"raft: {refusal}\n")
        identity = peer_identity(ssl_object)
        ws = web.WebSocketResponse(max_msg_size=self._settings.max_frame_bytes, compress=False, heartbeat=None)
        await ws.prepare(request)
        self._inbound.add(ws)
        try:
            await self._read_stream(ws, identity)
        finally:
            await ws.close()
        return ws

    async def _read_stream(self, ws: web.WebSocketResponse, identity: PeerIdentity | None) -> None:
        assembler: SnapshotAssembler | None = None
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.BINARY:
                continue
            try:
                frame = decode_frame(msg.data)
                if isinstance(frame, Batch):
                    for message in frame.messages:
                        self._deliver(message, identity)
                elif isinstance(frame, SnapshotChunk):
                    if frame.seq == 0:
                        assembler = SnapshotAssembler(frame, self._max_snapshot_bytes)
                        complete = assembler.complete()
                    elif assembler is None:
                        raise FrameError("snapshot chunk without a header")
                    else:
                        complete = assembler.add(frame)
                    if complete is not None:
                        accepted = self._deliver(complete, identity)
                        await ws.send_bytes(encode_snapshot_ack(frame.stream_id, accepted))
                        assembler = None
                else:
                    raise FrameError("unexpected frame on an incoming stream")
            except FrameError as exc:
                log.warning("closing raft stream: %s", exc)
                return

    def _deliver(self, message: Message, identity: PeerIdentity | None) -> bool:
        if self._sender_check is not None and not self._sender_check(identity, message.frm):
            log.warning("dropping raft message claiming to be from %x, sent by %s", message.frm, identity)
            return False
        if message.to != self.node_id:
            log.debug("dropping raft message for %x (we are %x)", message.to, self.node_id)
            return False
        self._sink.receive(message)
        return True


async def serve_cluster_port(
    app: web.Application, host: str, port: int, ssl_context: ssl.SSLContext | None
) -> tuple[web.AppRunner, int]:
    """Run ``app`` on host:port (port 0 picks one) and return the runner and the bound port."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context, reuse_address=True)
    await site.start()
    bound = int(runner.addresses[0][1])
    return runner, bound
