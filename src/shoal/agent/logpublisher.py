"""The agent's side of the log broker: one stream to the manager that holds this node's dispatcher
session, on which that manager asks for task logs and this node sends them, read from its executor.

The broker (shoal.dispatcher.logbroker, which the agent may not import: it is manager-side) asks
``{"sub", "tasks": [{"task", "container"}], "options": {"follow", "tail", "since"}}`` and cancels
``{"sub", "cancel": True}``; this side answers ``{"sub", "task", "lines": [[stream, time, bytes]]}``
and, without follow, ``{"sub", "task", "done": True}`` after a task's last kept line."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from shoal.api import errors
from shoal.base.clock import Clock, parse_rfc3339, rfc3339
from shoal.executor.base import Executor
from shoal.executor.errors import ExecutorError
from shoal.rpc.client import RpcClient
from shoal.rpc.stream import MessageStream

log = logging.getLogger(__name__)
PUBLISH_PATH = "/logbroker/v1/publish"  # the broker's route (tests check both sides name the same one)
CONNECT_TIMEOUT = 5.0
RECHECK = 1.0
"""Seconds between checks that the session's manager is still the one this stream goes to."""
RETRY_DELAY = 1.0
BATCH_LINES = 256
OUTBOX_SIZE = 64


class LogPublisher:
    def __init__(self, client: Callable[[], RpcClient], managers: Callable[[], list[str]], executor: Executor,
                 clock: Clock) -> None:
        """``client()`` dials with this node's current certificate; ``managers()`` lists the managers,
        the one holding this node's dispatcher session first (the broker that will ask is there)."""
        self._client = client
        self._managers = managers
        self._executor = executor
        self._clock = clock
        self.connected_to: str | None = None

    async def run(self) -> None:
        while True:
            address = next(iter(self._managers()), None)
            if address is not None:
                try:
                    await self._serve(address)
                except (errors.ShoalError, TimeoutError) as exc:
                    log.log(logging.INFO if self.connected_to is not None else logging.DEBUG,
                            "log publisher: stream to %s ended: %s", address, exc or "timed out")
                finally:
                    self.connected_to = None
            await self._clock.sleep(RETRY_DELAY)

    async def _serve(self, address: str) -> None:
        async with asyncio.timeout(CONNECT_TIMEOUT):  # a paused manager never finishes the handshake
            stream = await self._client().stream(address, PUBLISH_PATH)
        outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue(OUTBOX_SIZE)
        pumps: dict[str, list[asyncio.Task[None]]] = {}
        sender = asyncio.create_task(_send_all(stream, outbox))
        self.connected_to = address
        try:
            while not sender.done():
                try:
                    async with asyncio.timeout(RECHECK):
                        message = await stream.recv()
                except TimeoutError:
                    if next(iter(self._managers()), None) != address:
                        return  # the session moved to another manager: its broker will ask there
                    continue
                if isinstance(message, dict):
                    self._handle(message, pumps, outbox)
            sender.result()
        finally:
            jobs = [sender, *(job for jobs in pumps.values() for job in jobs)]
            for job in jobs:
                job.cancel()
            for job in jobs:
                with contextlib.suppress(asyncio.CancelledError, errors.ShoalError):
                    await job
            await stream.close()

    def _handle(self, message: dict[str, Any], pumps: dict[str, list[asyncio.Task[None]]],
                outbox: asyncio.Queue[dict[str, Any]]) -> None:
        sub = message.get("sub")
        if not isinstance(sub, str):
            return
        if message.get("cancel") is True:
            following = [job for job in pumps.pop(sub, []) if not job.done()]
            for job in following:
                job.cancel()
            if following:
                log.debug("log publisher: subscription %s cancelled; %d task log(s) no longer followed", sub,
                          len(following))
            return
        try:
            follow, tail, since = _options(message.get("options"))
        except ValueError as exc:
            log.warning("log publisher: ignoring a malformed request: %s", exc)
            return
        for item in message.get("tasks") or []:
            if isinstance(item, dict) and isinstance(item.get("task"), str) and isinstance(item.get("container"), str):
                pump = _pump(self._executor, sub, item["task"], item["container"], follow, tail, since, outbox)
                pumps.setdefault(sub, []).append(asyncio.create_task(pump))


def _options(raw: Any) -> tuple[bool, int | None, datetime | None]:
    if not isinstance(raw, dict):
        raise ValueError("options must be a map")
    tail, since = raw.get("tail"), raw.get("since")
    if tail is not None and not isinstance(tail, int):
        raise ValueError("tail must be an integer")
    return bool(raw.get("follow")), tail, None if since is None else parse_rfc3339(str(since))


async def _pump(executor: Executor, sub: str, task_id: str, container_id: str, follow: bool, tail: int | None,
                since: datetime | None, outbox: asyncio.Queue[dict[str, Any]]) -> None:
    """One task's lines: in batches when reading what is kept, one message a line when following
    (a line must not wait for the next one, which may never come)."""
    batch: list[list[Any]] = []
    try:
        async for line in executor.logs(container_id, follow=follow, tail=tail, since=since):
            batch.append([line.stream, rfc3339(line.timestamp), line.data])
            if follow or len(batch) >= BATCH_LINES:
                await outbox.put({"sub": sub, "task": task_id, "lines": batch})
                batch = []
    except (errors.NotFound, ExecutorError) as exc:
        log.info("log publisher: no logs for task %s: %s", task_id, exc)  # its container is gone
    if batch:
        await outbox.put({"sub": sub, "task": task_id, "lines": batch})
    if not follow:
        await outbox.put({"sub": sub, "task": task_id, "done": True})


async def _send_all(stream: MessageStream, outbox: asyncio.Queue[dict[str, Any]]) -> None:
    while True:
        await stream.send(await outbox.get())
