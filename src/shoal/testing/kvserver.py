"""A key-value test server: one process = one Raft member (RaftNode + DiskStorage + TLS transport)
with a plain-HTTP client port on loopback. Used by the kill -9 linearizability test and the Raft
benchmark; not part of shoald.

    python -m shoal.testing.kvserver --id 1 --data-dir D --cluster 127.0.0.1:7001 \
        --http 127.0.0.1:8001 --members 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 \
        --certs DIR            # node.crt, node.key, ca.crt (see shoal.testing.pki); or --insecure

Client API (JSON):

* ``POST /kv/put`` / ``POST /kv/append`` ``{"client", "seq", "key", "value"}`` — a write through
  Raft on the leader; 200 ``{"index"}`` once committed and applied;
* ``GET /kv/get?key=K`` — a linearizable read on any member (read-index barrier, then local read);
* ``GET /status`` — the member's Raft status.

Failures are 503 with ``{"error", "definite", "leader"}``: ``definite`` true means the operation
certainly did not take effect (not the leader; a read), false means its outcome is unknown (lost
leadership or timed out after the proposal was appended).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from shoal.manager.proposer import LostLeadership, NotLeader, RaftProposer
from shoal.manager.raftnode import RaftNode, RaftNodeConfig
from shoal.manager.raftnode_storage import DiskLog
from shoal.manager.transport import RaftTransport, serve_cluster_port
from shoal.manager.transport_peer import PeerSettings
from shoal.raft.errors import ProposalDropped, RaftError
from shoal.rpc.identity import PeerIdentity
from shoal.rpc.tls import client_context, server_context
from shoal.testing.kvmodel import APPEND, PUT, Command, KVOp, KVStore
from shoal.testing.pki import TestCA
from shoal.testing.processes import ProcessGroup

log = logging.getLogger("shoal.kvserver")

CLUSTER_ID = "kvtest"


@dataclass(frozen=True)
class ServerOptions:
    node_id: int
    data_dir: Path
    cluster_addr: str
    http_addr: str
    members: dict[int, str]
    certs: Path | None
    join: bool = False
    tick_interval: float = 0.1
    snapshot_interval: int = 10_000
    request_timeout: float = 5.0


class KVStateMachine:
    def __init__(self) -> None:
        self.store = KVStore()

    def apply(self, index: int, payload: bytes) -> None:
        self.store.apply(Command.decode(payload))

    def snapshot(self) -> bytes:
        return self.store.encode()

    def restore(self, data: bytes) -> None:
        self.store = KVStore.decode(data)


def _split(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    return host, int(port)


def _sender_matches_certificate(identity: PeerIdentity | None, raft_id: int) -> bool:
    """Raft member n speaks only with the certificate issued to node "kv<n>" (KVProcessCluster's
    naming), as Swarm ties a Raft member to its node id."""
    return identity is not None and identity.node_id == f"kv{raft_id}"


def _failure(error: str, *, definite: bool, leader: int) -> web.Response:
    body = {"error": error, "definite": definite, "leader": leader}
    return web.json_response(body, status=503)


class KVServer:
    def __init__(self, options: ServerOptions) -> None:
        self.options = options
        self.sm = KVStateMachine()
        client_ssl = None
        self._server_ssl = None
        if options.certs is not None:
            cert, key, ca = (options.certs / n for n in ("node.crt", "node.key", "ca.crt"))
            client_ssl = client_context(cert, key, ca)
            self._server_ssl = server_context(cert, key, ca)
        self.transport = RaftTransport(
            options.node_id,
            client_ssl=client_ssl,
            cluster_id=CLUSTER_ID if client_ssl is not None else None,
            settings=PeerSettings(cluster_id=CLUSTER_ID if client_ssl is not None else None),
            require_client_cert=client_ssl is not None,
            sender_check=_sender_matches_certificate if client_ssl is not None else None,
        )
        self.storage = DiskLog.open(options.data_dir)
        self.node = RaftNode(
            RaftNodeConfig(
                node_id=options.node_id,
                address=options.cluster_addr,
                tick_interval=options.tick_interval,
                snapshot_interval=options.snapshot_interval,
            ),
            self.storage,
            self.transport,
        )
        self.proposer = RaftProposer(self.node, snapshot=self.sm.snapshot, restore=self.sm.restore)
        self.proposer.set_apply(self.sm.apply)
        self._runners: list[web.AppRunner] = []

    async def start(self) -> None:
        cluster_app = web.Application()
        self.transport.attach(cluster_app)
        host, port = _split(self.options.cluster_addr)
        runner, _ = await serve_cluster_port(cluster_app, host, port, self._server_ssl)
        self._runners.append(runner)
        if self.options.join:
            await self.node.start(peers=self.options.members)
        else:
            await self.node.start(bootstrap=self.options.members)
        http_app = web.Application()
        http_app.router.add_post("/kv/{kind}", self._write)
        http_app.router.add_get("/kv/get", self._read)
        http_app.router.add_get("/status", self._status)
        http_app.router.add_post("/members/{action}", self._membership)
        host, port = _split(self.options.http_addr)
        runner, _ = await serve_cluster_port(http_app, host, port, None)
        self._runners.append(runner)
        log.info(
            "kvserver %d up: cluster %s http %s",
            self.options.node_id,
            self.options.cluster_addr,
            self.options.http_addr,
        )

    async def stop(self) -> None:
        for runner in reversed(self._runners):
            await runner.cleanup()
        await self.node.stop()
        self.storage.close()

    async def _write(self, request: web.Request) -> web.Response:
        kind = request.match_info["kind"]
        if kind not in (PUT, APPEND):
            return web.json_response({"error": f"unknown write {kind!r}"}, status=404)
        body = await request.json()
        command = Command(int(body["client"]), int(body["seq"]), KVOp(kind, str(body["key"]), str(body["value"])))
        leader = self.node.leader_id
        try:
            async with asyncio.timeout(self.options.request_timeout):
                index = await self.proposer.propose(command.encode())
        except NotLeader as exc:
            return _failure(str(exc), definite=True, leader=leader)
        except LostLeadership as exc:
            return _failure(str(exc), definite=False, leader=self.node.leader_id)
        except TimeoutError:
            return _failure("timed out waiting for commit", definite=False, leader=self.node.leader_id)
        return web.json_response({"index": index})

    async def _read(self, request: web.Request) -> web.Response:
        key = request.query["key"]
        try:
            async with asyncio.timeout(self.options.request_timeout):
                index = await self.node.read_index()
        except (ProposalDropped, TimeoutError) as exc:
            return _failure(f"read barrier failed: {exc!r}", definite=True, leader=self.node.leader_id)
        return web.json_response({"value": self.sm.store.read(key), "index": index})

    async def _membership(self, request: web.Request) -> web.Response:
        action = request.match_info["action"]
        body = await request.json()
        if not self.node.is_leader():
            return _failure("not the leader", definite=True, leader=self.node.leader_id)
        try:
            async with asyncio.timeout(self.options.request_timeout):
                if action == "add":
                    index = await self.node.add_member(int(body["id"]), str(body["address"]))
                elif action == "remove":
                    index = await self.node.remove_member(int(body["id"]))
                else:
                    return web.json_response({"error": f"unknown action {action!r}"}, status=404)
        except RaftError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        except TimeoutError:
            return _failure("timed out waiting for the change", definite=False, leader=self.node.leader_id)
        return web.json_response({"index": index, "members": {str(k): v for k, v in self.node.members().items()}})

    async def _status(self, request: web.Request) -> web.Response:
        status = self.node.status()
        status["is_leader"] = self.node.is_leader()
        return web.json_response(status, dumps=json.dumps)


# --- a cluster of kvserver processes, and a client for it (tests and bench) ----------------------


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """Ports the kernel just handed out (closed again, so a small reuse race remains)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind((host, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class KVProcessCluster(ProcessGroup):
    """``size`` kvserver processes on loopback, each with its own data dir and certificate."""

    def __init__(
        self,
        root: Path,
        size: int = 3,
        *,
        tls: bool = True,
        tick_interval: float = 0.1,
        snapshot_interval: int = 10_000,
    ) -> None:
        super().__init__(root, list(range(1, size + 1)))
        ports = free_ports(2 * size)
        self.cluster_addrs = {i: f"127.0.0.1:{ports[2 * (i - 1)]}" for i in self.ids}
        self.http_addrs = {i: f"127.0.0.1:{ports[2 * (i - 1) + 1]}" for i in self.ids}
        self.tls = tls
        self.tick_interval = tick_interval
        self.snapshot_interval = snapshot_interval
        self.joiners: set[int] = set()
        self._certs: dict[int, Path] = {}
        self._ca = TestCA(CLUSTER_ID)
        if tls:
            for i in self.ids:
                self._certs[i] = self._ca.issue(f"kv{i}").write(root / f"certs{i}").cert.parent

    def new_member(self) -> int:
        """Allocate an id, ports and a certificate for a member that will join the running cluster
        (start it with ``start``, then add it through the leader's /members/add)."""
        node_id = max(self.ids) + 1
        cluster_port, http_port = free_ports(2)
        self.ids.append(node_id)
        self.joiners.add(node_id)
        self.cluster_addrs[node_id] = f"127.0.0.1:{cluster_port}"
        self.http_addrs[node_id] = f"127.0.0.1:{http_port}"
        if self.tls:
            self._certs[node_id] = self._ca.issue(f"kv{node_id}").write(self.root / f"certs{node_id}").cert.parent
        return node_id

    def command(self, node_id: int) -> list[str]:
        members = ",".join(f"{i}={a}" for i, a in self.cluster_addrs.items())
        cmd = [
            sys.executable, "-m", "shoal.testing.kvserver",
            "--id", str(node_id),
            "--data-dir", str(self.root / f"data{node_id}"),
            "--cluster", self.cluster_addrs[node_id],
            "--http", self.http_addrs[node_id],
            "--members", members,
            "--tick", str(self.tick_interval),
            "--snapshot-interval", str(self.snapshot_interval),
        ]  # fmt: skip
        if node_id in self.joiners:
            cmd.append("--join")
        cmd += ["--certs", str(self._certs[node_id])] if self.tls else ["--insecure"]
        return cmd

    async def status(self, session: aiohttp.ClientSession, node_id: int) -> dict[str, Any] | None:
        try:
            async with asyncio.timeout(1.0):
                async with session.get(f"http://{self.http_addrs[node_id]}/status") as resp:
                    result: dict[str, Any] = await resp.json()
                    return result
        except (aiohttp.ClientError, TimeoutError):
            return None

    async def wait_for_leader(self, session: aiohttp.ClientSession, timeout: float = 30.0) -> int:
        """The id of a member that reports itself leader (caught up), polling every 20 ms."""
        async with asyncio.timeout(timeout):
            while True:
                for node_id in self.running():
                    status = await self.status(session, node_id)
                    if status is not None and status.get("is_leader"):
                        return node_id
                await asyncio.sleep(0.02)


@dataclass(frozen=True)
class Outcome:
    ok: bool | None  # True: took effect / answered; False: certainly did not; None: unknown
    value: str | None = None
    attempts: int = 1


class KVClient:
    """One logical client: sequential operations, each retried across members until a deadline.

    Writes carry (client, seq); the server applies a seq at most once, so re-sending a write whose
    first attempt had an unknown outcome is safe, and an "ok" from any attempt means it took effect
    exactly once, somewhere between the first send and the answer.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        http_addrs: dict[int, str],
        client_id: int,
        *,
        op_timeout: float = 5.0,
        attempt_timeout: float = 2.0,
    ) -> None:
        self._session = session
        self._addrs = http_addrs
        self.client_id = client_id
        self._seq = 0
        self._op_timeout = op_timeout
        self._attempt_timeout = attempt_timeout
        self._target = min(http_addrs)

    def _next_target(self, hint: int) -> None:
        if hint in self._addrs and hint != self._target:
            self._target = hint
            return
        ids = sorted(self._addrs)
        self._target = ids[(ids.index(self._target) + 1) % len(ids)]

    async def write(self, kind: str, key: str, value: str) -> Outcome:
        self._seq += 1
        body = {"client": self.client_id, "seq": self._seq, "key": key, "value": value}
        return await self._with_retries("POST", f"/kv/{kind}", body, write=True)

    async def get(self, key: str, *, member: int | None = None) -> Outcome:
        """A linearizable read, first tried on ``member`` (any member can serve reads)."""
        if member is not None:
            self._target = member
        return await self._with_retries("GET", f"/kv/get?key={key}", None, write=False)

    async def _with_retries(self, method: str, path: str, body: object, *, write: bool) -> Outcome:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._op_timeout
        unknown = False
        attempts = 0
        while loop.time() < deadline:
            attempts += 1
            url = f"http://{self._addrs[self._target]}{path}"
            try:
                async with asyncio.timeout(min(self._attempt_timeout, max(0.01, deadline - loop.time()))):
                    async with self._session.request(method, url, json=body) as resp:
                        answer = await resp.json()
            except aiohttp.ClientConnectorError:
                self._next_target(0)  # nothing was sent: a definite failure of this attempt
                await asyncio.sleep(0.05)
                continue
            except (aiohttp.ClientError, TimeoutError, ValueError):
                unknown = unknown or write  # the request may have reached the server
                self._next_target(0)
                continue
            if resp.status == 200:
                return Outcome(True, answer.get("value"), attempts)
            unknown = unknown or (write and not answer.get("definite", False))
            self._next_target(int(answer.get("leader") or 0))
            if answer.get("leader") in (None, 0, self._target):
                await asyncio.sleep(0.05)  # no leader yet: give the election a moment
        return Outcome(None if unknown else False, None, attempts)


def _parse_members(text: str) -> dict[int, str]:
    members = {}
    for item in text.split(","):
        node_id, _, addr = item.partition("=")
        members[int(node_id)] = addr
    return members


def parse_args(argv: list[str]) -> ServerOptions:
    parser = argparse.ArgumentParser(prog="python -m shoal.testing.kvserver")
    parser.add_argument("--id", type=int, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--cluster", required=True, help="host:port of the Raft (cluster) listener")
    parser.add_argument("--http", required=True, help="host:port of the client HTTP listener")
    parser.add_argument("--members", required=True, help="id=host:port,... of the founding (or current) members")
    parser.add_argument("--join", action="store_true", help="join the running cluster of --members")
    parser.add_argument("--certs", type=Path, help="directory with node.crt, node.key, ca.crt")
    parser.add_argument("--insecure", action="store_true", help="plain WebSocket between members")
    parser.add_argument("--tick", type=float, default=0.1, help="tick interval in seconds")
    parser.add_argument("--snapshot-interval", type=int, default=10_000)
    args = parser.parse_args(argv)
    if args.certs is None and not args.insecure:
        parser.error("--certs is required unless --insecure")
    return ServerOptions(
        node_id=args.id,
        data_dir=args.data_dir,
        cluster_addr=args.cluster,
        http_addr=args.http,
        members=_parse_members(args.members),
        join=args.join,
        certs=None if args.insecure else args.certs,
        tick_interval=args.tick,
        snapshot_interval=args.snapshot_interval,
    )


async def serve(options: ServerOptions) -> None:
    server = KVServer(options)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    with contextlib.suppress(asyncio.CancelledError):
        await stop.wait()
    await server.stop()


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(serve(parse_args(sys.argv[1:] if argv is None else argv)))


if __name__ == "__main__":
    main()
