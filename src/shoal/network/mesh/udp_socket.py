"""A UDP listening socket that answers from the address each datagram was sent to.

A socket bound to 0.0.0.0 replies with whatever source address the route to the client picks; when
the client sent to another of the host's addresses (127.0.0.2, a docker bridge address, a second
NIC), a client with a connected socket drops the answer. IP_PKTINFO tells us each datagram's
destination and lets the reply carry it as its source (the kernel path needs none of this:
conntrack rewrites the answers)."""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections.abc import Callable

log = logging.getLogger(__name__)

Address = tuple[str, int]
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)  # the Linux value; Python does not always export it
_IN_PKTINFO = struct.Struct("=i4s4s")  # struct in_pktinfo: ifindex, spec_dst, addr
READS_PER_WAKE = 64  # bound the work done per event-loop turn
MAX_DATAGRAM = 65535


class ReplyingUdpSocket:
    def __init__(self, host: str, port: int, on_datagram: Callable[[bytes, Address, str | None], None]):
        self.host = host
        self.port = port
        self.on_datagram = on_datagram
        self._sock: socket.socket | None = None
        self._pktinfo = False

    def open(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.setblocking(False)
            try:
                sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
                self._pktinfo = True
            except OSError:
                log.info("udp %d: no IP_PKTINFO here; answers leave from the routed address", self.port)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._readable)

    def _readable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        for _ in range(READS_PER_WAKE):
            try:
                data, ancillary, _, client = sock.recvmsg(MAX_DATAGRAM, socket.CMSG_SPACE(_IN_PKTINFO.size))
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. ICMP errors reported on the listening socket
                log.debug("udp %d: %s", self.port, exc)
                continue
            self.on_datagram(data, client, self._destination(ancillary))

    @staticmethod
    def _destination(ancillary: list[tuple[int, int, bytes]]) -> str | None:
        for level, kind, payload in ancillary:
            if level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(payload) >= _IN_PKTINFO.size:
                _, _, header_destination = _IN_PKTINFO.unpack_from(payload)
                return socket.inet_ntoa(header_destination)
        return None

    def send(self, data: bytes, client: Address, source: str | None) -> None:
        """Send an answer, from `source` when known. UDP: a full buffer drops it."""
        if self._sock is None:
            return
        try:
            if source is not None and self._pktinfo:
                info = _IN_PKTINFO.pack(0, socket.inet_aton(source), bytes(4))
                self._sock.sendmsg([data], [(socket.IPPROTO_IP, IP_PKTINFO, info)], 0, client)
            else:
                self._sock.sendto(data, client)
        except OSError as exc:
            log.debug("udp %d: answer to %s dropped: %s", self.port, client, exc)

    def close(self) -> None:
        if self._sock is not None:
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
