"""The log broker (as swarmkit's LogBroker): `docker service logs` for tasks on any node.

Every node's agent keeps one publisher stream open to the manager that holds its dispatcher session
(``PUBLISH_PATH``; shoal.agent.logpublisher). A subscription asks the publishers of the nodes that hold
the selected tasks to read those tasks' logs from their executors and send the lines back; the broker
merges them. Following, it also asks for the tasks that start later (replacements, scale-up) on any
node, as they appear in the store.

A node that cannot be asked (down, its publisher not connected, or silent past ``SILENCE``) is skipped:
without --follow the lines of the other nodes come first and the stream then ends with swarmkit's
warning (`warning: incomplete log stream. some logs could not be retrieved for the following
reasons: node X is not available`), which the docker CLI prints as Docker's does; with --follow the
stream goes on with the nodes that answer and the skipped node is only logged here.

A manager that does not lead reaches the leader's broker through ``LOGS_PATH`` (``remote_logs``).

Messages on the publisher stream: broker → agent ``{"sub", "tasks": [{"task", "container"}],
"options": {"follow", "tail", "since"}}`` and ``{"sub", "cancel": True}``; agent → broker ``{"sub",
"task", "lines": [[stream, rfc3339 time, bytes], ...]}`` and ``{"sub", "task", "done": True}`` once a
task's kept lines are all sent (without --follow)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shoal.api import errors, states
from shoal.api.objects import TASKS, Obj, dig
from shoal.base.clock import parse_rfc3339, rfc3339
from shoal.base.ids import new_id
from shoal.rpc.client import RpcClient
from shoal.rpc.identity import Access
from shoal.rpc.server import Caller, RpcServer
from shoal.rpc.stream import MessageStream
from shoal.store.memory import MemoryStore
from shoal.store.watch import Event

log = logging.getLogger(__name__)
PUBLISH_PATH = "/logbroker/v1/publish"
LOGS_PATH = "/logbroker/v1/logs"
SILENCE = 5.0
"""Seconds a node may stay silent on a subscription without --follow before it counts as not available."""
INCOMPLETE = "warning: incomplete log stream. some logs could not be retrieved for the following reasons: "


@dataclass(frozen=True)
class LogSelector:
    """What to read: every task of a service, or one task."""

    service_id: str | None = None
    task_id: str | None = None


@dataclass(frozen=True)
class SubscriptionOptions:
    follow: bool = False
    tail: int | None = None
    since: datetime | None = None

    def to_wire(self) -> dict[str, Any]:
        return {"follow": self.follow, "tail": self.tail,
                "since": None if self.since is None else rfc3339(self.since)}

    @classmethod
    def from_wire(cls, raw: Any) -> SubscriptionOptions:
        if not isinstance(raw, dict):
            raise errors.InvalidArgument("malformed log subscription: options must be a map")
        tail, since = raw.get("tail"), raw.get("since")
        if tail is not None and not isinstance(tail, int):
            raise errors.InvalidArgument("malformed log subscription: tail must be an integer")
        try:
            when = None if since is None else parse_rfc3339(str(since))
        except ValueError:
            raise errors.InvalidArgument(f"malformed log subscription: since {since!r}") from None
        return cls(bool(raw.get("follow")), tail, when)


@dataclass(frozen=True)
class BrokerLine:
    task_id: str
    stream: int
    timestamp: datetime
    data: bytes
    attrs: dict[str, str]


def task_attrs(task: Obj) -> dict[str, str]:
    """The details `docker service logs --details` shows for a line."""
    return {
        "com.docker.swarm.node.id": str(task.get("NodeID") or ""),
        "com.docker.swarm.service.id": str(task.get("ServiceID") or ""),
        "com.docker.swarm.task.id": str(task["ID"]),
    }


class _Publisher:
    """One node's open publisher stream."""

    def __init__(self, node_id: str, stream: MessageStream) -> None:
        self.node_id = node_id
        self.stream = stream
        self._send_lock = asyncio.Lock()

    async def send(self, message: Any) -> None:
        async with self._send_lock:
            await self.stream.send(message)


@dataclass
class _Subscription:
    options: SubscriptionOptions
    id: str = field(default_factory=new_id)
    asked: dict[str, tuple[str, Obj]] = field(default_factory=dict)
    """task id → (node id, task) for every task some node was asked for."""
    waiting: set[str] = field(default_factory=set)
    """Without --follow: the tasks whose last line has not come yet."""
    problems: list[str] = field(default_factory=list)
    last_seen: dict[str, datetime] = field(default_factory=dict)
    """Following: each task's newest line so far, so a node that comes back goes on from there."""
    queue: asyncio.Queue[BrokerLine | None] = field(default_factory=asyncio.Queue)

    def node_lost(self, node_id: str) -> None:
        lost = {task_id for task_id in self.waiting if self.asked[task_id][0] == node_id}
        if lost:
            self.waiting -= lost
            self._problem(f"node {node_id} is not available")
            self.queue.put_nowait(None)  # wakes a reader waiting for those tasks

    def _problem(self, text: str) -> None:
        if text not in self.problems:
            self.problems.append(text)
            if self.options.follow:
                log.warning("log subscription %s: %s", self.id, text)

    def deliver(self, node_id: str, message: dict[str, Any]) -> None:
        """Lines or the end of a task, from the node that was asked for it (anything else is dropped:
        a node may only speak for its own tasks)."""
        task_id = message.get("task")
        asked = self.asked.get(task_id) if isinstance(task_id, str) else None
        if asked is None or asked[0] != node_id:
            return
        task = asked[1]
        if message.get("done") is True:
            self.waiting.discard(task_id)
            self.queue.put_nowait(None)
            return
        for raw in message.get("lines") or []:
            line = _line_from_wire(task, raw)
            if line is not None:
                self.queue.put_nowait(line)
                self.last_seen[line.task_id] = max(line.timestamp, self.last_seen.get(line.task_id, line.timestamp))


def _line_from_wire(task: Obj, raw: Any) -> BrokerLine | None:
    if not (isinstance(raw, list) and len(raw) == 3 and raw[0] in (1, 2) and isinstance(raw[1], str)
            and isinstance(raw[2], bytes)):
        return None
    try:
        stamp = parse_rfc3339(raw[1])
    except ValueError:
        return None
    return BrokerLine(str(task["ID"]), int(raw[0]), stamp, raw[2], task_attrs(task))


class LogBroker:
    def __init__(self, store: MemoryStore, silence: float = SILENCE) -> None:
        self._store = store
        self._silence = silence
        self._publishers: dict[str, _Publisher] = {}
        self._subscriptions: dict[str, _Subscription] = {}

    def register(self, server: RpcServer) -> None:
        server.stream(PUBLISH_PATH, Access.NODE, self._serve_publisher)
        server.stream(LOGS_PATH, Access.MANAGER, self._serve_remote)

    def connected(self) -> set[str]:
        """The nodes whose publishers are connected here."""
        return set(self._publishers)

    def subscriptions(self) -> int:
        """How many subscriptions are open (each ends when its reader goes)."""
        return len(self._subscriptions)

    # -- the agents' side
    async def _serve_publisher(self, caller: Caller, stream: MessageStream) -> None:
        assert caller.identity is not None  # Access.NODE admits only callers with a certificate
        node_id = caller.identity.node_id
        publisher = _Publisher(node_id, stream)
        replaced = self._publishers.get(node_id)
        self._publishers[node_id] = publisher
        if replaced is not None:
            self._lost(node_id)  # what was asked of the old stream will not come through the new one
            await replaced.stream.close()
        try:
            await self._resume(publisher)
            while True:
                message = await stream.recv()
                if isinstance(message, dict):
                    subscription = self._subscriptions.get(str(message.get("sub")))
                    if subscription is not None:
                        subscription.deliver(node_id, message)
        finally:
            if self._publishers.get(node_id) is publisher:
                del self._publishers[node_id]
                self._lost(node_id)

    async def _resume(self, publisher: _Publisher) -> None:
        """A node (re)connected: the followed subscriptions ask it again for their tasks there, from
        the line after the last one they got (its daemon restarted, or its stream moved here)."""
        for subscription in list(self._subscriptions.values()):
            if not subscription.options.follow:
                continue
            for task_id, (node_id, task) in list(subscription.asked.items()):
                if node_id != publisher.node_id:
                    continue
                options = subscription.options
                last = subscription.last_seen.get(task_id)
                if last is not None:
                    options = SubscriptionOptions(True, None, last + timedelta(microseconds=1))
                await publisher.send({"sub": subscription.id, "options": options.to_wire(), "tasks": [
                    {"task": task_id, "container": dig(task, "Status", "ContainerStatus", "ContainerID")}]})

    def _lost(self, node_id: str) -> None:
        for subscription in self._subscriptions.values():
            subscription.node_lost(node_id)

    # -- subscriptions
    async def subscribe(self, selector: LogSelector,
                        options: SubscriptionOptions) -> AsyncGenerator[BrokerLine, None]:
        """The selected tasks' lines: without follow, every kept line in time order, then the end
        (or the incomplete-stream warning); with follow, lines as they come, until closed."""
        subscription = _Subscription(options)
        self._subscriptions[subscription.id] = subscription
        watcher: asyncio.Task[None] | None = None
        try:
            if options.follow:
                # Subscribed to the store before reading it, so no task that starts meanwhile is missed.
                watcher = asyncio.create_task(self._follow_tasks(subscription, selector))
                while True:
                    line = await subscription.queue.get()
                    if line is not None:
                        yield line
            await self._ask(subscription, self._selected(selector))
            for line in await self._collect(subscription):
                yield line
            if subscription.problems:
                raise errors.Unknown(INCOMPLETE + ", ".join(subscription.problems), grpc=True)
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            del self._subscriptions[subscription.id]
            await self._cancel(subscription)

    def _selected(self, selector: LogSelector) -> list[Obj]:
        view = self._store.view()
        if selector.task_id is not None:
            task = view.get(TASKS, selector.task_id)
            return [] if task is None else [task]
        tasks = view.tasks_of_service(selector.service_id or "")
        return sorted(tasks, key=lambda t: str(t.get("CreatedAt", "")))

    async def _collect(self, subscription: _Subscription) -> list[BrokerLine]:
        lines: list[BrokerLine] = []
        while subscription.waiting:
            try:
                async with asyncio.timeout(self._silence):
                    line = await subscription.queue.get()
            except TimeoutError:
                for node_id in sorted({subscription.asked[t][0] for t in subscription.waiting}):
                    subscription.node_lost(node_id)  # connected but silent: paused, or cut off
                continue
            if line is not None:
                lines.append(line)
        while not subscription.queue.empty():  # lines that came with the last "done"
            line = subscription.queue.get_nowait()
            if line is not None:
                lines.append(line)
        return sorted(lines, key=lambda line: line.timestamp)

    async def _follow_tasks(self, subscription: _Subscription, selector: LogSelector) -> None:
        def selected(event: Event) -> bool:
            if event.table != TASKS:
                return False
            if selector.task_id is not None:
                return bool(event.obj.get("ID") == selector.task_id)
            return bool(event.obj.get("ServiceID") == selector.service_id)

        with self._store.watch(lambda ev: isinstance(ev, Event) and selected(ev)) as changes:
            await self._ask(subscription, self._selected(selector))
            while True:
                item = await changes.get()
                if isinstance(item, Event) and item.action != "delete":
                    await self._ask(subscription, [item.obj])

    async def _ask(self, subscription: _Subscription, tasks: Iterable[Obj]) -> None:
        """Ask each task's node for its lines, one message per node; a task that has not started
        yet is asked for once it has a container (following), or is reported (not following)."""
        by_node: dict[str, list[Obj]] = {}
        for task in tasks:
            node_id = str(task.get("NodeID") or "")
            container_id = dig(task, "Status", "ContainerStatus", "ContainerID")
            if task["ID"] in subscription.asked:
                continue
            if not node_id:
                # A task still waiting for a node has nothing to show yet; one that was given up is ignored.
                if not subscription.options.follow and task.get("DesiredState") == states.RUNNING:
                    subscription.problems.append(f"task {task['ID']} has not been scheduled")
                continue
            if container_id:
                by_node.setdefault(node_id, []).append(task)
        for node_id, node_tasks in by_node.items():
            publisher = self._publishers.get(node_id)
            if publisher is not None:
                for task in node_tasks:
                    subscription.asked[task["ID"]] = (node_id, task)
                    if not subscription.options.follow:
                        subscription.waiting.add(task["ID"])
                message = {
                    "sub": subscription.id, "options": subscription.options.to_wire(),
                    "tasks": [{"task": t["ID"], "container": dig(t, "Status", "ContainerStatus", "ContainerID")}
                              for t in node_tasks],
                }
                with contextlib.suppress(errors.Unavailable):
                    await publisher.send(message)
                    continue
            # Not connected, or the stream broke while asking: its tasks are skipped.
            for task in node_tasks:
                subscription.asked.setdefault(task["ID"], (node_id, task))
                subscription.waiting.add(task["ID"])
            subscription.node_lost(node_id)

    async def _cancel(self, subscription: _Subscription) -> None:
        for node_id in {node_id for node_id, _ in subscription.asked.values()}:
            publisher = self._publishers.get(node_id)
            if publisher is not None:
                with contextlib.suppress(errors.Unavailable):
                    await publisher.send({"sub": subscription.id, "cancel": True})

    # -- another manager's `docker service logs`, run here on the leader
    async def _serve_remote(self, caller: Caller, stream: MessageStream) -> None:
        request = await stream.recv(timeout=10.0)
        if not isinstance(request, dict):
            raise errors.InvalidArgument("malformed log request")
        selector = LogSelector(_optional_str(request.get("service")), _optional_str(request.get("task")))
        options = SubscriptionOptions.from_wire(request.get("options"))
        lines = self.subscribe(selector, options)

        async def relay() -> None:
            try:
                async for line in lines:
                    await stream.send({"line": [line.task_id, line.stream, rfc3339(line.timestamp), line.data,
                                                line.attrs]})
            finally:
                await lines.aclose()

        # The asking manager sends nothing more: its stream ending means its client went away, and a
        # followed subscription that has nothing to say would otherwise never notice.
        sender, gone = asyncio.create_task(relay()), asyncio.create_task(stream.recv())
        try:
            await asyncio.wait({sender, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for job in (gone, sender):
                job.cancel()
                with contextlib.suppress(asyncio.CancelledError, errors.ShoalError):
                    await job
        if sender.done() and not sender.cancelled():
            sender.result()  # raises the incomplete-stream warning, which ends the stream as an error
            await stream.send({"end": True})


def _optional_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


async def remote_logs(client: RpcClient, address: str, selector: LogSelector,
                      options: SubscriptionOptions) -> AsyncGenerator[BrokerLine, None]:
    """The lines of a subscription run by the broker at ``address`` (the leader); its errors (the
    incomplete-stream warning) are raised here with their category."""
    stream = await client.stream(address, LOGS_PATH)
    try:
        await stream.send({"service": selector.service_id, "task": selector.task_id, "options": options.to_wire()})
        while True:
            message = await stream.recv()
            if not isinstance(message, dict) or message.get("end") is True:
                return
            raw = message.get("line")
            if (isinstance(raw, list) and len(raw) == 5 and isinstance(raw[0], str)
                    and isinstance(raw[4], dict)):
                line = _line_from_wire({"ID": raw[0]}, raw[1:4])
                if line is not None:
                    yield BrokerLine(raw[0], line.stream, line.timestamp, line.data,
                                     {str(k): str(v) for k, v in raw[4].items()})
    finally:
        await stream.close()
