"""`docker events`: service and node events from the store's watch queue, container events from this
node's task status changes, kept in a bounded ring for `--since` and fanned out to live readers."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any

from shoal.api import states
from shoal.api.defaults import NANOS
from shoal.api.objects import (
    CONFIGS,
    NETWORKS,
    NODES,
    SECRETS,
    SERVICES,
    TASKS,
    Obj,
    container_name,
    dig,
    node_name,
    service_name,
)
from shoal.store.memory import MemoryStore
from shoal.store.watch import Event

Json = dict[str, Any]
HISTORY = 1024


def _message(kind: str, action: str, actor_id: str, attributes: Mapping[str, str], scope: str) -> Json:
    now = time.time_ns()
    return {
        "Type": kind, "Action": action, "Actor": {"ID": actor_id, "Attributes": dict(attributes)},
        "scope": scope, "time": now // NANOS, "timeNano": now,
        # the pre-1.22 fields docker-py still reads
        "status": action, "id": actor_id, "from": attributes.get("image", ""),
    }


# The store says "delete"; Docker's cluster events say "remove" (moby daemon/cluster/events.go).
_CLUSTER_ACTIONS = {"create": "create", "update": "update", "delete": "remove"}
_NAMED_KINDS = {NETWORKS: "network", SECRETS: "secret", CONFIGS: "config"}


def store_event_message(event: Event) -> Json | None:
    action = _CLUSTER_ACTIONS.get(event.action, event.action)
    changed = event.action == "update" and event.old is not None
    if event.table == SERVICES:
        attributes = {"name": service_name(event.obj)}
        if changed:
            attributes.update(service_changes(event.obj, event.old or {}))
        return _message("service", action, event.obj["ID"], attributes, "swarm")
    if event.table == NODES:
        attributes = {"name": node_name(event.obj)}
        if changed:
            attributes.update(node_changes(event.obj, event.old or {}))
        return _message("node", action, event.obj["ID"], attributes, "swarm")
    if event.table in _NAMED_KINDS:  # networks, secrets, configs: only the name travels, never the data
        name = str(dig(event.obj, "Spec", "Name", default=""))
        return _message(_NAMED_KINDS[event.table], action, event.obj["ID"], {"name": name}, "swarm")
    return None


def _old_new(key: str, old: object, new: object) -> dict[str, str]:
    return {f"{key}.old": str(old).lower(), f"{key}.new": str(new).lower()}


def service_changes(new: Obj, old: Obj) -> dict[str, str]:
    """What dockerd adds to a service's update event (daemon/events.go logServiceEvent): a changed image,
    a changed replica count, and the rolling update's state when it appears or moves."""
    changes: dict[str, str] = {}
    image = dig(new, "Spec", "TaskTemplate", "ContainerSpec", "Image", default="") or ""
    old_image = dig(old, "Spec", "TaskTemplate", "ContainerSpec", "Image", default="") or ""
    if image != old_image:
        changes.update({"image.old": str(old_image), "image.new": str(image)})  # as given: no lowercasing
    replicated = dig(new, "Spec", "Mode", "Replicated", default=None)
    old_replicated = dig(old, "Spec", "Mode", "Replicated", default=None)
    if replicated is not None and old_replicated is not None:
        replicas, old_replicas = int(replicated.get("Replicas") or 0), int(old_replicated.get("Replicas") or 0)
        if replicas != old_replicas:
            changes.update(_old_new("replicas", old_replicas, replicas))
    if new.get("UpdateStatus") is not None:
        state = dig(new, "UpdateStatus", "State", default="") or ""
        if old.get("UpdateStatus") is None:
            changes["updatestate.new"] = str(state).lower()
        elif state != (dig(old, "UpdateStatus", "State", default="") or ""):
            changes.update(_old_new("updatestate", dig(old, "UpdateStatus", "State", default="") or "", state))
    return changes


def node_changes(new: Obj, old: Obj) -> dict[str, str]:
    """What dockerd adds to a node's update event (logNodeEvent): availability, role and state that
    changed, and for a manager staying one, leadership and reachability."""
    changes: dict[str, str] = {}
    for key, path in (("availability", ("Spec", "Availability")), ("role", ("Spec", "Role")),
                      ("state", ("Status", "State"))):
        before, after = dig(old, *path, default="") or "", dig(new, *path, default="") or ""
        if before != after:
            changes.update(_old_new(key, before, after))
    status, old_status = new.get("ManagerStatus"), old.get("ManagerStatus")
    if status is not None and old_status is not None:
        leader, old_leader = bool(status.get("Leader")), bool(old_status.get("Leader"))
        if leader != old_leader:
            changes.update(_old_new("leader", old_leader, leader))
        reachability, old_reachability = status.get("Reachability") or "", old_status.get("Reachability") or ""
        if reachability != old_reachability:
            changes.update(_old_new("reachability", old_reachability, reachability))
    return changes


def container_action_message(action: str, container_id: str, name: str, image: str,
                             labels: Mapping[str, str], **extra: str) -> Json:
    """An event for something done to a container through the Engine API (kill, stop, pause,
    destroy, exec_*): its labels, name and image as attributes, as dockerd sends them."""
    return _message("container", action, container_id, {**labels, "image": image, "name": name, **extra}, "local")


def task_container_destroyed(task: Obj) -> Json | None:
    """`destroy` when a task that had a container on this node is deleted (its container goes with it)."""
    container_id = dig(task, "Status", "ContainerStatus", "ContainerID")
    if not container_id:
        return None
    attributes = {"name": container_name(task), "image": str(dig(task, "Spec", "ContainerSpec", "Image", default="")),
                  "com.docker.swarm.service.id": task.get("ServiceID", ""), "com.docker.swarm.task.id": task["ID"],
                  "com.docker.swarm.node.id": task.get("NodeID", "")}
    return _message("container", "destroy", container_id, attributes, "local")


def container_event_messages(task: Obj, old: Obj | None) -> list[Json]:
    """start/die as a task's container starts and stops on this node."""
    container_id = dig(task, "Status", "ContainerStatus", "ContainerID")
    if not container_id:
        return []
    new_state = dig(task, "Status", "State", default=states.NEW)
    old_state = dig(old, "Status", "State", default=states.NEW)
    if new_state == old_state:
        return []
    name = container_name(task)
    attributes = {
        "name": name, "image": str(dig(task, "Spec", "ContainerSpec", "Image", default="")),
        "com.docker.swarm.service.id": task.get("ServiceID", ""), "com.docker.swarm.task.id": task["ID"],
        "com.docker.swarm.node.id": task.get("NodeID", ""),
    }
    # the container was created just before it started (the store only learns its id then)
    create = _message("container", "create", container_id, attributes, "local")
    start = _message("container", "start", container_id, attributes, "local")
    if new_state == states.RUNNING:
        return [create, start]
    if states.is_terminal(new_state) and states.rank(old_state) <= states.rank(states.RUNNING):
        code = dig(task, "Status", "ContainerStatus", "ExitCode", default=0)
        die = _message("container", "die", container_id, {**attributes, "exitCode": str(code)}, "local")
        # A container that exits quickly can reach the store straight from starting to complete or
        # failed (the agent batches reports, keeping the latest per task), yet it did start.
        if states.rank(old_state) < states.rank(states.RUNNING) and new_state != states.REJECTED:
            return [create, start, die]
        return [die]
    return []


# Filters matched (by ID or name prefix) against an event's actor whose type they name, as moby's
# events.Filter does; an event of another type never matches them.
_ACTOR_FILTERS = ("container", "node", "service", "network", "volume", "plugin", "secret", "config")
# `event=` values moby matches by prefix ("exec_start: sh -c ..." is the whole action).
_PREFIX_ACTIONS = ("health_status", "exec_create", "exec_start")


def event_matches(message: Json, filters: Mapping[str, list[str]]) -> bool:
    """`docker events --filter`: every key given must match (values of one key are alternatives,
    except labels, which must all match)."""
    actor = message.get("Actor") or {}
    attributes: Mapping[str, str] = actor.get("Attributes") or {}

    def exact(key: str, value: str) -> bool:
        wanted = filters.get(key)
        return not wanted or value in wanted

    def prefix(key: str, *sources: str) -> bool:
        wanted = filters.get(key)
        return not wanted or any(source.startswith(w) for w in wanted for source in sources if source)

    action = str(message.get("Action", ""))
    if any(v in _PREFIX_ACTIONS for v in filters.get("event", [])):
        if not prefix("event", action):
            return False
    elif not exact("event", action):
        return False
    if not exact("type", str(message.get("Type", ""))) or not exact("scope", str(message.get("scope", ""))):
        return False
    for key in _ACTOR_FILTERS:
        if filters.get(key) and (message.get("Type") != key or not prefix(key, actor.get("ID", ""),
                                                                       attributes.get("name", ""))):
            return False
    image = attributes.get("image", "")
    if filters.get("image") and not any(w in (image, image.partition(":")[0]) for w in filters["image"]):
        return False
    for item in filters.get("label", []):
        key, sep, value = item.partition("=")
        if key not in attributes or (sep and attributes[key] != value):
            return False
    return True


class EventHub:
    def __init__(self) -> None:
        self._history: deque[Json] = deque(maxlen=HISTORY)
        self._readers: list[asyncio.Queue[Json]] = []
        self._destroyed: deque[str] = deque(maxlen=HISTORY)  # containers `docker rm` already reported

    def publish(self, message: Json) -> None:
        if message.get("Type") == "container" and message.get("Action") == "destroy":
            actor = str((message.get("Actor") or {}).get("ID", ""))
            if actor in self._destroyed:
                return  # removed through the API, then its task went: one destroy, as dockerd says it
            self._destroyed.append(actor)
        self._history.append(message)
        for reader in self._readers:
            reader.put_nowait(message)

    async def follow_store(self, store: MemoryStore, node_id: str) -> None:
        """Publish what the store's changes mean to `docker events`. A restored snapshot arrives as
        the create/update/delete events it amounts to, so a follower that jumped ahead still reports
        the services and nodes that came and went."""
        with store.watch(lambda ev: ev.table in (SERVICES, NODES, TASKS, NETWORKS, SECRETS, CONFIGS)) as sub:
            while True:
                item = await sub.get()
                if not isinstance(item, Event):
                    continue
                if item.table == TASKS:
                    if item.obj.get("NodeID") == node_id:
                        if item.action == "delete":
                            if (destroyed := task_container_destroyed(item.obj)) is not None:
                                self.publish(destroyed)
                            continue
                        for message in container_event_messages(item.obj, item.old):
                            self.publish(message)
                    continue
                swarm_message = store_event_message(item)
                if swarm_message is not None:
                    self.publish(swarm_message)

    async def stream(self, since: datetime | None, until: datetime | None) -> AsyncIterator[Json]:
        queue: asyncio.Queue[Json] = asyncio.Queue()
        self._readers.append(queue)
        until_ns = int(until.timestamp() * NANOS) if until else None
        try:
            if since is not None:
                since_ns = int(since.timestamp() * NANOS)
                for message in list(self._history):
                    if message["timeNano"] >= since_ns and (until_ns is None or message["timeNano"] <= until_ns):
                        yield message
            if until_ns is not None and until_ns <= time.time_ns():
                return
            while True:
                if until_ns is None:
                    message = await queue.get()
                else:
                    remaining = (until_ns - time.time_ns()) / NANOS
                    if remaining <= 0:
                        return
                    try:
                        async with asyncio.timeout(remaining):  # not wait_for: it can swallow a cancel
                            message = await queue.get()
                    except TimeoutError:
                        return
                if since is None or message["timeNano"] >= int(since.timestamp() * NANOS):
                    yield message
        finally:
            self._readers.remove(queue)
