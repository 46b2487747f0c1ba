"""Which stream a Raft message goes on: heartbeats (and their answers) alternate between a peer's two
streams, so one stream stalled in TCP's retransmission backoff holds back at most every other one;
everything else keeps the main stream and its order. A stream that is down is passed over."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from shoal.manager.transport import RaftTransport
from shoal.manager.transport_peer import PeerSender, PeerState
from shoal.raft.types import Message, MessageType

PEER = 2


@dataclass
class StubLane:
    """Stands for a PeerSender: records what was queued on it."""

    state: PeerState = PeerState.UP
    queued: list[MessageType] = field(default_factory=list)

    def enqueue(self, message: Message) -> None:
        self.queued.append(message.type)


@pytest.fixture
def lanes(monkeypatch: pytest.MonkeyPatch) -> tuple[RaftTransport, StubLane, StubLane]:
    transport = RaftTransport(1, client_ssl=None, require_client_cert=False)
    main, second = StubLane(), StubLane()
    monkeypatch.setattr(transport, "_peers", {PEER: main})
    monkeypatch.setattr(transport, "_beat_lanes", {PEER: second})
    return transport, main, second


def send(transport: RaftTransport, *types: MessageType) -> None:
    transport.send(Message(kind, to=PEER, frm=1) for kind in types)


def test_heartbeats_alternate_and_everything_else_keeps_the_main_stream(
        lanes: tuple[RaftTransport, StubLane, StubLane]) -> None:
    transport, main, second = lanes
    send(transport, MessageType.HEARTBEAT, MessageType.APP, MessageType.HEARTBEAT, MessageType.HEARTBEAT_RESP,
         MessageType.APP_RESP, MessageType.HEARTBEAT)
    assert main.queued == [MessageType.HEARTBEAT, MessageType.APP, MessageType.HEARTBEAT_RESP, MessageType.APP_RESP]
    assert second.queued == [MessageType.HEARTBEAT, MessageType.HEARTBEAT]


def test_a_stream_that_is_down_is_passed_over(lanes: tuple[RaftTransport, StubLane, StubLane]) -> None:
    transport, main, second = lanes
    second.state = PeerState.DOWN
    send(transport, MessageType.HEARTBEAT, MessageType.HEARTBEAT, MessageType.HEARTBEAT)
    assert main.queued == [MessageType.HEARTBEAT] * 3 and second.queued == []


def test_the_stub_has_what_the_transport_uses_of_a_peer_sender() -> None:
    assert all(hasattr(PeerSender, name) for name in ("state", "enqueue"))
